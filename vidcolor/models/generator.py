"""The colorization generator: a U-Net on a pretrained EfficientNet-Lite0 encoder.

Input: L* (B,1,H,W) in [0,100], any H, W (padded internally to a multiple of 32), and, for a
model built with ``hints=True``, optional colour hints (B,3,H,W): hint a/AB_SCALE, hint b/AB_SCALE
and a 0/1 mask of the hinted pixels (Zhang et al. 2017's user points). Hints enter twice: through
a zero-initialised convolution added to the encoder's stem (so they can spread through the whole
network, and a fresh model starts exactly as the hint-free one) and, pooled, beside the stride-4
skip (so a point's colour reaches its neighbourhood directly). No hints = all zeros.
Output: ab (B,2,H,W). Two heads share the body:
- ``regression``: 2 channels, ``tanh`` scaled to ±``AB_SCALE``.
- ``classification``: Q logits over quantised ab bins, decoded by the annealed mean.
Chroma is low-frequency, so the decoder stops at stride 4 and is upsampled bilinearly: a light
decoder keeps the model fast on a 2-core CPU.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidcolor.models.ab_bins import annealed_mean, chroma_scale, confidence, in_gamut_bin_centers
from vidcolor.models.efficientnet import FEATURE_CHANNELS, GREY_MEAN, GREY_STD, STEM_CHANNELS, EfficientNetLite0Encoder

AB_SCALE = 110.0
HINT_CHANNELS = 3
# Limits on what a weight file's config may ask for (far above any real model).
MAX_DECODER_CHANNELS = 1024
MAX_BINS = 1024  # hint a / AB_SCALE, hint b / AB_SCALE, mask


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of a generator; saved in the weights' metadata so a file rebuilds its model."""

    head: str = "classification"  # or "regression"
    decoder_channels: tuple[int, int, int] = (96, 64, 48)  # at strides 16, 8, 4
    temperature: float = 0.38  # annealed-mean temperature (classification head only)
    bins: int = 0  # number of ab bins; filled in from the gamut when 0
    # Logit offset per bin added before decoding. Training with class rebalancing tilts the
    # predicted distribution by the class weights w (towards rare, saturated colours); an offset of
    # -alpha*log(w) undoes that tilt (alpha = 1: the unbiased posterior). Empty: no offset.
    bin_bias: tuple[float, ...] = ()
    # Chroma scaled by confidence**gamma (ab_bins.confidence: 1 - the normalised entropy of the
    # predicted distribution): where the model cannot tell the colour (a grey wall, a coat that
    # could be any colour) it moves toward neutral instead of painting an average tint. 0: off.
    confidence_gamma: float = 0.0
    # The confidence window of that shrink (ab_bins.chroma_scale): mapped onto [0, 1] before the
    # power, so only the least confident colour goes; (0, 1) is the plain confidence**gamma.
    confidence_low: float = 0.0
    confidence_high: float = 1.0
    hints: bool = False  # takes optional colour-hint planes (a, b, mask) beside L*

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: object) -> GeneratorConfig:
        """A config from untrusted data (a weight file's metadata): every field's type and range
        is checked before anything is built, so a crafted file cannot ask for a huge network.
        Raises ValueError with a one-line reason."""
        if not isinstance(d, dict):
            raise ValueError("config is not a JSON object")
        known = set(GeneratorConfig.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown[:3]}")
        d = dict(d)

        def number(x: object) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

        if "head" in d and d["head"] not in ("classification", "regression"):
            raise ValueError("head must be classification or regression")
        if "decoder_channels" in d:
            ch = d["decoder_channels"]
            if (
                not isinstance(ch, (list, tuple))
                or len(ch) != 3
                or not all(
                    isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= MAX_DECODER_CHANNELS for c in ch
                )
            ):
                raise ValueError(f"decoder_channels must be three integers in 1..{MAX_DECODER_CHANNELS}")
            d["decoder_channels"] = tuple(ch)
        if "temperature" in d and not (number(d["temperature"]) and 0 < d["temperature"] <= 100):
            raise ValueError("temperature must be a number in (0, 100]")
        if "bins" in d and not (
            isinstance(d["bins"], int) and not isinstance(d["bins"], bool) and 0 <= d["bins"] <= MAX_BINS
        ):
            raise ValueError(f"bins must be an integer in 0..{MAX_BINS}")
        if "bin_bias" in d:
            bias = d["bin_bias"]
            if not isinstance(bias, (list, tuple)) or len(bias) > MAX_BINS or not all(number(b) for b in bias):
                raise ValueError(f"bin_bias must be at most {MAX_BINS} finite numbers")
            d["bin_bias"] = tuple(float(b) for b in bias)
        if "confidence_gamma" in d and not (number(d["confidence_gamma"]) and 0 <= d["confidence_gamma"] <= 10):
            raise ValueError("confidence_gamma must be a number in [0, 10]")
        for key in ("confidence_low", "confidence_high"):
            if key in d and not (number(d[key]) and 0 <= d[key] <= 1):
                raise ValueError(f"{key} must be a number in [0, 1]")
        if d.get("confidence_low", 0.0) >= d.get("confidence_high", 1.0):
            raise ValueError("confidence_low must be below confidence_high")
        if "hints" in d and not isinstance(d["hints"], bool):
            raise ValueError("hints must be true or false")
        return GeneratorConfig(**d)


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UpBlock(nn.Module):
    """Upsample x2, concatenate the skip, fuse with a 1x1 conv, refine with a residual
    depthwise-separable 3x3 (cheap: most of the model's cost stays in the pretrained encoder)."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.fuse = conv_bn_relu(c_in + c_skip, c_out, 1)
        self.refine = nn.Sequential(
            nn.Conv2d(c_out, c_out, 3, padding=1, groups=c_out, bias=False),
            nn.Conv2d(c_out, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse(torch.cat([x, skip], dim=1))
        return x + self.refine(x)


def _normalised(lightness: torch.Tensor) -> torch.Tensor:
    """L* -> the encoder's input scale."""
    return (lightness / 100.0 - GREY_MEAN) / GREY_STD


def _padded_to_32(lightness: torch.Tensor) -> torch.Tensor:
    """Replicate-padded on the bottom and right to multiples of 32 (the encoder's stride)."""
    h, w = lightness.shape[-2:]
    ph, pw = (-h) % 32, (-w) % 32
    return F.pad(lightness, (0, pw, 0, ph), mode="replicate") if ph or pw else lightness


class Generator(nn.Module):
    def __init__(self, config: GeneratorConfig = GeneratorConfig()) -> None:
        super().__init__()
        centers = in_gamut_bin_centers()
        if config.head == "classification" and config.bins not in (0, centers.shape[0]):
            raise ValueError(f"config asks for {config.bins} bins, the gamut has {centers.shape[0]}")
        self.config = GeneratorConfig(**{**config.to_dict(), "bins": centers.shape[0]})
        self.encoder = EfficientNetLite0Encoder(in_channels=1)
        c16, c8, c4 = config.decoder_channels
        _, s4, s8, s16, s32 = FEATURE_CHANNELS
        self.bridge = conv_bn_relu(s32, c16, 1)
        self.up16 = UpBlock(c16, s16, c16)
        self.up8 = UpBlock(c16, s8, c8)
        self.up4 = UpBlock(c8, s4 + (HINT_CHANNELS if config.hints else 0), c4)
        if config.hints:
            self.hint_stem = nn.Conv2d(HINT_CHANNELS, STEM_CHANNELS, 3, 2, 1, bias=False)
            nn.init.zeros_(self.hint_stem.weight)
        if config.head == "classification":
            self.head = nn.Conv2d(c4, centers.shape[0], 1)
        elif config.head == "regression":
            self.head = nn.Conv2d(c4, 2, 1)
        else:
            raise ValueError(f"unknown head {config.head!r}: classification or regression")
        self.register_buffer("bin_centers", centers, persistent=True)
        # Kept in the config (metadata), not the state dict, so checkpoints do not depend on it.
        self.register_buffer("bin_bias", self._bias_tensor(self.config.bin_bias), persistent=False)

    def _bias_tensor(self, bias: tuple[float, ...]) -> torch.Tensor:
        if bias and (self.config.head != "classification" or len(bias) != self.config.bins):
            raise ValueError(f"bin_bias has {len(bias)} values; the classification head has {self.config.bins} bins")
        return torch.tensor(bias, dtype=torch.float32).view(1, -1, 1, 1) if bias else torch.zeros(0)

    def set_decoding(
        self,
        temperature: float | None = None,
        bin_bias: tuple[float, ...] | None = None,
        confidence_gamma: float | None = None,
        confidence_window: tuple[float, float] | None = None,
    ) -> None:
        """Change how the classification head is decoded (its weights are unaffected)."""
        changes: dict = {}
        if temperature is not None:
            changes["temperature"] = float(temperature)
        if confidence_gamma is not None:
            if not 0 <= confidence_gamma <= 10:
                raise ValueError("confidence_gamma must lie in [0, 10]")
            changes["confidence_gamma"] = float(confidence_gamma)
        if confidence_window is not None:
            low, high = (float(v) for v in confidence_window)
            if not 0 <= low < high <= 1:
                raise ValueError("confidence_window must be (low, high) with 0 <= low < high <= 1")
            changes.update(confidence_low=low, confidence_high=high)
        if bin_bias is not None:
            changes["bin_bias"] = tuple(float(b) for b in bin_bias)
            self.bin_bias = self._bias_tensor(changes["bin_bias"]).to(self.bin_centers.device)
        self.config = GeneratorConfig(**{**self.config.to_dict(), **changes})

    @property
    def takes_hints(self) -> bool:
        return self.config.hints

    def _check_hints(self, lightness: torch.Tensor, hints: torch.Tensor | None) -> torch.Tensor | None:
        if hints is None:
            return None
        if not self.config.hints:
            raise ValueError("this model takes no colour hints")
        if (
            hints.shape[0] != lightness.shape[0]
            or hints.shape[1] != HINT_CHANNELS
            or hints.shape[-2:] != lightness.shape[-2:]
        ):
            raise ValueError(
                f"hints must be (B,{HINT_CHANNELS},H,W) like the lightness {tuple(lightness.shape)}; got "
                f"{tuple(hints.shape)}"
            )
        return hints.to(lightness.dtype)

    def features(self, lightness: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """L* (B,1,H,W) (+ hints (B,3,H,W)), H and W multiples of 32 -> decoder features at stride 4."""
        hints = self._check_hints(lightness, hints)
        if self.config.hints and hints is None:
            # Zeros rather than a skipped branch: one graph (and one ONNX export) for both uses.
            hints = lightness.new_zeros(lightness.shape[0], HINT_CHANNELS, *lightness.shape[-2:])
        x = _normalised(lightness)
        stem_extra = self.hint_stem(hints) if hints is not None else None
        _, f4, f8, f16, f32 = self.encoder(x, stem_extra)
        y = self.bridge(f32)
        y = self.up16(y, f16)
        y = self.up8(y, f8)
        if hints is not None:
            # Mean-pooled planes: the mask channel becomes the hinted fraction of each 4x4 cell.
            f4 = torch.cat([f4, F.avg_pool2d(hints, 4)], dim=1)
        return self.up4(y, f4)

    def match_features(self, lightness: torch.Tensor) -> torch.Tensor:
        """L* (B,1,H,W) of any size -> the encoder's stride-16 features (upsampled) beside its
        stride-8 ones, L2-normalised over channels: (B,152,ceil(H/8),ceil(W/8)). What the network
        sees of a thing, for finding it again in another frame (vidcolor.matching); no hints."""
        h, w = lightness.shape[-2:]
        _, _, f8, f16, _ = self.encoder(_normalised(_padded_to_32(lightness)))
        both = torch.cat([F.interpolate(f16, size=f8.shape[-2:], mode="bilinear", align_corners=False), f8], dim=1)
        return F.normalize(both[..., : -(-h // 8), : -(-w // 8)].float(), dim=1)

    def head_output(self, lightness: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """Raw head at stride 4: logits (classification) or ab (regression). H, W multiple of 32."""
        out = self.head(self.features(lightness, hints))
        if self.config.head == "regression":
            out = torch.tanh(out) * AB_SCALE
        return out

    def decode(self, head: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """Head output -> ab at the same (stride-4) resolution."""
        if self.config.head == "regression":
            return head
        t = self.config.temperature if temperature is None else temperature
        logits = head.float()
        if self.bin_bias.numel():
            logits = logits + self.bin_bias
        ab = annealed_mean(logits, self.bin_centers, t)
        c = self.config
        if c.confidence_gamma > 0:
            ab = ab * chroma_scale(confidence(logits), c.confidence_gamma, c.confidence_low, c.confidence_high)
        return ab

    def forward(
        self, lightness: torch.Tensor, temperature: float | None = None, hints: torch.Tensor | None = None
    ) -> torch.Tensor:
        """L* (B,1,H,W) of any size (+ optional hints (B,3,H,W)) -> ab (B,2,H,W)."""
        h, w = lightness.shape[-2:]
        x = _padded_to_32(lightness)
        hints = self._check_hints(lightness, hints)
        if hints is not None and x.shape[-2:] != (h, w):
            hints = F.pad(hints, (0, x.shape[-1] - w, 0, x.shape[-2] - h))  # no hints in the padding
        ab = self.decode(self.head_output(x, hints), temperature)
        ab = F.interpolate(ab, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return ab[..., :h, :w]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, size: tuple[int, int] = (256, 256)) -> int:
    """Multiply-accumulates of convolutions and linear layers for one L* input of ``size``."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * (module.in_channels // module.groups)
            total += output.numel() * k
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, *size))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total
