"""Save a long run's resume point for committing, at the end of a working session.

    python pipelines/save_resume_point.py pipelines/v3.toml [--log runs/v3-train.log]

A run that spans sessions (or machines) carries three small files in the repository beside the
recipe's ``train.resume_weights`` (say ``pipelines/checkpoints/v3-resume.safetensors``):
- the weights-only resume point: ``OUT/resume.safetensors`` (the trainer writes it with every
  checkpoint) copied over it;
- ``v3-metrics.csv``: the committed rows and the run's ``OUT/metrics.csv`` merged, one row a step
  (the latest written wins: after a resume the steps past the last checkpoint are trained again)
  and none past the resume point's step (those steps will be trained again next session);
- ``v3-train.log``: the committed log with the lines of ``--log`` it does not hold yet appended
  (the same command works whether the machine kept its log from session to session or not).

All three are written atomically. A resume point older than the committed one is refused: it
would throw finished steps away (``--force`` when that is really meant).
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import sys
from pathlib import Path

from vidcolor.errors import VidcolorError
from vidcolor.media.outfile import atomic_write
from vidcolor.models.weights import read_metadata
from vidcolor.train.recipe import load_recipe

RESUME_SUFFIX = "-resume.safetensors"


def resume_step(path: Path) -> int:
    """The training step a weights-only resume point was written at (0 where it says none)."""
    return int(read_metadata(path).get("step", "0") or 0)


def companion(resume_weights: Path, suffix: str) -> Path:
    """``v3-resume.safetensors`` -> ``v3-metrics.csv`` / ``v3-train.log`` beside it."""
    name = resume_weights.name
    stem = name[: -len(RESUME_SUFFIX)] if name.endswith(RESUME_SUFFIX) else resume_weights.stem
    return resume_weights.with_name(stem + suffix)


def merged_metrics(paths: list[Path], last_step: int) -> str:
    """One CSV of the rows of ``paths`` (later files win per step), steps <= ``last_step``."""
    columns: list[str] = []
    rows: dict[int, dict[str, str]] = {}
    for path in paths:
        if not path.is_file():
            continue
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            columns += [c for c in reader.fieldnames or () if c not in columns]
            for row in reader:
                rows[int(row["step"])] = row
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    for step in sorted(s for s in rows if s <= last_step):
        writer.writerow(rows[step])
    return out.getvalue()


def merged_log(committed: Path, run_log: Path | None) -> str:
    """The committed log, then the run log's lines it does not hold yet, in their order."""
    lines = committed.read_text().splitlines() if committed.is_file() else []
    seen = set(lines)
    if run_log is not None:
        for line in run_log.read_text(errors="replace").splitlines():
            if line not in seen:
                lines.append(line)
                seen.add(line)
    return "".join(line + "\n" for line in lines)


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode()), overwrite=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", type=Path)
    ap.add_argument("--log", type=Path, default=None, help="the run's console log (nohup's output)")
    ap.add_argument("--force", action="store_true", help="save even a resume point older than the committed one")
    args = ap.parse_args(argv)

    cfg = load_recipe(args.recipe).train
    if not cfg.resume_weights:
        raise VidcolorError(f"{args.recipe}: train.resume_weights is not set (where the resume point is kept)")
    source = Path(cfg.out_dir) / "resume.safetensors"
    target = Path(cfg.resume_weights)
    if not source.is_file():
        raise VidcolorError(f"{source}: no resume point yet (the run writes one at its first checkpoint)")
    if args.log is not None and not args.log.is_file():
        raise VidcolorError(f"{args.log}: no such log")
    step = resume_step(source)
    saved = resume_step(target) if target.is_file() else 0
    if saved > step and not args.force:
        raise VidcolorError(
            f"{source} is at step {step}, older than {target} (step {saved}); --force to save it anyway"
        )

    metrics = companion(target, "-metrics.csv")
    text = merged_metrics([metrics, Path(cfg.out_dir) / "metrics.csv"], step)
    with source.open("rb") as weights:
        atomic_write(target, lambda fh: shutil.copyfileobj(weights, fh), overwrite=True)
    write_text(metrics, text)
    log = companion(target, "-train.log")
    write_text(log, merged_log(log, args.log))
    print(f"{target}: step {step}; {metrics}: {text.count(chr(10)) - 1} rows; {log}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VidcolorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
