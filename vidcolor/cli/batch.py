"""``vidcolor batch SRC... DST`` (convert an archive, resumable) and ``vidcolor batch status DST``.

``batch`` is a command group whose default command is ``run``: ``vidcolor batch SRC DST`` is
``vidcolor batch run SRC DST``. The only other command is ``status``; a source folder literally
named ``status`` or ``run`` is written ``./status``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from typer.core import TyperGroup

from vidcolor.cli.common import app, err_console, handle_errors, out_console, show_progress, unwrap
from vidcolor.cli.options import SettingValues, check_report_name, setting_options
from vidcolor.errors import InputError

BATCH_HELP = """Colorize a whole archive of films and photographs, resumably.

\b
  vidcolor batch SRC... DST \\[OPTIONS]    convert (the same as: vidcolor batch run SRC... DST)
  vidcolor batch status DST \\[--json]     what the job in DST has done so far

Run 'vidcolor batch run --help' for every option of a conversion.
"""

RUN_HELP = """Colorize every film and photo under SRC (folders or files) into DST.

Files are recognised by content (PyAV, Pillow), not by extension; other files are skipped and
listed in the report. One SRC folder is mirrored into DST; several SRCs each get DST/<name>.
Films become .mp4 (or .mkv, per the recipe), photos keep their format and name.

Settings come from a recipe TOML (default: the built-in one, the same as
pipelines/batch-default.toml); the options below override it. They are the same options, with
the same checks, as `vidcolor run`'s; --reference and --hints name folders that hold one folder
per film: DIR/<film's output path without extension>/ (DIR/reels/reel1/ for DST/reels/reel1.mp4)
holds that film's pictures, named as for `vidcolor run`; a changed picture redoes the film.

Re-running the same command resumes: finished items are skipped, unfinished ones are redone from
the start, items whose input content or settings changed are redone, failed ones are tried
again. The job's state lives in DST/.vidcolor/jobs.sqlite; outputs appear whole (staged under
DST/.vidcolor/staging, then renamed), so killing the job at any moment leaves no partial file.
A failing item is retried --retries times, recorded with its error, and the job goes on.
At the end: a table on the terminal and DST/.vidcolor/report.json listing every item.
Exit code 0 when every item is done, 1 when any failed, 2 on bad usage or input.

Engines: 'local' runs --workers processes on this machine, each loading the model once
('--workers 0' runs in this process). 'ray' runs one Ray task per item on the cluster at
--ray-address (or on a local Ray), each asking for --cpus-per-task and --gpus-per-task; every
node must see SRC and DST at the same paths (a shared filesystem).

\b
Examples:
  vidcolor batch /archive/reels /archive/colour
  vidcolor batch scans/ films/ out/ --workers 2 --crf 20
  vidcolor batch /nfs/reels /nfs/colour --engine ray --ray-address auto --gpus-per-task 1
  vidcolor batch status /archive/colour
"""

STATUS_HELP = """Show the state of the batch job in DST (read-only; works while a job runs).

Counts per state (pending, running, done, failed) and a table of every item that is not done,
with its attempts and last error. Exit code 1 when any item has failed, 2 when DST holds no job.
"""


class BatchGroup(TyperGroup):
    """A group with a default command: arguments that do not start with a command name go to ``run``."""

    default_command = "run"

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


batch_app = typer.Typer(
    cls=BatchGroup,
    help=unwrap(BATCH_HELP),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(batch_app, name="batch")


# The command's options (kept here so its signature reads as a list of names).
_BATCH_RUN_PATHS = typer.Argument(
    ..., metavar="SRC... DST", help="Source folders or files, then the destination folder.", show_default=False
)
_BATCH_RUN_RECIPE = typer.Option(
    None,
    "--recipe",
    help="Batch recipe TOML (see pipelines/batch-default.toml). Default: built-in settings; the options below "
    "override it.",
)
_BATCH_RUN_CONTAINER = typer.Option(
    None, "--container", help="Films are written as 'mp4' or 'mkv'. Default: the recipe's (mp4)."
)
_BATCH_RUN_ENGINE = typer.Option(
    "local", "--engine", "-e", help="'local' (worker processes here) or 'ray' (one Ray task per item)."
)
_BATCH_RUN_WORKERS = typer.Option(
    None,
    "--workers",
    "-w",
    help="local: worker processes (default 1; 0 = in this process). ray: most tasks at once (default: what the "
    "cluster holds).",
    min=0,
)
_BATCH_RUN_RAY_ADDRESS = typer.Option(
    None,
    "--ray-address",
    help="Join this Ray cluster ('auto', 'ray://host:10001', 'host:6379'). Default: start a local Ray.",
)
_BATCH_RUN_CPUS_PER_TASK = typer.Option(
    1.0, "--cpus-per-task", help="ray: CPUs each task reserves (also its torch threads)."
)
_BATCH_RUN_GPUS_PER_TASK = typer.Option(
    None,
    "--gpus-per-task",
    help="ray: GPUs each task reserves (fractions share a GPU). Default: 1 when the cluster has GPUs, else 0.",
)
_BATCH_RUN_RETRIES = typer.Option(2, "--retries", help="Extra attempts for an item that fails.", min=0)
_BATCH_RUN_QUIET = typer.Option(
    False, "--quiet", "-q", help="No progress display and no table (failures are still printed)."
)
_BATCH_RUN_REPORT_FILE = typer.Option(
    None, "--report", help="Also write the JSON report (always in DST/.vidcolor/report.json) to this file."
)


@batch_app.command("run", help=unwrap(RUN_HELP))
@handle_errors
@setting_options
def batch_run(
    paths: list[Path] = _BATCH_RUN_PATHS,
    recipe: Path = _BATCH_RUN_RECIPE,
    container: str = _BATCH_RUN_CONTAINER,
    engine: str = _BATCH_RUN_ENGINE,
    workers: int = _BATCH_RUN_WORKERS,
    ray_address: str = _BATCH_RUN_RAY_ADDRESS,
    cpus_per_task: float = _BATCH_RUN_CPUS_PER_TASK,
    gpus_per_task: float = _BATCH_RUN_GPUS_PER_TASK,
    retries: int = _BATCH_RUN_RETRIES,
    quiet: bool = _BATCH_RUN_QUIET,
    report_file: Path = _BATCH_RUN_REPORT_FILE,
    *,
    settings_given: SettingValues,
) -> None:
    from vidcolor.jobs.runner import JobOptions, run_job
    from vidcolor.jobs.settings import load_recipe

    if len(paths) < 2:
        raise InputError("give at least one SRC and a DST folder")
    check_report_name(report_file)
    *sources, dst = paths
    anchors = settings_given.anchors()
    settings = load_recipe(recipe).override(
        settings_given.sections(),
        container=container,
        references=tuple(str(p.resolve()) for p in anchors["references"]) or None,
        hints=tuple(str(p.resolve()) for p in anchors["hints"]) or None,
    )
    options = JobOptions(
        engine=engine,
        workers=workers if workers is not None else (1 if engine == "local" else 0),
        retries=retries,
        ray_address=ray_address,
        cpus_per_task=cpus_per_task,
        gpus_per_task=gpus_per_task,
    )
    if show_progress(quiet):
        with BatchProgress() as display:
            report = run_job(sources, dst, settings, options, on_progress=display.update)
    else:
        report = run_job(sources, dst, settings, options)
    report_path = dst / ".vidcolor" / "report.json"
    if report_file is not None:
        report.write(report_file)
    if not quiet:
        out_console.print(outcome_table(report.items))
        totals = report.totals()
        err_console.print(
            f"{totals['done']} done, {totals['up-to-date']} already done, {totals['adopted']} recovered, "
            f"{totals['failed']} failed, {totals['skipped_files']} non-media file(s) skipped"
            + (f", {totals['with_warnings']} done with warnings" if totals["with_warnings"] else "")
            + f"; report: {report_path}",
            soft_wrap=True,
        )
        for item in report.items:
            for warning in item.warnings if item.outcome == "done" else ():
                err_console.print(f"[yellow]warning:[/] {item.key}: {warning}", soft_wrap=True)
    else:
        for item in report.items:
            if item.outcome == "failed":
                err_console.print(
                    f"[bold red]failed:[/] {item.src}: {(item.error or '').removeprefix(f'{item.src}: ')}",
                    soft_wrap=True,
                )
    if report.failed:
        raise typer.Exit(1)


@batch_app.command("status", help=unwrap(STATUS_HELP))
@handle_errors
def batch_status(
    dst: Path = typer.Argument(..., help="The DST folder of a batch job.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print every item of the store as JSON."),
) -> None:
    from dataclasses import asdict

    from vidcolor.jobs.store import JobStore

    with JobStore.open(dst, create=False) as store:
        rows = store.rows()
        counts = store.counts()
        settings = store.meta("settings")
    if as_json:
        out_console.print_json(
            json.dumps({"counts": counts, "settings": json.loads(settings or "{}"), "items": [asdict(r) for r in rows]})
        )
    else:
        summary = ", ".join(f"{n} {state}" for state, n in counts.items())
        out_console.print(f"{dst}: {len(rows)} items: {summary}", soft_wrap=True)
        unfinished = [r for r in rows if r.state != "done"]
        if unfinished:
            table = Table("item", "kind", "state", "attempts", "error", title="not done")
            for r in unfinished:
                table.add_row(r.key, r.kind, r.state, str(r.attempts), r.error or "")
            out_console.print(table)
    if counts["failed"]:
        raise typer.Exit(1)


def outcome_table(items: list[Any], limit: int = 200) -> Table:
    """Every item worked on in this run (failures first); up-to-date ones as one count row."""
    table = Table("item", "kind", "outcome", "attempts", "frames", "seconds", "error", title="batch report")
    worked = sorted((i for i in items if i.outcome != "up-to-date"), key=lambda i: (i.outcome != "failed", i.key))
    style = {"failed": "red", "done": "green", "adopted": "green", "interrupted": "yellow"}
    for item in worked[:limit]:
        table.add_row(
            item.key,
            item.kind,
            f"[{style.get(item.outcome, '')}]{item.outcome}[/]" if item.outcome in style else item.outcome,
            str(item.attempts), str(item.frames or ""), f"{item.seconds:.1f}" if item.seconds else "",
            (item.error or "").removeprefix(f"{item.src}: "),  # the row already names the file
        )  # fmt: skip
    if len(worked) > limit:
        table.add_row(f"... {len(worked) - limit} more in report.json", "", "", "", "", "", "")
    up_to_date = sum(1 for i in items if i.outcome == "up-to-date")
    if up_to_date:
        table.add_row(f"({up_to_date} already done, skipped)", "", "up-to-date", "", "", "", "")
    return table


class BatchProgress:
    """Items and frames bars (with ETA on frames) plus one line per item being worked on."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
        )
        self.items: TaskID | None = None
        self.frames: TaskID | None = None
        self.current: dict[str, TaskID] = {}

    def __enter__(self) -> BatchProgress:
        self.progress.__enter__()
        self.items = self.progress.add_task("[bold]scanning", total=None)
        self.frames = self.progress.add_task("frames", total=None, visible=False)
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def update(self, p: Any) -> None:  # a vidcolor.jobs.runner.JobProgress
        assert self.items is not None and self.frames is not None
        if p.phase == "scanning":
            return
        failed = f" ({p.items_failed} failed)" if p.items_failed else ""
        self.progress.update(
            self.items, description=f"[bold]items{failed}", completed=p.items_finished, total=p.items_total
        )
        self.progress.update(
            self.frames,
            visible=True,
            completed=p.frames_with_current,
            total=max(p.frames_total, p.frames_with_current) or None,
        )
        for key in list(self.current):
            if key not in p.current:
                self.progress.remove_task(self.current.pop(key))
        for key, (frames, total) in p.current.items():
            if key not in self.current:
                self.current[key] = self.progress.add_task(f"  {key}", total=total)
            self.progress.update(self.current[key], completed=frames, total=total)
