"""DDColor (github.com/piddnad/DDColor, ICCV 2023, Apache-2.0) in plain PyTorch, so its published
weights run in vidcolor's pipelines without basicsr or timm, and load only after a strict check.

Layout: ``network`` (the ConvNeXt encoder, pixel decoder and colour decoder), ``checkpoint``
(reading the published files, the strict check, our safetensors form), ``native`` (DDColor's own
pre- and post-processing), ``model`` (the ColorModel wrapper), ``seeded`` (seeded weights for
checking this port against DDColor's own code).
"""

from vidcolor.models.ddcolor.checkpoint import (
    FILE_FORMAT,
    LICENSE,
    RENDER_FACTOR,
    ImportResult,
    fit_state,
    guess_size,
    import_ddcolor,
    is_ddcolor_file,
    load_ddcolor_file,
    network_from_state,
    parameter_count,
    read_checkpoint,
    save_ddcolor,
)
from vidcolor.models.ddcolor.model import DDColorModel, load_converted_model, load_ddcolor_model, model_info
from vidcolor.models.ddcolor.network import SPECS, DDColorNet, DDColorSpec, build_network, expected_shapes, spec_for

__all__ = [
    "FILE_FORMAT",
    "LICENSE",
    "RENDER_FACTOR",
    "SPECS",
    "DDColorModel",
    "DDColorNet",
    "DDColorSpec",
    "ImportResult",
    "build_network",
    "expected_shapes",
    "fit_state",
    "guess_size",
    "import_ddcolor",
    "is_ddcolor_file",
    "load_converted_model",
    "load_ddcolor_file",
    "load_ddcolor_model",
    "model_info",
    "network_from_state",
    "parameter_count",
    "read_checkpoint",
    "save_ddcolor",
    "spec_for",
]
