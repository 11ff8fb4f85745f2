"""VGG16 feature extractor for the perceptual loss, with torchvision's key names.

Weights are never downloaded: a user who wants VGG features (DeOldify's and most colorization
papers' choice) points the recipe at a torchvision-layout ``vgg16`` state dict
(``perceptual_net = "vgg16:PATH"``); it is read with ``torch.load(weights_only=True)``. Only the
convolutional ``features`` up to relu4_3 are built; the classifier keys are ignored.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vidcolor.errors import InputError

# torchvision's vgg16 "D" configuration up to conv4_3; "M" is a 2x2 max-pool.
VGG16_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)
# Indices (in ``features``) of relu2_2, relu3_3 and relu4_3: the layers just before a max-pool.
VGG16_TAPS = (8, 15, 22)


class VGG16Features(nn.Module):
    """RGB (B,3,H,W), ImageNet-normalised -> [relu2_2, relu3_3, relu4_3] activations."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                c_in = int(v)
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps: list[torch.Tensor] = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in VGG16_TAPS:
                taps.append(x)
        return taps


def load_vgg16_features(path: str | Path) -> VGG16Features:
    """Build the extractor and load torchvision-layout weights from ``path`` (no pickle code runs)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"VGG16 weights not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for non-checkpoint files
        raise InputError(f"{path}: not a loadable torch weights file ({type(exc).__name__})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{path}: expected a state dict of torchvision's vgg16")
    net = VGG16Features()
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        raise InputError(f"{path}: not torchvision vgg16 weights (missing {missing[:2]}, wrong shape {wrong[:2]})")
    net.load_state_dict({k: state[k].float() for k in own})
    return net
