"""Executors run work items somewhere and hand results back to the coordinator.

``local``: a pool of spawned worker processes on this machine. ``ray``: one Ray task per item on
a Ray cluster (or a local Ray). ``inline``: in the coordinator's own process (``--workers 0``,
for debugging). All three take the same ``ItemTask``s and return the same ``ItemResult``s, so the
job's items, outputs and report do not depend on the engine.
"""

from __future__ import annotations

from vidcolor.errors import InputError
from vidcolor.jobs.executors.base import Executor, ProgressEvent
from vidcolor.jobs.settings import JobSettings

ENGINES = ("local", "ray")


def make_executor(
    engine: str,
    settings: JobSettings,
    workers: int = 1,
    ray_address: str | None = None,
    cpus_per_task: float = 1.0,
    gpus_per_task: float | None = None,
) -> Executor:
    if engine == "local":
        if workers < 0:
            raise InputError("--workers must be 0 (in this process) or more")
        if workers == 0:
            from vidcolor.jobs.executors.inline import InlineExecutor

            return InlineExecutor(settings)
        from vidcolor.jobs.executors.local import LocalExecutor

        return LocalExecutor(settings, workers)
    if engine == "ray":
        from vidcolor.jobs.executors.ray_engine import RayExecutor

        return RayExecutor(
            settings,
            max_in_flight=workers,
            address=ray_address,
            cpus_per_task=cpus_per_task,
            gpus_per_task=gpus_per_task,
        )
    raise InputError(f"unknown engine {engine!r}: {' or '.join(ENGINES)}")


__all__ = ["ENGINES", "Executor", "ProgressEvent", "make_executor"]
