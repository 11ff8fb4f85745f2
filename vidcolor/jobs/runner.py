"""The coordinator: scan, plan against the job store, dispatch to an executor, retry, report.

One process owns the store and the lock on DST; workers only return results. Planning decides
per item: up to date (done with the same input content and settings, output present) -> skipped;
an attempt that was killed after its output was renamed into place -> adopted, not redone;
anything else (new, changed input, changed settings, unfinished, failed before) -> redone from
the start. Items are started in scan order and retried, up to ``retries`` more times, at the end
of the queue; an item's failure never stops the job.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from vidcolor.errors import InputError, OutputError, VidcolorError
from vidcolor.jobs.executors import ENGINES, make_executor
from vidcolor.jobs.executors.ray_engine import import_ray
from vidcolor.jobs.fingerprint import fingerprint
from vidcolor.jobs.report import ItemOutcome, JobReport
from vidcolor.jobs.scan import MediaItem, ScanResult, scan_sources
from vidcolor.jobs.settings import JobSettings, item_settings_hash, model_fingerprint
from vidcolor.jobs.store import ItemRow, JobStore, job_lock, output_signature, state_dir
from vidcolor.jobs.work import ItemResult, ItemTask, stale_temps

REPORT_NAME = "report.json"
STAGING_NAME = "staging"
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class JobOptions:
    engine: str = "local"  # local | ray
    workers: int = 1  # local: worker processes (0: in this process); ray: max tasks in flight (0: cluster's fill)
    retries: int = 2  # extra attempts for an item that fails
    ray_address: str | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float | None = None  # None: 1 when the Ray cluster has GPUs, else 0


@dataclass
class JobProgress:
    """A snapshot for a progress display."""

    phase: str = "scanning"  # scanning | running | finished
    items_total: int = 0  # items to work on in this run
    items_finished: int = 0  # done or finally failed
    items_failed: int = 0
    items_up_to_date: int = 0
    frames_total: int = 0
    frames_done: int = 0
    current: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # key -> frames, total

    @property
    def frames_with_current(self) -> int:
        return self.frames_done + sum(f for f, _ in self.current.values())


OnProgress = Callable[[JobProgress], None]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def staging_dir(dst: Path, key: str, attempt: int) -> Path:
    tag = hashlib.sha1(key.encode()).hexdigest()[:12]
    return state_dir(dst) / STAGING_NAME / f"{tag}-{attempt}"


def check_model(settings: JobSettings, local_device: bool) -> str:
    """Fail fast (exit 2) on a model that does not resolve or load, or (for work on this machine)
    a device it does not have, before any work starts."""
    from vidcolor.colorizer import resolve_device
    from vidcolor.models.registry import load_model

    model_id = model_fingerprint(settings.run.model)
    load_model(settings.run.model)
    if local_device:  # Ray workers may have the GPU this driver lacks
        resolve_device(settings.run.render.device)
    return model_id


@dataclass
class _Plan:
    queue: list[MediaItem] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)  # key -> up-to-date | adopted


def plan_items(store: JobStore, dst: Path, scan: ScanResult, settings: JobSettings, model_id: str) -> _Plan:
    plan = _Plan()
    for item in scan.items:
        row = store.get(item.key)
        known = row.fingerprint if row is not None and row.src == str(item.src) else None
        fp = fingerprint(item.src, known)
        shash = item_settings_hash(settings, item.kind, model_id, item.key)
        if row is not None and row.settings_hash == shash and row.fingerprint.same_content(fp):
            if fp.mtime_ns != row.mtime_ns:  # touched, same bytes: keep, remember the new stat
                store.refresh_fingerprint(item.key, fp)
            final = dst / item.key
            if row.state == "done" and final.is_file():
                plan.outcomes[item.key] = "up-to-date"
                continue
            if row.state == "running" and _renamed_since_start(row, final):
                # Killed between the output's rename and the store's update: the file is this
                # attempt's whole output (renames are atomic), so record it instead of redoing it.
                store.finish(item.key, row.expected_frames, 0.0, "adopted")
                plan.outcomes[item.key] = "adopted"
                continue
        store.queue(item.key, str(item.src), item.kind, fp, shash, item.expected_frames)
        for debris in stale_temps(dst / item.key):  # a copy killed half-way (see work.place)
            debris.unlink(missing_ok=True)
        plan.queue.append(item)
    return plan


def _renamed_since_start(row: ItemRow, final: Path) -> bool:
    now = output_signature(final)
    return now != "" and row.output_before is not None and now != row.output_before


def run_job(
    sources: list[Path],
    dst: Path,
    settings: JobSettings,
    options: JobOptions = JobOptions(),
    on_progress: OnProgress | None = None,
) -> JobReport:
    """Run (or resume) the batch job SOURCES -> DST. Raises InputError/ModelError on bad input;
    item failures are in the report (``report.failed``). KeyboardInterrupt stops cleanly: running
    items are abandoned without partial files and stay pending for the next run."""
    if options.retries < 0:
        raise InputError("--retries must be 0 or more")
    if options.engine not in ENGINES:
        raise InputError(f"unknown engine {options.engine!r}: {' or '.join(ENGINES)}")
    if options.engine == "ray":
        import_ray()  # a clean error before any work when Ray is not installed
    sources = [Path(s) for s in sources]
    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise OutputError(f"{dst}: exists and is not a folder")
    anchor_roots = [Path(p) for p in (*settings.references, *settings.hints)]
    for root in anchor_roots:
        if not root.is_dir():
            raise InputError(f"{root}: no such folder (--reference and --hints name folders of per-film folders)")
    for source in sources:  # before DST is touched: a typo must leave nothing behind
        if not source.exists():
            raise InputError(f"{source}: no such file or folder")
    model_id = check_model(settings, local_device=options.engine != "ray")
    created = not dst.exists()
    try:
        dst.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{dst}: cannot create folder ({exc.strerror or exc})") from None
    try:
        return _run_job(sources, dst, settings, options, on_progress, model_id, anchor_roots)
    except VidcolorError:
        # Refused before any output: the DST this run made (holding only its job state) goes again.
        if created and all(p == state_dir(dst) for p in dst.iterdir()):
            shutil.rmtree(dst, ignore_errors=True)
        raise


def _run_job(
    sources: list[Path],
    dst: Path,
    settings: JobSettings,
    options: JobOptions,
    on_progress: OnProgress | None,
    model_id: str,
    anchor_roots: list[Path],
) -> JobReport:
    progress = JobProgress()
    notify = on_progress or (lambda p: None)
    notify(progress)
    report = JobReport(dst=str(dst.resolve()), engine=options.engine, settings=settings.to_dict(), started=now_iso())
    with job_lock(dst), JobStore.open(dst) as store:
        exclude = anchor_roots  # anchor pictures are not work
        scan = scan_sources(sources, dst, settings.container, cache=store, exclude=exclude)
        report.skipped = [{"src": str(s.src), "reason": s.reason} for s in scan.skipped]
        if not scan.items and store.counts().get("done", 0) == 0:
            listed = ", ".join(map(str, sources))
            raise InputError(f"no film or picture found under {listed} ({len(scan.skipped)} other file(s) skipped)")
        plan = plan_items(store, dst, scan, settings, model_id)
        store.set_meta("settings", json.dumps(settings.to_dict(), sort_keys=True))
        # Whatever an earlier, killed run left half-written lives in staging; we hold the lock.
        shutil.rmtree(state_dir(dst) / STAGING_NAME, ignore_errors=True)
        progress.phase = "running"
        progress.items_total = len(plan.queue)
        progress.items_up_to_date = len(plan.outcomes)
        progress.frames_total = sum(i.expected_frames for i in plan.queue)
        notify(progress)
        outcomes = dict(plan.outcomes)
        try:
            if plan.queue:
                _dispatch(store, dst, plan.queue, settings, options, progress, outcomes, notify)
        except KeyboardInterrupt:
            report.interrupted = True
        finally:
            progress.phase = "finished"
            progress.current.clear()
            notify(progress)
            report.items = _outcomes(store, dst, scan, outcomes)
            report.finished = now_iso()
            report.write(state_dir(dst) / REPORT_NAME)
            try:
                os.rmdir(state_dir(dst) / STAGING_NAME)  # only when empty: nothing still writing there
            except OSError:
                pass
    if report.interrupted:
        raise KeyboardInterrupt
    return report


def _dispatch(
    store: JobStore,
    dst: Path,
    items: list[MediaItem],
    settings: JobSettings,
    options: JobOptions,
    progress: JobProgress,
    outcomes: dict[str, str],
    notify: OnProgress,
) -> None:
    executor = make_executor(
        options.engine, settings, options.workers, options.ray_address, options.cpus_per_task, options.gpus_per_task
    )
    pending = deque(items)
    by_key = {i.key: i for i in items}
    in_flight: dict[str, ItemTask] = {}
    cancel = False
    executor.start()
    try:
        capacity = executor.capacity()
        while pending or in_flight:
            while pending and len(in_flight) < capacity:
                item = pending.popleft()
                final = dst / item.key
                attempt = store.start(item.key, output_signature(final))
                task = ItemTask(
                    item.key, str(item.src), item.kind, str(final.resolve()),
                    str(staging_dir(dst, item.key, attempt).resolve()), attempt,
                )  # fmt: skip
                executor.submit(task)
                in_flight[item.key] = task
                progress.current[item.key] = (0, item.expected_frames or None)
            results = executor.wait(POLL_SECONDS)
            for event in executor.progress():
                if event.key in in_flight:
                    progress.current[event.key] = (event.frames, event.total)
            for result in results:
                task = in_flight.pop(result.key)
                progress.current.pop(result.key, None)
                item = by_key[result.key]
                if _record(store, item, task, result, options.retries, progress, outcomes):
                    pending.append(item)
            notify(progress)
    except KeyboardInterrupt:
        cancel = True
        raise
    finally:
        executor.close(cancel=cancel)
        for key in in_flight:  # abandoned mid-way: not the item's fault, redo it next time
            store.release(key)
            outcomes[key] = "interrupted"


def _record(
    store: JobStore,
    item: MediaItem,
    task: ItemTask,
    result: ItemResult,
    retries: int,
    progress: JobProgress,
    outcomes: dict[str, str],
) -> bool:
    """Store one result; True when the item goes back in the queue for another attempt."""
    if result.ok:
        store.finish(item.key, result.frames, result.seconds, result.worker, result.warnings)
        outcomes[item.key] = "done"
        progress.items_finished += 1
        progress.frames_total += result.frames - item.expected_frames
        progress.frames_done += result.frames
        return False
    final = task.attempt > retries
    store.fail(item.key, result.error or "failed", final, result.worker)
    if final:
        outcomes[item.key] = "failed"
        progress.items_finished += 1
        progress.items_failed += 1
        progress.frames_total -= item.expected_frames
    return not final


def _outcomes(store: JobStore, dst: Path, scan: ScanResult, outcomes: dict[str, str]) -> list[ItemOutcome]:
    result: list[ItemOutcome] = []
    for item in scan.items:
        row = store.get(item.key)
        if row is None:  # scanned but never planned (interrupted while planning)
            continue
        result.append(
            ItemOutcome(
                key=item.key,
                src=str(item.src),
                dst=str(dst / item.key),
                kind=item.kind,
                outcome=outcomes.get(item.key, "interrupted"),
                state=row.state,
                attempts=row.attempts,
                error=row.error,
                frames=row.frames,
                seconds=round(row.seconds, 3) if row.seconds is not None else None,
                completions=row.completions,
                warnings=row.warning_list,
                content_hash=row.content_hash,
                settings_hash=row.settings_hash,
                note=item.note,
            )
        )
    return result


__all__ = ["JobOptions", "JobProgress", "JobReport", "run_job"]
