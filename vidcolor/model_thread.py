"""The model one batch ahead, on its own thread: it colours batch k+1 while the temporal stage,
the compose step and the encoder work on batch k.

On a 2-core CPU the stages add up unless they overlap: the model (ONNX Runtime, one thread) fills
one core while the flow, compose, decode and encode share the other; a model that runs after the
flow on the same thread leaves a core idle half the time (benchmarks/RESULTS.md, "Speed v2").
ONNX Runtime, PyTorch's kernels, OpenCV and PyAV release the GIL, so a thread is enough.

Only for a stage that has the model colour every frame (``ChromaStage.predicts_every_frame``):
in keyframe mode the stage decides from the flow which frames need it, so the call stays inline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import torch

# Render luma (B,1,h,w) [+ hint planes (B,3,h,w)] -> CbCr (B,2,h,w): Colorizer.predict, bound to a matrix.
PredictFn = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


class AheadPrediction:
    """The model's chroma for one batch, being computed; called as the stage's ``predict``.

    The stage asks for the frames it needs: every frame of the batch in every-frame mode, which is
    the result already under way. Asked for anything else, it computes that inline (correct, just
    not overlapped), so the stage's choice of frames is never second-guessed.
    """

    def __init__(self, future: Future[torch.Tensor], luma: torch.Tensor, hints: torch.Tensor | None, predict: PredictFn) -> None:
        self._future = future
        self._luma = luma
        self._hints = hints
        self._predict = predict

    def __call__(self, luma: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        whole = luma.shape == self._luma.shape and (hints is None) == (self._hints is None)
        if whole and torch.equal(luma, self._luma) and (hints is None or torch.equal(hints, self._hints)):  # type: ignore[arg-type]
            return self._future.result()
        return self._predict(luma, hints)

    def wait(self) -> None:
        """Let the computation end (its result or error is dropped): nothing runs after a run ends."""
        try:
            self._future.result()
        except Exception:  # noqa: BLE001 - the run is already ending with its own error
            pass


class ModelThread:
    """One worker thread that runs ``predict`` on submitted batches, in order."""

    def __init__(self, predict: PredictFn) -> None:
        self._predict = predict
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidcolor-model")

    def submit(self, luma: torch.Tensor, hints: torch.Tensor | None = None) -> AheadPrediction:
        return AheadPrediction(self._pool.submit(self._predict, luma, hints), luma, hints, self._predict)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ModelThread:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
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
