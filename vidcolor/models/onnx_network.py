"""A publisher's network run by ONNX Runtime in place of PyTorch (``--backend onnx`` for models
whose ``info.onnx_network`` says their network is one tensor in, one tensor out: DDColor's).

The network is exported once per input shape (a run's render square is fixed, so once per run:
DDColor's position codes and skip joins are traced for that size), with the batch left free, and
kept in memory for the run. Not written to the graph cache on disk: a large network's graph is as
big as its weights (900 MB), and the export costs seconds against a film's minutes.
"""

from __future__ import annotations

import io
import warnings

import torch

from vidcolor.errors import InputError, ModelError
from vidcolor.models.onnx_graph import OPSET, require_onnx

# Exporting DDColor large (228 M parameters) for a 512 square took over 20 GB and was killed on
# this project's 24 GB machine (benchmarks/RESULTS.md); at 256 it exports in 27 s. Past this
# many parameters × pixels the export is refused up front rather than risk the machine.
MAX_EXPORT_WORK = 228_000_000 * 256 * 256


class OnnxNetwork:
    """Stands in for a torch network: ``net(x)`` -> the same output, computed by ONNX Runtime."""

    def __init__(self, net: torch.nn.Module, threads: int | None = None) -> None:
        require_onnx()
        params = next(net.parameters())
        if params.device.type != "cpu" or params.dtype != torch.float32:
            raise ModelError("ONNX export needs the model's weights on the CPU in float32")
        self.net = net.eval()
        self.threads = threads or torch.get_num_threads()
        self.sessions: dict[tuple[int, ...], object] = {}

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> OnnxNetwork:
        if torch.device(device).type != "cpu":
            raise InputError("--backend onnx runs on the CPU (ONNX Runtime's CPU provider); use --device cpu")
        return self

    def eval(self) -> OnnxNetwork:
        return self

    def _export(self, shape: tuple[int, ...]) -> bytes:
        buf = io.BytesIO()
        # The TorchScript exporter (no extra dependency); its tracer warnings say nothing a user can act on.
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                self.net,
                (torch.rand(1, *shape),),
                buf,
                dynamo=False,
                input_names=["input"],
                output_names=["output"],
                opset_version=OPSET,
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                do_constant_folding=True,
            )
        return buf.getvalue()

    def session(self, shape: tuple[int, ...]) -> object:
        """The ONNX Runtime session for inputs of ``shape`` (without the batch), built on first use."""
        if shape not in self.sessions:
            parameters = sum(p.numel() for p in self.net.parameters())
            if parameters * shape[-1] * shape[-2] > MAX_EXPORT_WORK:
                raise InputError(
                    f"--backend onnx: exporting this {parameters / 1e6:.0f} M-parameter network for a "
                    f"{shape[-2]}x{shape[-1]} input needs more memory than a 24 GB machine has; use --backend eager "
                    "or a smaller --render-factor"
                )
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # share cores politely
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            try:
                self.sessions[shape] = ort.InferenceSession(
                    self._export(shape), options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own (unexported) exception types
                raise ModelError(f"ONNX Runtime cannot run this network: {str(exc).splitlines()[0]}") from None
        return self.sessions[shape]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        session = self.session(tuple(x.shape[1:]))
        out = session.run(["output"], {"input": x.detach().float().cpu().contiguous().numpy()})[0]  # type: ignore[attr-defined]
        return torch.from_numpy(out).to(x.device)
