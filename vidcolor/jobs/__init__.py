"""Batch archive conversion: scan sources, keep a resumable job store, run items on an engine.

- ``scan``: find films and photos by content and map them to outputs under DST.
- ``store``: the SQLite job store (DST/.vidcolor/jobs.sqlite), written only by the coordinator.
- ``work``: one item inside a worker (model loaded once per worker, staged atomic output).
- ``executors``: local worker processes, Ray tasks, or in-process.
- ``runner``: the coordinator (``run_job``), ``report``: the report it writes.
"""

from vidcolor.jobs.runner import JobOptions, JobProgress, run_job
from vidcolor.jobs.settings import JobSettings, load_recipe

__all__ = ["JobOptions", "JobProgress", "JobSettings", "load_recipe", "run_job"]
