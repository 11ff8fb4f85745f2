"""DDColor's network in plain PyTorch, in the module tree its published files were saved from.

Written from the paper's description and the checkpoint layout (key names and shapes), not from
DDColor's code. The shape of it:

- ``encoder.arch``: a ConvNeXt (tiny: depths 3-3-9-3, widths 96..768; large: 3-3-27-3,
  192..1536). The U-Net taps each stage's output through a LayerNorm ``norm0`` .. ``norm3`` while
  the stages themselves go on with the un-normalised map; the classifier's final ``norm`` is in
  the files but unused.
- ``decoder.layers``: three wide U-Net blocks (spectral norm, 512, 512, 256 channels) from the
  1/32 map up to 1/4, then ``decoder.last_shuf`` (×4 pixel shuffle) to full size: the per-pixel
  embedding.
- ``decoder.color_decoder``: 100 learnt colour queries refined by 9 transformer layers (cross-
  attention to the 1/16, 1/8 and 1/4 maps in turn, self-attention, FFN; post-norm), each map
  with a sine position code and a level embedding; an MLP makes each query a colour embedding,
  and each pixel's 100 channels are its embedding's dot products with them.
- ``refine_net``: a 1x1 spectral convolution of those 100 channels and the (normalised) input
  to ab.

Input: a grey RGB picture (B,3,s,s) in [0,1] (ImageNet-normalised inside); output Lab ab (B,2,s,s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidcolor.errors import ModelError
from vidcolor.models.unet_layers import PixelShuffleUp, UnetJoin, batchnorm, conv_block

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DECODER_WIDTH = 512  # the U-Net's channels (its last block and the embedding: half)
HIDDEN = 256  # the colour decoder's width
QUERIES = 100
HEADS = 8
FFN_WIDTH = 2048
LAYERS = 9
SCALES = 3


@dataclass(frozen=True)
class DDColorSpec:
    size: str  # "tiny" | "large" (DDColor's model_size)
    depths: tuple[int, int, int, int]
    dims: tuple[int, int, int, int]

    @property
    def description(self) -> str:
        return f"DDColor, ConvNeXt-{self.size[0].upper()} encoder ({'-'.join(map(str, self.depths))})"


SPECS = {
    "tiny": DDColorSpec("tiny", (3, 3, 9, 3), (96, 192, 384, 768)),
    "large": DDColorSpec("large", (3, 3, 27, 3), (192, 384, 768, 1536)),
}


def spec_for(size: str) -> DDColorSpec:
    try:
        return SPECS[size]
    except KeyError:
        raise ModelError(f"unknown DDColor size {size!r}: tiny or large") from None


# --------------------------------------------------------------------------- the encoder


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of a (B,C,H,W) map (ConvNeXt's ``channels_first`` form)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).square().mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class ConvNeXtBlock(nn.Module):
    """7x7 depthwise conv, LayerNorm, 4× MLP with GELU, layer scale ``gamma``, residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).permute(0, 3, 1, 2)


class ConvNeXtTaps(nn.Module):
    """ConvNeXt whose forward returns the four normalised stage outputs (1/4 .. 1/32)."""

    def __init__(self, spec: DDColorSpec) -> None:
        super().__init__()
        dims = spec.dims
        stem = nn.Sequential(nn.Conv2d(3, dims[0], kernel_size=4, stride=4), ChannelNorm(dims[0]))
        downs = [nn.Sequential(ChannelNorm(dims[i]), nn.Conv2d(dims[i], dims[i + 1], 2, stride=2)) for i in range(3)]
        self.downsample_layers = nn.ModuleList([stem, *downs])
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtBlock(dims[i]) for _ in range(spec.depths[i]))) for i in range(4)
        )
        for i in range(4):
            self.add_module(f"norm{i}", ChannelNorm(dims[i]))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)  # the classifier's; in the files, never used here

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i in range(4):
            x = self.stages[i](self.downsample_layers[i](x))
            taps.append(getattr(self, f"norm{i}")(x))
        return taps


class Encoder(nn.Module):
    def __init__(self, spec: DDColorSpec) -> None:
        super().__init__()
        self.arch = ConvNeXtTaps(spec)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.arch(x)


# --------------------------------------------------------------------------- the pixel decoder


class UnetBlock(UnetJoin):
    """Upsample ×2 to ``n_out`` channels, join the skip, 3x3 conv-ReLU-BatchNorm to ``n_out``."""

    def __init__(self, up_in_c: int, skip_c: int, n_out: int) -> None:
        super().__init__()
        self.shuf = PixelShuffleUp(up_in_c, n_out)
        self.bn = batchnorm(skip_c)
        self.conv = conv_block(n_out + skip_c, n_out)
        self.relu = nn.ReLU()

    def forward(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(self._join(up_in, skip))


# --------------------------------------------------------------------------- the colour decoder


def sine_positions(height: int, width: int, channels: int, device: torch.device) -> torch.Tensor:
    """DETR's normalised sine position code: (H·W, channels), y code then x code, each
    alternating sin and cos over geometric frequencies (temperature 10000, scale 2π)."""
    half = channels // 2
    eps, scale = 1e-6, 2 * math.pi
    ys = torch.arange(1, height + 1, dtype=torch.float32, device=device) / (height + eps) * scale
    xs = torch.arange(1, width + 1, dtype=torch.float32, device=device) / (width + eps) * scale
    steps = torch.arange(half, dtype=torch.float32, device=device)
    freq = 10000 ** (2 * torch.div(steps, 2, rounding_mode="floor") / half)

    def code(pos: torch.Tensor) -> torch.Tensor:
        angles = pos[:, None] / freq
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).flatten(1)

    y, x = code(ys), code(xs)  # (H, half), (W, half)
    grid = torch.cat([y[:, None, :].expand(height, width, half), x[None, :, :].expand(height, width, half)], dim=2)
    return grid.reshape(height * width, channels)


class AttentionLayer(nn.Module):
    """Attention (queries + their positions against keys + theirs), residual, LayerNorm."""

    def __init__(self, name: str) -> None:
        super().__init__()
        setattr(self, name, nn.MultiheadAttention(HIDDEN, HEADS))
        self._name = name
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(
        self, tgt: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor | None, query_pos: torch.Tensor
    ) -> torch.Tensor:
        attn: nn.MultiheadAttention = getattr(self, self._name)
        key = memory if pos is None else memory + pos
        out = attn(tgt + query_pos, key, memory, need_weights=False)[0]
        return self.norm(tgt + out)


class FeedForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear1 = nn.Linear(HIDDEN, FFN_WIDTH)
        self.linear2 = nn.Linear(FFN_WIDTH, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.linear2(F.relu(self.linear1(x))))


class ColorEmbed(nn.Module):
    """Three linear layers with ReLU between: a query's colour embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(HIDDEN, HIDDEN) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class ColorDecoder(nn.Module):
    """The queries, refined against the three feature maps, dotted with the pixel embedding."""

    def __init__(self, in_channels: tuple[int, ...]) -> None:
        super().__init__()
        self.query_feat = nn.Embedding(QUERIES, HIDDEN)
        self.query_embed = nn.Embedding(QUERIES, HIDDEN)
        self.level_embed = nn.Embedding(SCALES, HIDDEN)
        self.input_proj = nn.ModuleList(nn.Conv2d(c, HIDDEN, 1) for c in in_channels)
        self.transformer_self_attention_layers = nn.ModuleList(AttentionLayer("self_attn") for _ in range(LAYERS))
        self.transformer_cross_attention_layers = nn.ModuleList(AttentionLayer("multihead_attn") for _ in range(LAYERS))
        self.transformer_ffn_layers = nn.ModuleList(FeedForward() for _ in range(LAYERS))
        self.decoder_norm = nn.LayerNorm(HIDDEN)
        self.color_embed = ColorEmbed()

    def forward(self, maps: list[torch.Tensor], pixels: torch.Tensor) -> torch.Tensor:
        batch = pixels.shape[0]
        memories, positions = [], []
        for level, feature in enumerate(maps):
            h, w = feature.shape[-2:]
            positions.append(sine_positions(h, w, HIDDEN, feature.device)[:, None, :])  # (HW, 1, C)
            proj = self.input_proj[level](feature).flatten(2) + self.level_embed.weight[level][None, :, None]
            memories.append(proj.permute(2, 0, 1))  # (HW, B, C)
        query_pos = self.query_embed.weight[:, None, :].expand(-1, batch, -1)
        out = self.query_feat.weight[:, None, :].expand(-1, batch, -1)
        for i in range(LAYERS):
            level = i % SCALES
            out = self.transformer_cross_attention_layers[i](out, memories[level], positions[level], query_pos)
            out = self.transformer_self_attention_layers[i](out, out, query_pos, query_pos)
            out = self.transformer_ffn_layers[i](out)
        colours = self.color_embed(self.decoder_norm(out).transpose(0, 1))  # (B, Q, C)
        return torch.einsum("bqc,bchw->bqhw", colours, pixels)


class Decoder(nn.Module):
    def __init__(self, spec: DDColorSpec) -> None:
        super().__init__()
        dims, width = spec.dims, DECODER_WIDTH
        self.layers = nn.ModuleList(
            [
                UnetBlock(dims[3], dims[2], width),
                UnetBlock(width, dims[1], width),
                UnetBlock(width, dims[0], width // 2),
            ]
        )
        self.last_shuf = PixelShuffleUp(width // 2, width // 2, bn=False, scale=4)
        self.color_decoder = ColorDecoder((width, width, width // 2))

    def forward(self, taps: list[torch.Tensor]) -> torch.Tensor:
        out0 = self.layers[0](taps[3], taps[2])
        out1 = self.layers[1](out0, taps[1])
        out2 = self.layers[2](out1, taps[0])
        return self.color_decoder([out0, out1, out2], self.last_shuf(out2))


# --------------------------------------------------------------------------- the whole


class DDColorNet(nn.Module):
    """Grey RGB (B,3,s,s) in [0,1] -> ab (B,2,s,s); ``s`` a multiple of 16 (32 in DDColor's own
    code: other sizes it cannot run, this one matches the skips by nearest resize)."""

    def __init__(self, spec: DDColorSpec) -> None:
        super().__init__()
        self.spec = spec
        self.encoder = Encoder(spec)
        self.decoder = Decoder(spec)
        self.refine_net = nn.Sequential(conv_block(QUERIES + 3, 2, kernel=1, bn=False, activ=False))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        features = self.decoder(self.encoder(x))
        return self.refine_net(torch.cat([features, x], dim=1))


def build_network(size: str, device: str | torch.device | None = None) -> DDColorNet:
    """A randomly initialised network of ``size``; ``device="meta"`` builds only the shapes."""
    spec = spec_for(size)
    if device is None:
        return DDColorNet(spec)
    with torch.device(device):
        return DDColorNet(spec)


def expected_shapes(size: str) -> dict[str, tuple[int, ...]]:
    """The state-dict keys and shapes of a network of ``size`` (built on the meta device: free)."""
    return {k: tuple(v.shape) for k, v in build_network(size, "meta").state_dict().items()}
