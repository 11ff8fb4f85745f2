"""DeOldify's generator architecture: the layers, the two U-Nets and their specs (see the package's docstring)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vidcolor.errors import ModelError
from vidcolor.models.resnet import RESNETS, resnet_body
from vidcolor.models.unet_layers import (  # noqa: F401  (re-exported: the package's layers)
    PixelShuffleUp,
    SelfAttention,
    SpectralConv,
    UnetJoin,
    WeightNormConv,
    batchnorm,
    conv_block,
)

FILE_FORMAT = "deoldify-generator"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Y_RANGE = (-3.0, 3.0)
# DeOldify's defaults: render factor 35 for stills, 21 for video (render size = factor × 16).
RENDER_FACTOR = 35
RENDER_FACTOR_VIDEO = 21


# --------------------------------------------------------------------------- architecture spec


@dataclass(frozen=True)
class DeOldifySpec:
    kind: str
    arch: str  # body: "resnet34" | "resnet101"
    unet: str  # "deep" | "wide"
    nf_factor: float

    @property
    def description(self) -> str:
        return f"DynamicUnet{self.unet.capitalize()} on {self.arch}, nf_factor {self.nf_factor:g}"


SPECS = {
    "artistic": DeOldifySpec("artistic", "resnet34", "deep", 1.5),
    "stable": DeOldifySpec("stable", "resnet101", "wide", 2),
    "video": DeOldifySpec("video", "resnet101", "wide", 2),
}

# Where a ResNet body's feature map changes size (fastai hooks the child just before the change):
# 2 relu after the stride-2 stem conv (1/2), 4 layer1 (1/4), 5 layer2 (1/8), 6 layer3 (1/16).
# The U-Net consumes them deepest first. tests/test_deoldify.py re-derives this with a dummy pass
# the way fastai does (sizes at 256×256).
SKIP_INDICES = (6, 5, 4, 2)


def spec_for(kind: str) -> DeOldifySpec:
    try:
        return SPECS[kind]
    except KeyError:
        raise ModelError(f"unknown DeOldify kind {kind!r}: artistic, stable or video") from None


class UnetBlockWide(UnetJoin):
    def __init__(self, up_in_c: int, skip_c: int, n_out: int, self_attention: bool) -> None:
        super().__init__()
        half = n_out // 2
        self.shuf = PixelShuffleUp(up_in_c, half)
        self.bn = batchnorm(skip_c)
        self.conv = conv_block(half + skip_c, half, self_attention=self_attention)
        self.relu = nn.ReLU()
        self.out_channels = half

    def forward(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(self._join(up_in, skip))


class UnetBlockDeep(UnetJoin):
    def __init__(self, up_in_c: int, skip_c: int, final_div: bool, self_attention: bool, nf_factor: float) -> None:
        super().__init__()
        self.shuf = PixelShuffleUp(up_in_c, up_in_c // 2)
        self.bn = batchnorm(skip_c)
        ni = up_in_c // 2 + skip_c
        nf = int((ni if final_div else ni // 2) * nf_factor)
        self.conv1 = conv_block(ni, nf)
        self.conv2 = conv_block(nf, nf, self_attention=self_attention)
        self.relu = nn.ReLU()
        self.out_channels = nf

    def forward(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(self._join(up_in, skip)))


class ResBlock(nn.Module):
    """x + conv(conv(x)), spectral norm, no BatchNorm (fastai's ``res_block`` with spectral norm).

    Kept as ``layers`` (fastai's SequentialEx); its third member, the merge, has no state.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [conv_block(channels, channels, bn=False), conv_block(channels, channels, bn=False)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers[1](self.layers[0](x))


class DenseMerge(nn.Module):
    """Concatenate the network's input to the features (fastai's ``MergeLayer(dense=True)``)."""

    def forward(self, x: torch.Tensor, orig: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, orig], dim=1)


class SigmoidRange(nn.Module):
    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * (self.high - self.low) + self.low


class DeOldifyUnet(nn.Module):
    """A DeOldify generator; ``forward`` maps an ImageNet-normalised RGB batch to the same space."""

    def __init__(self, spec: DeOldifySpec) -> None:
        super().__init__()
        self.spec = spec
        body = resnet_body(spec.arch)
        stages = RESNETS[spec.arch].stage_channels()
        skip_channels = {2: 64, 4: stages[0], 5: stages[1], 6: stages[2]}
        ni = stages[3]
        middle = nn.Sequential(conv_block(ni, ni * 2), conv_block(ni * 2, ni))
        blocks: list[UnetJoin] = []
        up_in = ni
        for i, idx in enumerate(SKIP_INDICES):
            final = i == len(SKIP_INDICES) - 1
            attention = i == len(SKIP_INDICES) - 3  # at 1/8 scale
            block: UnetJoin
            if spec.unet == "wide":
                nf = int(512 * spec.nf_factor)
                block = UnetBlockWide(up_in, skip_channels[idx], nf // 2 if final else nf, attention)
            else:
                block = UnetBlockDeep(up_in, skip_channels[idx], not final, attention, spec.nf_factor)
            blocks.append(block)
            up_in = block.out_channels
        merged = up_in + 3
        self.layers = nn.ModuleList(
            [
                body,
                batchnorm(ni),
                nn.ReLU(),
                middle,
                *blocks,
                PixelShuffleUp(up_in, up_in, norm="weight", bn=False),
                DenseMerge(),
                ResBlock(merged),
                conv_block(merged, 3, kernel=1, bn=False, activ=False),
                SigmoidRange(*Y_RANGE),
            ]
        )
        self.n_blocks = len(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        body, bn, relu, middle = self.layers[0], self.layers[1], self.layers[2], self.layers[3]
        skips: dict[int, torch.Tensor] = {}
        h = x
        for i, child in enumerate(body):
            h = child(h)
            if i in SKIP_INDICES:
                skips[i] = h
        h = middle(relu(bn(h)))
        for j, idx in enumerate(SKIP_INDICES):
            h = self.layers[4 + j](h, skips[idx])
        up, merge, res, head, out = self.layers[4 + self.n_blocks :]
        return out(head(res(merge(up(h), x))))


def build_generator(kind: str, device: str | torch.device | None = None) -> DeOldifyUnet:
    """A randomly initialised generator of ``kind``; ``device="meta"`` builds only the shapes."""
    spec = spec_for(kind)
    if device is None:
        return DeOldifyUnet(spec)
    with torch.device(device):
        return DeOldifyUnet(spec)


def expected_shapes(kind: str) -> dict[str, tuple[int, ...]]:
    """The state-dict keys and shapes of a generator of ``kind`` (built on the meta device: free)."""
    return {k: tuple(v.shape) for k, v in build_generator(kind, "meta").state_dict().items()}


def parameter_count(state: dict[str, torch.Tensor]) -> int:
    """Learnable values in a generator state dict (BatchNorm statistics and u/v vectors excluded)."""
    skip = ("running_mean", "running_var", "num_batches_tracked", "weight_u")
    total = 0
    for key, value in state.items():
        if key.endswith(skip) or (key.endswith("weight_v") and f"{key[:-1]}orig" in state):
            continue  # spectral norm's v is a buffer; weight norm's v is a parameter
        total += value.numel()
    return total
