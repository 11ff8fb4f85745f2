"""fastai-style U-Net layers that DeOldify's and DDColor's generators share, in the state-dict
layout PyTorch's ``spectral_norm`` / ``weight_norm`` and fastai's builders write: spectrally
normalised convolutions, the conv-ReLU-BatchNorm block, ICNR pixel-shuffle upsampling with its
blur, and the join of an upsampled map with its skip. Plain PyTorch, no fastai import.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SpectralConv(nn.Module):
    """Convolution (1-D or 2-D) with its weight divided by an estimate of its spectral norm.

    State matches ``torch.nn.utils.spectral_norm``: ``weight_orig`` (parameter), ``weight_u`` and
    ``weight_v`` (buffers). In eval mode sigma = uᵀ·W·v from the stored vectors; in training mode
    one power iteration refreshes u and v first, as PyTorch's hook does.
    """

    def __init__(
        self, c_in: int, c_out: int, kernel: int, dims: int = 2, bias: bool = True, eps: float = 1e-12
    ) -> None:
        super().__init__()
        self.dims = dims
        self.padding = (kernel - 1) // 2
        self.eps = eps
        self.weight_orig = nn.Parameter(torch.empty((c_out, c_in) + (kernel,) * dims))
        nn.init.kaiming_normal_(self.weight_orig)
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.register_buffer("weight_u", F.normalize(torch.randn(c_out), dim=0, eps=eps))
        self.register_buffer("weight_v", F.normalize(torch.randn(c_in * kernel**dims), dim=0, eps=eps))

    def normalized_weight(self) -> torch.Tensor:
        # sigma in float32 whatever autocast says: it rescales every weight of the layer.
        with torch.autocast(self.weight_orig.device.type, enabled=False):
            mat = self.weight_orig.flatten(1)
            u, v = self.weight_u, self.weight_v
            if self.training:
                with torch.no_grad():
                    v = F.normalize(torch.mv(mat.t(), u), dim=0, eps=self.eps, out=self.weight_v)
                    u = F.normalize(torch.mv(mat, v), dim=0, eps=self.eps, out=self.weight_u)
                    u, v = u.clone(), v.clone()
            sigma = torch.dot(u, torch.mv(mat, v))
            return self.weight_orig / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = F.conv2d if self.dims == 2 else F.conv1d
        return conv(x, self.normalized_weight(), self.bias, padding=self.padding)


class WeightNormConv(nn.Module):
    """2-D convolution with weight = g · v / ‖v‖ (per output channel); state ``weight_g``, ``weight_v``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, bias: bool = True) -> None:
        super().__init__()
        self.padding = (kernel - 1) // 2
        v = nn.init.kaiming_normal_(torch.empty(c_out, c_in, kernel, kernel))
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(v, dim=(1, 2, 3), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torch's own kernel (what nn.utils.weight_norm computes), so the weights match it to the bit.
        weight = torch._weight_norm(self.weight_v, self.weight_g, 0)
        return F.conv2d(x, weight, self.bias, padding=self.padding)


class SelfAttention(nn.Module):
    """SAGAN self-attention over all positions, with a learnt gate ``gamma`` (0 at init)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = SpectralConv(channels, channels // 8, 1, dims=1, bias=False)
        self.key = SpectralConv(channels, channels // 8, 1, dims=1, bias=False)
        self.value = SpectralConv(channels, channels, 1, dims=1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        flat = x.reshape(b, c, h * w)
        q, k, v = self.query(flat), self.key(flat), self.value(flat)
        # Attention weights normalised over the attending positions (dim 1), as in DeOldify.
        # (a contiguous copy, as fastai makes: bmm then takes the same kernel and rounds the same)
        attn = torch.softmax(torch.bmm(q.transpose(1, 2).contiguous(), k), dim=1)
        out = self.gamma * torch.bmm(v, attn) + flat
        return out.reshape(b, c, h, w)


def batchnorm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm initialised as fastai's ``batchnorm_2d`` (weight 1, bias 1e-3)."""
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.bias.fill_(1e-3)
    return bn


def conv_block(
    c_in: int,
    c_out: int,
    kernel: int = 3,
    norm: str = "spectral",
    bn: bool = True,
    activ: bool = True,
    self_attention: bool = False,
) -> nn.Sequential:
    """fastai's conv layer: conv, then ReLU, then BatchNorm, then self-attention, each if asked.

    The order (BatchNorm after the ReLU) and the indices inside the Sequential are part of the
    state-dict layout. The convolution has a bias only when no BatchNorm follows.
    """
    conv: nn.Module
    if norm == "spectral":
        conv = SpectralConv(c_in, c_out, kernel, bias=not bn)
    elif norm == "weight":
        conv = WeightNormConv(c_in, c_out, kernel, bias=not bn)
    else:
        raise ValueError(f"unknown norm {norm!r}")
    layers: list[nn.Module] = [conv]
    if activ:
        layers.append(nn.ReLU(inplace=True))
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    if self_attention:
        layers.append(SelfAttention(c_out))
    return nn.Sequential(*layers)


def _icnr_(weight: torch.Tensor, scale: int = 2) -> None:
    """ICNR init: the scale² sub-pixel filters of each output channel start equal (no checkerboard)."""
    with torch.no_grad():
        c_out = weight.shape[0] // scale**2
        base = nn.init.kaiming_normal_(torch.empty(c_out, *weight.shape[1:], device=weight.device))
        weight.copy_(base.repeat_interleave(scale**2, dim=0))


class PixelShuffleUp(nn.Module):
    """×``scale`` upsampling: 1x1 conv to scale² × channels, ReLU, PixelShuffle, then a 2x2 blur.

    The blur (replication pad on top/left, 2x2 average) is always applied: in fastai the flag that
    was meant to switch it is a module, hence always true, and DeOldify's weights were trained
    that way; DDColor asks for it explicitly.
    """

    def __init__(self, c_in: int, c_out: int, norm: str = "spectral", bn: bool = True, scale: int = 2) -> None:
        super().__init__()
        self.conv = conv_block(c_in, c_out * scale**2, kernel=1, norm=norm, bn=bn, activ=False)
        first = self.conv[0]
        _icnr_(first.weight_orig if norm == "spectral" else first.weight_v, scale)
        if norm == "weight":
            with torch.no_grad():
                first.weight_g.copy_(torch.linalg.vector_norm(first.weight_v, dim=(1, 2, 3), keepdim=True))
        self.shuf = nn.PixelShuffle(scale)
        self.pad = nn.ReplicationPad2d((1, 0, 1, 0))
        self.blur = nn.AvgPool2d(2, stride=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(self.pad(self.shuf(self.relu(self.conv(x)))))


class UnetJoin(nn.Module):
    """A U-Net block's first half: upsample the deeper features and join the (batch-normalised)
    skip; the subclass convolves the result."""

    shuf: PixelShuffleUp
    bn: nn.BatchNorm2d
    relu: nn.ReLU

    def _join(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.shuf(up_in)
        if up.shape[-2:] != skip.shape[-2:]:
            # Odd feature sizes (e.g. 21 at render factor 21) round up when halved: match the skip.
            up = F.interpolate(up, skip.shape[-2:], mode="nearest")
        return self.relu(torch.cat([up, self.bn(skip)], dim=1))
