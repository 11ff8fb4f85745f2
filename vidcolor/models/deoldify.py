"""DeOldify's generators in plain PyTorch, so its published weights run without fastai.

DeOldify (github.com/jantic/DeOldify) builds its generators with fastai v1's ``DynamicUnet``
machinery; the published files (``ColorizeArtistic_gen.pth``, ``ColorizeStable_gen.pth``,
``ColorizeVideo_gen.pth``) are that model's ``state_dict``. The modules below reproduce the same
computation and the same module tree, so those files load key for key:

- ``artistic``: ``DynamicUnetDeep`` on a ResNet-34 body, ``nf_factor`` 1.5;
- ``stable`` and ``video``: ``DynamicUnetWide`` on a ResNet-101 body, ``nf_factor`` 2
  (the same architecture, trained differently).

Both are a flat list of layers (fastai's ``SequentialEx`` keeps them in ``self.layers``), hence
keys like ``layers.0.4.0.conv1.weight`` (the body) or ``layers.10.layers.0.0.weight_orig`` (the
residual block before the head). Index by index:

0 body · 1 BatchNorm · 2 ReLU · 3 middle convs · 4-7 U-Net blocks · 8 PixelShuffle upsampler
(weight norm) · 9 dense merge with the input · 10 residual block · 11 1x1 head · 12 sigmoid range

Convolutions are spectrally normalised (state ``weight_orig``, ``weight_u``, ``weight_v``, as
PyTorch's ``spectral_norm`` stores them), the last upsampler is weight-normalised
(``weight_g``, ``weight_v``). The model maps an ImageNet-normalised grey image (3 equal channels)
to an ImageNet-normalised colour image through a sigmoid with range (-3, 3).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from vidcolor.color import rgb_to_chroma
from vidcolor.errors import ModelError, OutputError
from vidcolor.models.base import ModelInfo, resize_luma
from vidcolor.models.resnet import RESNETS, resnet_body
from vidcolor.models.weights import read_metadata, sha256_file

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

    def __init__(self, c_in: int, c_out: int, kernel: int, dims: int = 2, bias: bool = True, eps: float = 1e-12) -> None:
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
        v = self.weight_v
        weight = v * (self.weight_g / torch.linalg.vector_norm(v, dim=(1, 2, 3), keepdim=True))
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
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=1)
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
        self.layers = nn.ModuleList([conv_block(channels, channels, bn=False), conv_block(channels, channels, bn=False)])

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


# --------------------------------------------------------------------------- reading DeOldify files


# fastai stores optimiser hyper-parameters that can be NumPy scalars, and its discriminative
# learning rates as Python ``slice`` objects; these globals only rebuild scalars, dtypes and
# slices (no code runs), so exactly they are allowed on top of torch's weights-only set.
def _numpy_scalar_globals() -> list:
    allowed: list = [np.dtype, slice]
    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 renamed the package
    scalar_fn = core.multiarray.scalar
    allowed += [(scalar_fn, "numpy.core.multiarray.scalar"), (scalar_fn, "numpy._core.multiarray.scalar")]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType") if hasattr(dtypes, name)]
    return allowed


def _torch_load(path: Path) -> object:
    try:
        with torch.serialization.safe_globals(_numpy_scalar_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, ImportError) as exc:
        raise ModelError(f"{path}: not a PyTorch checkpoint that loads without running code ({refusal_reason(exc)})") from exc


def refusal_reason(exc: BaseException) -> str:
    """Why torch refused a file, in a few words: the unpickler's own reason, never torch's advice
    to retry with ``weights_only=False`` (which would run whatever code the file carries)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        after = [line.strip() for line in text.split("WeightsUnpickler error:", 1)[1].splitlines() if line.strip()]
        if after:
            return after[0][:200]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    safe = [line for line in lines if "weights_only" not in line and "trusted source" not in line and "trust the source" not in line]
    return (safe[0] if safe else type(exc).__name__)[:200]


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The generator state dict in a DeOldify ``.pth``: what fastai's ``learn.save`` wrote, either
    ``{'model': state, 'opt': optimiser}`` or the bare state. Loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"DeOldify weights not found: {path}")
    obj = _torch_load(path)
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise ModelError(f"{path}: not a model state dict (expected DeOldify's learn.save output)")
    return dict(obj)


def _legacy_spectral_v(weight_orig: torch.Tensor, weight_u: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A v vector for a spectral-norm state saved by PyTorch before 1.1 (W kept, v not).

    Solves W_orig·x = u in the least-squares sense and scales x so that uᵀ·W_orig·v equals the
    sigma implied by the stored normalised weight, as PyTorch's own upgrade hook does.
    """
    mat = weight_orig.double().flatten(1)
    sigma = (weight_orig.double() / weight.double()).mean()
    u = weight_u.double()
    v = torch.linalg.lstsq(mat, u.unsqueeze(1)).solution.squeeze(1)
    v = v * (sigma / torch.dot(u, mat @ v))
    return v.to(weight_orig.dtype)


def fit_state(state: dict[str, torch.Tensor], kind: str, source: str) -> dict[str, torch.Tensor]:
    """Check ``state`` against the generator of ``kind`` and return it ready to load.

    Strict: every key of the model must be there with its shape and nothing else may be, except
    two things older PyTorch versions wrote differently: BatchNorm's ``num_batches_tracked``
    (absent before 0.4.1, filled with 0) and pre-1.1 spectral norm (``weight`` instead of
    ``weight_v``, converted). Raises ModelError naming what differs.
    """
    shapes = expected_shapes(kind)
    state = dict(state)
    for key in list(state):
        if key.endswith(".weight") and key[: -len("weight")] + "weight_v" in shapes and key not in shapes:
            stem = key[: -len("weight")]
            if stem + "weight_orig" in state and stem + "weight_u" in state and stem + "weight_v" not in state:
                state[stem + "weight_v"] = _legacy_spectral_v(state[stem + "weight_orig"], state[stem + "weight_u"], state.pop(key))
    for key in shapes:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    missing = sorted(set(shapes) - set(state))
    unexpected = sorted(set(state) - set(shapes))
    wrong = sorted(k for k in set(shapes) & set(state) if tuple(state[k].shape) != shapes[k])
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])}{', ...' if len(unexpected) > 3 else ''})")
        if wrong:
            shown = ", ".join(f"{k} {tuple(state[k].shape)} vs {shapes[k]}" for k in wrong[:2])
            parts.append(f"{len(wrong)} of wrong shape ({shown}{', ...' if len(wrong) > 2 else ''})")
        guess = guess_kind(state)
        hint = f"; it looks like a DeOldify {guess} generator" if guess and spec_for(kind).arch != SPECS[guess.split()[0]].arch else ""
        raise ModelError(f"{source}: weights do not fit DeOldify {kind} ({spec_for(kind).description}): {'; '.join(parts)}{hint}")
    return {k: _owned(v.float() if v.is_floating_point() else v) for k, v in state.items()}


def _owned(t: torch.Tensor) -> torch.Tensor:
    """Contiguous and 64-byte aligned. Tensors read from safetensors can sit at unaligned offsets
    of one buffer; oneDNN then takes other kernels (slower, and not bit-identical), so copy those."""
    t = t.contiguous()
    return t.clone() if t.data_ptr() % 64 else t


def guess_kind(state: dict[str, torch.Tensor]) -> str | None:
    """'artistic' or 'stable or video' (same architecture) from the body's keys; None if neither."""
    if "layers.0.4.0.conv3.weight" in state:
        return "stable or video"
    if "layers.0.4.0.conv1.weight" in state:
        return "artistic"
    return None


def generator_from_state(state: dict[str, torch.Tensor], kind: str, source: str) -> DeOldifyUnet:
    """Build on the meta device and adopt the checked tensors: no time spent on a random init."""
    fitted = fit_state(state, kind, source)
    model = build_generator(kind, "meta")
    model.load_state_dict(fitted, strict=True, assign=True)
    return model.eval()


# --------------------------------------------------------------------------- our safetensors form


def is_deoldify_file(path: str | Path) -> bool:
    """True for a safetensors file written by ``save_deoldify`` (the import command)."""
    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return False
    try:
        return read_metadata(path).get("format") == FILE_FORMAT
    except ModelError:
        return False


def save_deoldify(model: DeOldifyUnet, path: str | Path, metadata: dict[str, str] | None = None) -> str:
    """Write ``model`` as safetensors with DeOldify's key names, atomically; returns the sha256."""
    path = Path(path)
    meta = {
        "format": FILE_FORMAT,
        "kind": model.spec.kind,
        "architecture": model.spec.description,
        "default_render_factor": str(RENDER_FACTOR),
        "default_render_factor_video": str(RENDER_FACTOR_VIDEO),
    }
    meta.update(metadata or {})
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".partial")
    try:
        save_file(state, str(tmp), metadata=meta)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return sha256_file(path)


def load_deoldify_file(path: str | Path, expected_sha256: str | None = None) -> tuple[DeOldifyUnet, dict[str, str]]:
    """A generator from a file ``save_deoldify`` wrote (kind read from its metadata)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    meta = read_metadata(path)
    if meta.get("format") != FILE_FORMAT:
        raise ModelError(f"{path}: not a converted DeOldify file (run `vidcolor models import-deoldify`)")
    if expected_sha256 and sha256_file(path) != expected_sha256:
        raise ModelError(f"{path}: sha256 does not match the registry (file damaged or replaced)")
    kind = meta.get("kind", "")
    spec_for(kind)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{path}: unreadable safetensors data ({exc})") from exc
    return generator_from_state(state, kind, str(path)), meta


@dataclass(frozen=True)
class ImportResult:
    path: Path
    kind: str
    sha256: str
    parameters: int
    source_sha256: str


def import_deoldify(source: str | Path, kind: str, dest: str | Path, name: str | None = None, overwrite: bool = False) -> ImportResult:
    """Convert a DeOldify ``.pth`` into our safetensors form (checked, atomically written)."""
    source, dest = Path(source), Path(dest)
    spec_for(kind)
    if dest.suffix != ".safetensors":
        raise OutputError(f"{dest}: the converted file must end in .safetensors")
    if dest.exists() and dest.resolve() == source.resolve():
        raise OutputError(f"{dest}: output would overwrite the input")
    if dest.exists() and not overwrite:
        raise OutputError(f"{dest} exists (use --force to replace it)")
    if not dest.parent.is_dir():
        raise OutputError(f"{dest.parent}: no such directory")
    state = read_checkpoint(source)
    model = generator_from_state(state, kind, str(source))
    source_sha = sha256_file(source)
    meta = {"name": name or f"deoldify-{kind}", "source_file": source.name, "source_sha256": source_sha}
    digest = save_deoldify(model, dest, meta)
    return ImportResult(dest, kind, digest, parameter_count(model.state_dict()), source_sha)


# --------------------------------------------------------------------------- as a ColorModel


class DeOldifyModel:
    """A DeOldify generator as a ColorModel: luma in, CbCr out (the pipeline keeps the luma).

    DeOldify's own pre/post-processing: the frame stretched to a square render size, made grey
    (3 equal channels), ImageNet-normalised; the output denormalised to RGB in [0, 1], and only
    its chroma used. DeOldify also rounds that RGB to 8 bits before taking the chroma; we keep
    floats (a difference below one 8-bit code value).
    """

    def __init__(self, generator: DeOldifyUnet, info: ModelInfo) -> None:
        self.generator = generator.eval()
        self.info = info
        self.dtype: torch.dtype = torch.float32

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> DeOldifyModel:
        self.generator.to(device)
        if dtype is not None:
            self.dtype = dtype
        return self

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if self.dtype != torch.float32 and x.device.type in ("cpu", "cuda"):
            with torch.autocast(x.device.type, dtype=self.dtype):
                return self.generator(x).float()
        return self.generator(x)

    @torch.inference_mode()
    def predict_chroma(self, luma: torch.Tensor, matrix: str = "bt601") -> torch.Tensor:
        h, w = luma.shape[-2:]
        # The colorizer already gives a square of side render_factor × 16; anything else is
        # stretched to the nearest such square, as DeOldify does, and the chroma stretched back.
        side = max(16, round((h * w) ** 0.5 / 16) * 16)
        square = h == w and h % 16 == 0
        x = luma.float().clamp(0.0, 1.0) if square else resize_luma(luma.float().clamp(0.0, 1.0), (side, side))
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        out = self._run((x.expand(-1, 3, -1, -1) - mean) / std)
        rgb = (out * std + mean).clamp(0.0, 1.0)
        chroma = rgb_to_chroma(rgb, matrix)
        if not square:
            chroma = F.interpolate(chroma, size=(h, w), mode="bilinear", align_corners=False)
        return chroma


def model_info(kind: str, name: str, sha256: str, version: str = "", source: str = "") -> ModelInfo:
    extra = {"kind": kind, "architecture": spec_for(kind).description}
    if source:
        extra["source"] = source
    return ModelInfo(
        name=name,
        version=version,
        sha256=sha256,
        default_render_factor=RENDER_FACTOR,
        default_render_factor_video=RENDER_FACTOR_VIDEO,
        keep_aspect=False,
        extra=extra,
    )


def load_deoldify_model(kind: str, path: str | Path) -> DeOldifyModel:
    """``--model deoldify-KIND:PATH``: a DeOldify ``.pth`` or a file the import command wrote."""
    spec = spec_for(kind)
    path = Path(path)
    if is_deoldify_file(path):
        generator, meta = load_deoldify_file(path)
        if generator.spec.arch != spec.arch:
            raise ModelError(f"{path}: holds a DeOldify {generator.spec.kind} generator, not {kind}")
        return DeOldifyModel(generator, model_info(kind, meta.get("name", f"deoldify-{kind}"), sha256_file(path), meta.get("version", ""), str(path)))
    generator = generator_from_state(read_checkpoint(path), kind, str(path))
    return DeOldifyModel(generator, model_info(kind, f"deoldify-{kind}", sha256_file(path), source=str(path)))


def load_converted_model(path: str | Path, expected_sha256: str | None = None, name: str | None = None, version: str | None = None) -> DeOldifyModel:
    """A converted file as a ColorModel (used by the registry for paths and registered names)."""
    generator, meta = load_deoldify_file(path, expected_sha256)
    digest = expected_sha256 or sha256_file(path)
    return DeOldifyModel(
        generator,
        model_info(generator.spec.kind, name or meta.get("name", Path(path).stem), digest, version if version is not None else meta.get("version", ""), str(path)),
    )
