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


Layout: ``unet`` (specs and the U-Nets, on vidcolor.models.unet_layers), ``checkpoint`` (reading
DeOldify's files, our safetensors form), ``model`` (the ColorModel wrapper).
"""

from vidcolor.models.deoldify.checkpoint import (
    ImportResult,
    _legacy_spectral_v,
    fit_state,
    generator_from_state,
    guess_kind,
    import_deoldify,
    is_deoldify_file,
    load_deoldify_file,
    read_checkpoint,
    refusal_reason,
    save_deoldify,
)
from vidcolor.models.deoldify.model import DeOldifyModel, load_converted_model, load_deoldify_model, model_info
from vidcolor.models.deoldify.unet import (
    FILE_FORMAT,
    IMAGENET_MEAN,
    IMAGENET_STD,
    RENDER_FACTOR,
    RENDER_FACTOR_VIDEO,
    SKIP_INDICES,
    SPECS,
    DeOldifySpec,
    DeOldifyUnet,
    PixelShuffleUp,
    SelfAttention,
    SpectralConv,
    WeightNormConv,
    build_generator,
    expected_shapes,
    parameter_count,
    spec_for,
)

__all__ = [
    "FILE_FORMAT",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RENDER_FACTOR",
    "RENDER_FACTOR_VIDEO",
    "SKIP_INDICES",
    "SPECS",
    "DeOldifyModel",
    "DeOldifySpec",
    "DeOldifyUnet",
    "ImportResult",
    "PixelShuffleUp",
    "SelfAttention",
    "SpectralConv",
    "WeightNormConv",
    "_legacy_spectral_v",
    "build_generator",
    "expected_shapes",
    "fit_state",
    "generator_from_state",
    "guess_kind",
    "import_deoldify",
    "is_deoldify_file",
    "load_converted_model",
    "load_deoldify_file",
    "load_deoldify_model",
    "model_info",
    "parameter_count",
    "read_checkpoint",
    "refusal_reason",
    "save_deoldify",
    "spec_for",
]
