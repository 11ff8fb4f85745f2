"""``vidcolor export onnx``: write a model as an ONNX file (checked against PyTorch on export)."""

from __future__ import annotations

from pathlib import Path

import typer

from vidcolor.cli.common import app, handle_errors, out_console, unwrap

export_app = typer.Typer(help="Export a colorization model to another runtime's format.", no_args_is_help=True)
app.add_typer(export_app, name="export")

ONNX_HELP = """Export a vidcolor generator to ONNX (opset 17, float32).

The graph maps CIE L* (B,1,H,W) in [0,100] (input 'lightness') to CIE a*b* (B,2,H,W) (output 'ab');
the colour conversions around it stay in vidcolor. The annealed-mean temperature is baked in. The
file records the model's name, version, source sha256 and default render factors in its metadata.
After writing, ONNX Runtime's output is compared with PyTorch's and the largest difference is
printed.

Examples:\n
  vidcolor export onnx -o vidcolor.onnx                          (any size; H, W multiples of 32)\n
  vidcolor export onnx --model my.safetensors --render-size 192x352 -o my-480p.onnx
"""


@export_app.command("onnx", help=unwrap(ONNX_HELP))
@handle_errors
def export_onnx_command(
    model: str = typer.Option(
        "default", "--model", "-m", help="Registered model name, 'default', or a vidcolor .safetensors file."
    ),
    output: Path = typer.Option(
        Path("model.onnx"), "--output", "-o", metavar="FILE.onnx", help="Where to write the ONNX file."
    ),
    render_size: str = typer.Option(
        "dynamic",
        "--render-size",
        metavar="HxW|dynamic",
        help="Fix the input size (HxW, e.g. 192x352 for 854x480 video at render factor 16), or 'dynamic': any batch "
        "and H, W multiples of 32.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", "-y", help="Replace the output file if it exists."),
) -> None:
    from vidcolor.export import check_destination, export_onnx, parse_render_size, require_onnx
    from vidcolor.models.registry import load_model

    # A typo or a missing extra fails before the model loads.
    size = parse_render_size(render_size)
    check_destination(output, overwrite)
    require_onnx()
    result = export_onnx(load_model(model), output, size, overwrite=overwrite)
    h, w = result.checked_size
    out_console.print(
        f"{result.path}: {result.bytes / 1e6:.1f} MB, input size {result.render_size}; "
        f"ONNX Runtime vs PyTorch at {h}x{w}: max |Δab| = {result.max_ab_error:.2g}",
        soft_wrap=True,
    )
