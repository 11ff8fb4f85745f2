"""Local engine: N spawned worker processes, each loading the model once.

``spawn`` (not fork): torch and PyAV threads do not survive a fork, and spawn behaves the same on
Linux, macOS and Windows. Workers ignore Ctrl-C (the coordinator asks them to stop through an
event, so a running film is abandoned cleanly between batches), send frame progress through a
queue, and on Linux die with the coordinator, even when it is killed with SIGKILL.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from vidcolor.jobs.executors.base import ProgressEvent
from vidcolor.jobs.settings import JobSettings
from vidcolor.jobs.work import ItemResult, ItemTask, Worker, die_with_parent, process_worker, set_threads


@dataclass
class _PoolProcess:
    worker: Worker
    events: Any  # multiprocessing Queue of (key, frames, total)
    stop: Any  # multiprocessing Event
    parent: int

    def progress(self, key: str, frames: int, total: int | None) -> None:
        self.events.put((key, frames, total))

    def should_stop(self) -> bool:
        return self.stop.is_set() or os.getppid() != self.parent


# Set by the pool's initializer in each worker process (the only way to hand it to tasks).
_POOL_PROCESS: _PoolProcess | None = None


def _init_pool_process(settings: JobSettings, events: Any, stop: Any, threads: int, parent: int) -> None:
    global _POOL_PROCESS
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    if os.getppid() != parent:  # the coordinator died before prctl took effect
        os._exit(1)
    set_threads(threads)
    worker = process_worker(settings)
    try:
        worker.model()  # load once, up front, so per-item times are the items' own
    except Exception:
        pass  # the coordinator checked the model; should it still fail, each item records why
    _POOL_PROCESS = _PoolProcess(worker, events, stop, parent)


def _run_in_pool(task: ItemTask) -> ItemResult:
    pp = _POOL_PROCESS
    assert pp is not None, "pool process not initialised"
    return pp.worker.run(task, pp.progress, pp.should_stop)


def threads_per_worker(workers: int) -> int:
    """Cores split between workers; 0 (torch's default) where OMP_NUM_THREADS already decides."""
    if os.environ.get("OMP_NUM_THREADS"):
        return 0
    return max(1, (os.cpu_count() or 1) // max(1, workers))


class LocalExecutor:
    name = "local"

    def __init__(self, settings: JobSettings, workers: int = 1) -> None:
        self.settings = settings
        self.workers = max(1, workers)
        self._ctx = mp.get_context("spawn")
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Future, ItemTask] = {}
        self._events: Any = None
        self._stop: Any = None

    def start(self) -> None:
        self._events = self._ctx.Queue()
        self._stop = self._ctx.Event()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._ctx,
            initializer=_init_pool_process,
            initargs=(self.settings, self._events, self._stop, threads_per_worker(self.workers), os.getpid()),
        )

    def capacity(self) -> int:
        return self.workers

    def submit(self, task: ItemTask) -> None:
        assert self._pool is not None, "start() first"
        self._futures[self._pool.submit(_run_in_pool, task)] = task

    def wait(self, timeout: float) -> list[ItemResult]:
        if not self._futures:
            return []
        done, _ = wait_futures(list(self._futures), timeout=timeout, return_when=FIRST_COMPLETED)
        results: list[ItemResult] = []
        broken = False
        for fut in done:
            task = self._futures.pop(fut)
            try:
                results.append(fut.result())
            except BrokenProcessPool:
                broken = True
                results.append(
                    ItemResult(task.key, False, error="worker process died (killed, crashed or out of memory)")
                )
            except Exception as exc:  # e.g. a result that cannot be pickled back
                results.append(ItemResult(task.key, False, error=f"{type(exc).__name__}: {exc}"))
        if broken:
            # Every item in the dead pool fails this attempt (which one killed it is unknowable);
            # retries redo the innocent ones in a fresh pool.
            rest = list(self._futures)
            wait_futures(rest, timeout=30)
            for fut in rest:
                task = self._futures.pop(fut)
                results.append(
                    ItemResult(task.key, False, error="worker process died (killed, crashed or out of memory)")
                )
            assert self._pool is not None
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
        return results

    def progress(self) -> list[ProgressEvent]:
        events: list[ProgressEvent] = []
        while self._events is not None:
            try:
                key, frames, total = self._events.get_nowait()
            except queue.Empty:
                break
            events.append(ProgressEvent(key, frames, total))
        return events

    def close(self, cancel: bool = False) -> None:
        if self._stop is not None and cancel:
            self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._futures.clear()
        if self._events is not None:
            self._events.close()
            self._events.join_thread()
            self._events = None
