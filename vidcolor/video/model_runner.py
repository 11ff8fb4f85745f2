"""The model stage: colours exactly the frames the temporal stage named (``FrameBatch.keys``), on a
thread of its own, so the model works on batch k+1 while the stage, the compose step and the
encoder work on batch k.

On a 2-core CPU the stages add up unless they overlap: the model (ONNX Runtime, one thread) fills
one core while the flow, compose, decode and encode share the other (benchmarks/RESULTS.md,
"Speed v2"). ONNX Runtime, PyTorch's kernels, OpenCV and PyAV release the GIL, so a thread is
enough. Results come back in the order batches were submitted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import torch

from vidcolor.video.frames import FrameBatch

# Render luma (K,1,h,w) [+ hint planes (K,3,h,w)] -> CbCr (K,2,h,w): Colorizer.predict, bound to a matrix.
PredictFn = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


class ModelRunner:
    """Runs ``predict`` on the key frames of submitted batches, one batch at a time, in order."""

    def __init__(self, predict: PredictFn) -> None:
        self._predict = predict
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidcolor-model")
        # Written by the one worker thread only; read after a batch's result (or close) is awaited.
        self.seconds = 0.0  # busy time in the model
        self.frames = 0  # frames coloured

    def _colour(self, batch: FrameBatch) -> FrameBatch:
        keys = list(batch.keys)
        if not keys:
            return batch.with_prediction(batch.luma.new_zeros((0, 2, *batch.luma.shape[-2:])))
        t0 = time.perf_counter()
        hints = batch.hints[keys] if batch.hints is not None else None
        predicted = self._predict(batch.luma[keys], hints).float()
        self.seconds += time.perf_counter() - t0
        self.frames += len(keys)
        return batch.with_prediction(predicted)

    def submit(self, batch: FrameBatch) -> Future[FrameBatch]:
        """Colour ``batch.keys``; the future's result is the batch with ``predicted`` filled in."""
        return self._pool.submit(self._colour, batch)

    def close(self) -> None:
        """Wait for the batch under way (its result or error is dropped), cancel the rest."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ModelRunner:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """PyTorch's intra-op threads set to ``count`` for the block (None: unchanged), then restored.

    The video pipeline's own tensor work (resize, flow warps, blending) is small, at render size;
    with two threads, PyTorch's OpenMP pool stalls at its barriers whenever the model thread or
    the encoder holds the other core (RESULTS.md), so the pipeline runs it on one.
    """
    before = torch.get_num_threads()
    if count is not None and count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
