"""``vidcolor train RECIPE.toml``: train a generator (classification, regression or GAN fine-tuning)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from vidcolor.cli.common import app, err_console, handle_errors, out_console, show_progress, unwrap
from vidcolor.errors import InputError

HELP = """Train a colorization model from a recipe (pipelines/*.toml; paths in it are relative to the current
folder, so run from the repository root).

Modes (train.mode): classification over ab bins, regression (Huber + perceptual), or gan (DeOldify's
NoGAN: critic pretraining on a trained generator's output, then a short joint phase; needs
train.init_from). A run writes OUT/checkpoint.pt (every checkpoint_every steps), OUT/metrics.csv,
OUT/samples/stepN.png (grey | prediction | truth) and finally OUT/model.safetensors. Running the
same recipe again resumes from the checkpoint; a finished run only rewrites model.safetensors.

--export-backbone PATH writes the trained encoder to PATH (safetensors) after the run. Given a model
.safetensors or a checkpoint.pt instead of a recipe, it exports that file's encoder without
training. --import-backbone PATH starts the new model's encoder from such a file (e.g. a regression
run from a classification model's features).

Exit codes: 0 ok, 2 bad recipe, option or file, 130 interrupted (the last checkpoint is kept)."""


def _overrides(
    steps: Optional[int],
    out: Optional[Path],
    device: Optional[str],
    batch_size: Optional[int],
    amp: Optional[str],
    import_backbone: Optional[Path],
    procs: Optional[int] = None,
) -> dict[str, dict[str, Any]]:
    train: dict[str, Any] = {}
    if procs is not None:
        train["procs"] = procs
    if steps is not None:
        train["steps"] = steps
    if out is not None:
        train["out_dir"] = str(out)
    if device is not None:
        train["device"] = device
    if batch_size is not None:
        train["batch_size"] = batch_size
    if amp is not None:
        train["amp"] = amp
    if import_backbone is not None:
        train["init_backbone"] = str(import_backbone)
    return {"train": train}


def _fmt(row: dict[str, Any]) -> str:
    parts = [f"step {row['step']}"]
    if "phase" in row:
        parts.append(str(row["phase"]))
    for key in (
        "loss",
        "ce",
        "huber",
        "perceptual",
        "critic_loss",
        "critic_acc",
        "adv",
        "lr",
        "images_per_s",
        "holdout_psnr",
        "gray_psnr",
        "holdout_hint10_psnr",
    ):
        if key in row and isinstance(row[key], float):
            parts.append(f"{key} {row[key]:.4g}")
    return "  ".join(parts)


# The command's options (kept here so its signature reads as a list of names).
_TRAIN_COMMAND_RECIPE = typer.Argument(
    ...,
    metavar="RECIPE",
    help="Recipe .toml (or, with --export-backbone only, a model .safetensors / checkpoint.pt).",
)
_TRAIN_COMMAND_STEPS = typer.Option(
    None, "--steps", min=0, help="Override train.steps (for gan: the joint-phase steps)."
)
_TRAIN_COMMAND_OUT = typer.Option(None, "--out", metavar="DIR", help="Override train.out_dir.")
_TRAIN_COMMAND_DEVICE = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (overrides train.device).")
_TRAIN_COMMAND_BATCH_SIZE = typer.Option(None, "--batch-size", "-b", min=1, help="Override train.batch_size.")
_TRAIN_COMMAND_AMP = typer.Option(
    None, "--amp", help="Mixed precision: auto (CUDA: bf16, or fp16 with a grad scaler; CPU: off), off, bf16, fp16."
)
_TRAIN_COMMAND_EXPORT_BACKBONE = typer.Option(
    None, "--export-backbone", metavar="PATH", help="Write the trained encoder to PATH (.safetensors)."
)
_TRAIN_COMMAND_IMPORT_BACKBONE = typer.Option(
    None,
    "--import-backbone",
    metavar="PATH",
    help="Initialise the encoder from a file written by --export-backbone.",
)
_TRAIN_COMMAND_PROCS = typer.Option(
    None,
    "--procs",
    min=1,
    max=64,
    help="Data-parallel CPU processes, one thread each (overrides train.procs); 2 uses both cores of a 2-core machine.",
)
_TRAIN_COMMAND_QUIET = typer.Option(
    False, "--quiet", "-q", help="No progress bar or log lines; errors are still printed."
)


@app.command("train", help=unwrap(HELP))
@handle_errors
def train_command(
    recipe: Path = _TRAIN_COMMAND_RECIPE,
    steps: Optional[int] = _TRAIN_COMMAND_STEPS,
    out: Optional[Path] = _TRAIN_COMMAND_OUT,
    device: Optional[str] = _TRAIN_COMMAND_DEVICE,
    batch_size: Optional[int] = _TRAIN_COMMAND_BATCH_SIZE,
    amp: Optional[str] = _TRAIN_COMMAND_AMP,
    export_backbone: Optional[Path] = _TRAIN_COMMAND_EXPORT_BACKBONE,
    import_backbone: Optional[Path] = _TRAIN_COMMAND_IMPORT_BACKBONE,
    procs: Optional[int] = _TRAIN_COMMAND_PROCS,
    quiet: bool = _TRAIN_COMMAND_QUIET,
) -> None:
    from vidcolor.train.backbone import export_backbone as write_backbone

    if recipe.suffix in (".safetensors", ".pt"):
        if export_backbone is None:
            raise InputError(
                f"{recipe} is a model, not a recipe: train from a .toml recipe, or add --export-backbone PATH"
            )
        digest = write_backbone(recipe, export_backbone)
        if not quiet:
            out_console.print(f"encoder of {recipe} written to {export_backbone} (sha256 {digest[:12]})")
        return
    if export_backbone is not None and export_backbone.suffix != ".safetensors":
        raise InputError(f"--export-backbone {export_backbone}: use a .safetensors file name")

    from vidcolor.media.outfile import OutputLock
    from vidcolor.train.modes import build_trainer
    from vidcolor.train.recipe import load_recipe

    parsed = load_recipe(recipe, _overrides(steps, out, device, batch_size, amp, import_backbone, procs))
    if parsed.train.procs > 1:
        from vidcolor.train.parallel import run_data_parallel

        if parsed.train.mode == "gan":
            raise InputError("train.procs > 1 covers classification and regression; train gan recipes with --procs 1")
        result = run_data_parallel(parsed, quiet)
        _report(result, export_backbone, quiet)
        return
    interactive = show_progress(quiet)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[rate]} img/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, disable=not interactive, transient=False) as bar:
        task = bar.add_task("preparing data", total=None, loss="-", rate="-")

        def on_step(row: dict[str, Any]) -> None:
            bar.update(
                task,
                completed=row["step"],
                loss=f"{row['loss']:.4g}",
                rate=f"{row['images_per_s']:.1f}",
                description=str(row.get("phase", parsed.train.mode)),
            )

        def log(row: dict[str, Any]) -> None:
            if interactive:
                if "holdout_psnr" in row:
                    bar.console.print(
                        f"step {row['step']}: holdout PSNR {row['holdout_psnr']:.2f} dB (grey {row['gray_psnr']:.2f} "
                        "dB)"
                    )
            elif not quiet:
                out_console.print(_fmt(row), highlight=False)

        run_dir = Path(parsed.train.out_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        with OutputLock(run_dir):  # a second run into the same folder is refused, not interleaved
            trainer = build_trainer(parsed, log=log, on_step=on_step)
            bar.update(task, total=trainer.total_steps, completed=trainer.steps_done, description=parsed.train.mode)
            if not quiet and trainer.steps_done:
                bar.console.print(f"resuming {trainer.out} at step {trainer.steps_done} of {trainer.total_steps}")
            result = trainer.run()
    _report(result, export_backbone, quiet)


def _report(result: Any, export_backbone: Optional[Path], quiet: bool) -> None:
    from vidcolor.train.backbone import export_backbone as write_backbone

    if export_backbone is not None:
        write_backbone(result.weights, export_backbone)
    if not quiet:
        out_console.print(
            f"{result.steps} steps, {result.seconds:.0f} s; holdout PSNR {result.holdout_psnr:.2f} dB "
            f"(grey {result.holdout_gray_psnr:.2f} dB); weights {result.weights}"
            + (f"; encoder {export_backbone}" if export_backbone is not None else "")
        )
