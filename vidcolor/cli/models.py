"""``vidcolor models list|info|import-deoldify|import-ddcolor``: what models there are, what a file
holds, and converting DeOldify's and DDColor's published files into vidcolor's safetensors form."""

from __future__ import annotations

from pathlib import Path

import typer

from vidcolor.cli.common import app, handle_errors, out_console
from vidcolor.errors import ModelError

models_app = typer.Typer(help="List, inspect and import colorization models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
@handle_errors
def list_models() -> None:
    """Show the models registered in vidcolor/weights/registry.json."""
    from vidcolor.models import registry

    entries = registry.read_registry()
    if not entries:
        out_console.print(
            f"No models are registered ({registry.REGISTRY_FILE} is absent or empty). "
            "Use --model PATH.safetensors, --model deoldify-KIND:PATH or --model ddcolor:PATH."
        )
        return
    rows = [("name", "version", "render factor", "file", "default", "description")]
    for e in entries:
        rows.append(
            (
                e.name,
                e.version,
                f"{e.default_render_factor} (video {e.default_render_factor_video})",
                e.file if e.path.is_file() else f"{e.file} (missing)",
                "default" if e.default else "",
                e.description,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        # Plain columns, never truncated or folded: names and files must stay copyable.
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
        out_console.print(line, soft_wrap=True, markup=False)


def _describe_safetensors(path: Path) -> list[tuple[str, str]]:
    from safetensors.torch import load_file

    from vidcolor.models.deoldify import parameter_count
    from vidcolor.models.weights import read_metadata

    meta = read_metadata(path)
    rows = [(k, v if len(v) <= 120 else v[:117] + "...") for k, v in sorted(meta.items())]
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for damaged files
        raise ModelError(f"{path}: unreadable safetensors data ({exc})") from exc
    if meta.get("format") == "deoldify-generator":
        rows.append(("parameters", f"{parameter_count(state):,}"))
    elif meta.get("format") == "ddcolor-generator":
        from vidcolor.models.ddcolor import parameter_count as ddcolor_parameters

        rows.append(("parameters", f"{ddcolor_parameters(state):,}"))
    else:
        rows.append(
            (
                "parameters",
                f"{sum(v.numel() for k, v in state.items() if v.is_floating_point() and 'running_' not in k):,}",
            )
        )
    rows.append(("tensors", str(len(state))))
    return rows


def _describe_checkpoint(path: Path) -> list[tuple[str, str]]:
    from vidcolor.models import ddcolor, deoldify
    from vidcolor.models.torch_checkpoints import load_weights_only

    obj = load_weights_only(path, deoldify.checkpoint.fastai_safe_globals())
    if isinstance(obj, dict) and isinstance(obj.get("params"), dict):  # DDColor's {'params': state}
        state = ddcolor.read_checkpoint(path)
        size = ddcolor.guess_size(state)
        looks = f"DDColor {size} (use --model ddcolor:{path})" if size else "not a DDColor network"
        count = ddcolor.parameter_count(state)
    else:
        state = deoldify.read_checkpoint(path)
        guess = deoldify.guess_kind(state)
        looks = f"DeOldify {guess} generator" if guess else "neither a DeOldify generator nor a DDColor network"
        count = deoldify.parameter_count(state)
    return [
        ("format", "PyTorch checkpoint (state dict)"),
        ("looks like", looks),
        ("parameters", f"{count:,}"),
        ("tensors", str(len(state))),
    ]


@models_app.command("info")
@handle_errors
def info(target: str = typer.Argument(..., metavar="NAME|PATH", help="A registered name or a model file.")) -> None:
    """Show a model's metadata, parameter count and sha256."""
    from vidcolor.models import registry
    from vidcolor.models.weights import sha256_file

    path = Path(target)
    rows: list[tuple[str, str]] = []
    if path.is_file():
        rows.append(("file", str(path)))
    else:
        entry = registry.find_entry(target, registry.read_registry())
        path = entry.path
        rows += [
            ("name", entry.name),
            ("version", entry.version),
            ("file", str(path)),
            ("registered sha256", entry.sha256),
        ]
        rows += [("render factor", f"{entry.default_render_factor} (video {entry.default_render_factor_video})")]
        if entry.description:
            rows.append(("description", entry.description))
        if not path.is_file():
            raise ModelError(f"{entry.name}: registered file {path} is missing")
    rows.append(("size", f"{path.stat().st_size / 1e6:.1f} MB"))
    rows.append(("sha256", sha256_file(path)))
    if path.suffix == ".safetensors":
        rows += _describe_safetensors(path)
    else:
        rows += _describe_checkpoint(path)
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        # Plain "key  value" lines, never truncated: sha256 and paths must stay copyable.
        out_console.print(f"{key:<{width}}  {value}", soft_wrap=True, markup=False)


@models_app.command("import-deoldify")
@handle_errors
def import_deoldify_cmd(
    source: Path = typer.Argument(..., help="DeOldify generator weights, e.g. ColorizeVideo_gen.pth."),
    kind: str = typer.Option(
        ..., "--kind", help="artistic (ColorizeArtistic_gen), stable (ColorizeStable_gen) or video (ColorizeVideo_gen)."
    ),
    name: str = typer.Option("", "--name", help="Model name stored in the file (default deoldify-KIND)."),
    output: Path = typer.Option(
        None, "--output", "-o", help="Where to write (default: SOURCE with a .safetensors suffix)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", "-y", help="Replace OUTPUT if it exists."),
) -> None:
    """Check a DeOldify .pth key for key against its architecture and convert it to safetensors.

    The result loads without pickle: --model OUTPUT.safetensors (or deoldify-KIND:OUTPUT).
    """
    from vidcolor.models.deoldify import import_deoldify

    dest = output if output is not None else source.with_suffix(".safetensors")
    result = import_deoldify(source, kind, dest, name=name or None, overwrite=overwrite)
    out_console.print(f"wrote {result.path} (DeOldify {result.kind}, {result.parameters:,} parameters)")
    out_console.print(f"sha256 {result.sha256}")
    out_console.print(f"use it with: --model {result.path}")


@models_app.command("import-ddcolor")
@handle_errors
def import_ddcolor_cmd(
    source: Path = typer.Argument(
        ...,
        help="DDColor's published weights (ddcolor_paper_tiny.pth, ddcolor_paper.pth, ...).",
    ),
    name: str = typer.Option("", "--name", help="Model name stored in the file (default: from SOURCE's name)."),
    output: Path = typer.Option(
        None, "--output", "-o", help="Where to write (default: SOURCE with a .safetensors suffix)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", "-y", help="Replace OUTPUT if it exists."),
) -> None:
    """Check a DDColor .pth key for key against its architecture (tiny or large, read from the
    file) and convert it to safetensors.

    The result loads without pickle: --model OUTPUT.safetensors (or ddcolor:OUTPUT).
    """
    from vidcolor.models.ddcolor import LICENSE, import_ddcolor, spec_for

    dest = output if output is not None else source.with_suffix(".safetensors")
    result = import_ddcolor(source, dest, name=name or None, overwrite=overwrite)
    card = [
        ("name", result.name),
        ("architecture", spec_for(result.size).description),
        ("parameters", f"{result.parameters:,}"),
        ("source", f"{source.name} sha256 {result.source_sha256}"),
        ("wrote", str(result.path)),
        ("sha256", result.sha256),
        ("license", LICENSE),
        ("use it with", f"--model {result.path}"),
    ]
    width = max(len(key) for key, _ in card)
    for key, value in card:
        out_console.print(f"{key:<{width}}  {value}", soft_wrap=True, markup=False)
