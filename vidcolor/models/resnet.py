"""ResNet-34 and ResNet-101 bodies, written here so DeOldify's weights load without torchvision.

fastai's ``create_body`` keeps a ResNet's children up to the pooling head, as an ``nn.Sequential``:
index 0 conv1, 1 bn1, 2 relu, 3 maxpool, 4..7 layer1..layer4. Inside the stages the attribute
names are torchvision's (``conv1``, ``bn1``, ..., ``downsample.0``/``.1``), so a state dict key such
as ``4.0.conv1.weight`` means what it means in a torchvision checkpoint. The stride of a
bottleneck sits on its 3x3 convolution, as in torchvision.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


def _conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)


def _downsample(c_in: int, c_out: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(_conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(c_in, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + shortcut)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = _conv1x1(c_in, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, out)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(c_in, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + shortcut)


@dataclass(frozen=True)
class ResNetSpec:
    block: type[BasicBlock] | type[Bottleneck]
    depths: tuple[int, int, int, int]

    def stage_channels(self) -> tuple[int, int, int, int]:
        e = self.block.expansion
        return (64 * e, 128 * e, 256 * e, 512 * e)


RESNETS = {
    "resnet34": ResNetSpec(BasicBlock, (3, 4, 6, 3)),
    "resnet101": ResNetSpec(Bottleneck, (3, 4, 23, 3)),
}


def resnet_body(arch: str) -> nn.Sequential:
    """A ResNet without its pooling and classifier head, laid out as fastai's ``create_body`` cuts it."""
    spec = RESNETS[arch]
    stem = [
        nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    ]
    stages: list[nn.Module] = []
    c_in = 64
    for i, depth in enumerate(spec.depths):
        planes = 64 * 2**i
        stride = 1 if i == 0 else 2
        blocks = []
        for j in range(depth):
            blocks.append(spec.block(c_in, planes, stride if j == 0 else 1))
            c_in = planes * spec.block.expansion
        stages.append(nn.Sequential(*blocks))
    return nn.Sequential(*stem, *stages)
