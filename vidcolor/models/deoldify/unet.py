"""DeOldify's generator architecture: the layers, the two U-Nets and their specs (see the package's docstring)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidcolor.errors import ModelError
from vidcolor.models.resnet import RESNETS, resnet_body

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


# --------------------------------------------------------------------------- layers


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
    """x2 upsampling: 1x1 conv to 4× channels, ReLU, PixelShuffle, then a 2x2 blur.

    The blur (replication pad on top/left, 2x2 average) is always applied: in fastai the flag that
    was meant to switch it is a module, hence always true, and the weights were trained that way.
    """

    def __init__(self, c_in: int, c_out: int, norm: str = "spectral", bn: bool = True) -> None:
        super().__init__()
        self.conv = conv_block(c_in, c_out * 4, kernel=1, norm=norm, bn=bn, activ=False)
        first = self.conv[0]
        _icnr_(first.weight_orig if norm == "spectral" else first.weight_v)
        if norm == "weight":
            with torch.no_grad():
                first.weight_g.copy_(torch.linalg.vector_norm(first.weight_v, dim=(1, 2, 3), keepdim=True))
        self.shuf = nn.PixelShuffle(2)
        self.pad = nn.ReplicationPad2d((1, 0, 1, 0))
        self.blur = nn.AvgPool2d(2, stride=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(self.pad(self.shuf(self.relu(self.conv(x)))))


class _UnetBlock(nn.Module):
    """Upsample the deeper features, join the (batch-normalised) skip, convolve."""

    shuf: PixelShuffleUp
    bn: nn.BatchNorm2d
    relu: nn.ReLU

    def _join(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.shuf(up_in)
        if up.shape[-2:] != skip.shape[-2:]:
            # Odd feature sizes (e.g. 21 at render factor 21) round up when halved: match the skip.
            up = F.interpolate(up, skip.shape[-2:], mode="nearest")
        return self.relu(torch.cat([up, self.bn(skip)], dim=1))


class UnetBlockWide(_UnetBlock):
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


class UnetBlockDeep(_UnetBlock):
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
        blocks: list[_UnetBlock] = []
        up_in = ni
        for i, idx in enumerate(SKIP_INDICES):
            final = i == len(SKIP_INDICES) - 1
            attention = i == len(SKIP_INDICES) - 3  # at 1/8 scale
            block: _UnetBlock
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
