"""Losses for the three training modes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidcolor.color import luma_to_lightness, rgb_to_lab
from vidcolor.errors import InputError
from vidcolor.models.ab_bins import soft_encode_sparse
from vidcolor.models.efficientnet import EfficientNetLite0Encoder, load_imagenet_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def target_ab(rgb: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Truth ab of an RGB batch, average-pooled to the head's stride."""
    ab = rgb_to_lab(rgb)[:, 1:]
    return F.avg_pool2d(ab, stride) if stride > 1 else ab


def classification_loss(
    logits: torch.Tensor, ab: torch.Tensor, centers: torch.Tensor, class_weights: torch.Tensor
) -> torch.Tensor:
    """Soft-encoded cross entropy, each pixel weighted by the rebalancing weight of its bin.

    Computed on the sparse target (5 bins a pixel): the same value as the dense soft one-hot,
    without a (B,Q,H,W) target in memory or in the backward pass."""
    bins, weights = soft_encode_sparse(ab, centers)
    logits = logits.float()
    logp = logits.gather(1, bins) - torch.logsumexp(logits, dim=1, keepdim=True)
    ce = -(weights * logp).sum(dim=1)
    return (ce * class_weights[bins[:, 0]]).mean()


def bin_prior(ab: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Empirical distribution over bins of a (B,2,H,W) ab sample (nearest bin), smoothed a little."""
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    nearest = torch.cdist(flat, centers).argmin(dim=1)
    counts = torch.bincount(nearest, minlength=centers.shape[0]).float() + 1.0
    return counts / counts.sum()


class PerceptualLoss(nn.Module):
    """Mean L1 between features of a frozen ImageNet network on predicted and true RGB.

    ``net`` maps ImageNet-normalised RGB to a list of feature maps; ``taps`` picks the ones
    compared (by default EfficientNet-Lite0's strides 4, 8 and 16).
    """

    def __init__(
        self, pretrained: bool = True, net: nn.Module | None = None, taps: tuple[int, ...] = (1, 2, 3)
    ) -> None:
        super().__init__()
        if net is None:
            net = EfficientNetLite0Encoder(in_channels=3)
            if pretrained:
                load_imagenet_weights(net)
        self.net = net
        self.taps = taps
        self.net.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> PerceptualLoss:  # stays frozen in eval mode
        return super().train(False)

    def forward(self, pred_rgb: torch.Tensor, true_rgb: torch.Tensor) -> torch.Tensor:
        fp = self.net((pred_rgb - self.mean) / self.std)
        with torch.no_grad():
            ft = self.net((true_rgb - self.mean) / self.std)
        return sum(F.l1_loss(fp[i].float(), ft[i].float()) for i in self.taps) / len(self.taps)


def build_perceptual(spec: str, pretrained: bool = True) -> PerceptualLoss:
    """``efficientnet`` (ImageNet EfficientNet-Lite0; random if not ``pretrained``, for tests) or
    ``vgg16:PATH`` (torchvision-layout VGG16 weights: relu2_2, relu3_3, relu4_3)."""
    if spec == "efficientnet":
        return PerceptualLoss(pretrained)
    kind, _, path = spec.partition(":")
    if kind == "vgg16" and path:
        from vidcolor.train.vgg import load_vgg16_features

        return PerceptualLoss(net=load_vgg16_features(path), taps=(0, 1, 2))
    raise InputError(f"unknown perceptual_net {spec!r}: efficientnet or vgg16:PATH")


def lightness_of(luma: torch.Tensor) -> torch.Tensor:
    return luma_to_lightness(luma)
