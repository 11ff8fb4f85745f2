"""Ray engine: one Ray task per item, on a cluster (``--ray-address``) or a local Ray.

Only paths and small results travel through Ray: each task reads its source and writes its
output on a filesystem every node sees (the same path on each), so no frame ever enters the
object store. A task asks for ``num_cpus`` / ``num_gpus``; Ray places tasks where the resources
are and reuses worker processes, which keep the loaded model between items. Ray's own retries
(``max_retries``) cover a worker or node that dies under a task; an item that fails on its own
(a damaged file) is retried by the coordinator like with the local engine, so both engines report
the same attempts and errors.
"""

from __future__ import annotations

import math
from typing import Any

from vidcolor.errors import InputError
from vidcolor.jobs.executors.base import ProgressEvent
from vidcolor.jobs.settings import JobSettings
from vidcolor.jobs.work import ItemResult, ItemTask, process_worker, set_threads

SYSTEM_RETRIES = 3  # Ray re-runs a task whose worker process or node died


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError('the ray engine needs Ray: pip install "vidcolor[ray]" (or "ray[default]")') from None
    return ray


def _ray_task(task: ItemTask, settings: JobSettings, events: Any, threads: int) -> ItemResult:
    """Runs on a Ray worker; the process-level Worker keeps the model between tasks."""
    set_threads(threads)
    worker = process_worker(settings)

    def progress(key: str, frames: int, total: int | None) -> None:
        try:
            events.put_nowait((key, frames, total))
        except Exception:  # a full or gone progress queue must never fail the item
            pass

    return worker.run(task, progress)


class RayExecutor:
    name = "ray"

    def __init__(
        self,
        settings: JobSettings,
        max_in_flight: int = 0,
        address: str | None = None,
        cpus_per_task: float = 1.0,
        gpus_per_task: float | None = None,
    ) -> None:
        if cpus_per_task <= 0:
            raise InputError("--cpus-per-task must be positive")
        if gpus_per_task is not None and gpus_per_task < 0:
            raise InputError("--gpus-per-task must be 0 or more")
        self.settings = settings
        self.max_in_flight = max_in_flight
        self.address = address
        self.cpus = cpus_per_task
        self.gpus = gpus_per_task
        self._ray: Any = None
        self._owns_ray = False
        self._remote: Any = None
        self._events: Any = None
        self._refs: dict[Any, ItemTask] = {}
        self._capacity = 1

    def start(self) -> None:
        ray = self._ray = import_ray()
        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address, log_to_driver=False)
                else:
                    ray.init(log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise InputError(f"cannot start or join Ray ({self.address or 'local'}): {exc}") from None
            self._owns_ray = True
        resources = ray.cluster_resources()
        gpus = self.gpus if self.gpus is not None else (1.0 if resources.get("GPU", 0) >= 1 else 0.0)
        if gpus > 0:
            slots = math.floor(resources.get("GPU", 0) / gpus)
        else:
            slots = math.floor(resources.get("CPU", 1) / self.cpus)
        if slots < 1:
            raise InputError(
                f"the Ray cluster has {resources.get('CPU', 0)} CPU and {resources.get('GPU', 0)} GPU: "
                f"not enough for one task ({self.cpus} CPU, {gpus} GPU)"
            )
        self._capacity = min(slots, self.max_in_flight) if self.max_in_flight > 0 else slots
        self._threads = max(1, int(self.cpus))
        self._remote = ray.remote(_ray_task).options(
            num_cpus=self.cpus, num_gpus=gpus, max_retries=SYSTEM_RETRIES, retry_exceptions=False
        )
        from ray.util.queue import Queue

        self._events = Queue(maxsize=10000, actor_options={"num_cpus": 0})

    def capacity(self) -> int:
        return self._capacity

    def submit(self, task: ItemTask) -> None:
        ref = self._remote.remote(task, self.settings, self._events, self._threads)
        self._refs[ref] = task

    def wait(self, timeout: float) -> list[ItemResult]:
        if not self._refs:
            return []
        ray = self._ray
        refs = list(self._refs)
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        results: list[ItemResult] = []
        for ref in ready:
            task = self._refs.pop(ref)
            try:
                results.append(ray.get(ref))
            except ray.exceptions.TaskCancelledError:
                results.append(ItemResult(task.key, False, error="cancelled", cancelled=True))
            except ray.exceptions.RayError as exc:  # worker or node lost beyond Ray's retries
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                results.append(ItemResult(task.key, False, error=f"Ray: {type(exc).__name__}: {first_line}"))
        return results

    def progress(self) -> list[ProgressEvent]:
        if self._events is None:
            return []
        events: list[ProgressEvent] = []
        try:
            n = self._events.qsize()
            if n:
                events = [ProgressEvent(*e) for e in self._events.get_nowait_batch(n)]
        except Exception:  # progress is best effort; results come through the task refs
            return []
        return events

    def close(self, cancel: bool = False) -> None:
        ray = self._ray
        if ray is None:
            return
        if cancel:
            for ref in list(self._refs):
                ray.cancel(ref)
            if self._refs:
                ray.wait(list(self._refs), num_returns=len(self._refs), timeout=30)
        self._refs.clear()
        if self._events is not None:
            try:
                ray.kill(self._events.actor)
            except Exception:
                pass
            self._events = None
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False
