"""Colorization quality on held-out colour photographs (never used for training).

    python benchmarks/bench_eval.py MODEL [--data ../shared/data/val/bsds500] [--limit 50] [--render-factor N]

MODEL is a registry name, a .safetensors file, or a training checkpoint.pt (its generator is
exported to a temporary file first, so an unfinished run can be scored). Prints the mean PSNR,
CIEDE2000 and colourfulness of the model and of the grey baseline, and the seconds per picture.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from vidcolor.evaluation.images import evaluate_images
from vidcolor.models.generator import Generator, GeneratorConfig
from vidcolor.models.registry import load_model
from vidcolor.models.weights import save_generator
from vidcolor.settings import RenderConfig
from vidcolor.train.data import list_images


def model_from_checkpoint(path: Path, out: Path) -> str:
    state = torch.load(path, map_location="cpu", weights_only=True)
    config = GeneratorConfig.from_dict(json.loads(state["config"])) if "config" in state else GeneratorConfig()
    generator = Generator(config)
    generator.load_state_dict(state["model"])
    save_generator(generator, out, {"name": f"{path.parent.name}@{state['step']}"})
    return str(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/val/bsds500"))
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--render-factor", type=int, default=None)
    args = ap.parse_args()
    paths = list_images([args.data])[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        spec = args.model
        if spec.endswith(".pt"):
            spec = model_from_checkpoint(Path(spec), Path(tmp) / "model.safetensors")
        model = load_model(spec)
        start = time.time()
        report = evaluate_images(
            paths, model, RenderConfig(render_factor=args.render_factor, device="cpu", batch_size=1)
        )
        seconds = time.time() - start
    m = report.mean()
    print(f"model {report.model}, render factor {report.render_factor}, {len(report.images)} pictures from {args.data}")
    print("| | PSNR dB | CIEDE2000 | colourfulness |")
    print("| --- | --- | --- | --- |")
    print(f"| model | {m['psnr']:.2f} | {m['ciede2000']:.2f} | {m['colourfulness']:.1f} |")
    print(f"| grey baseline | {m['psnr_gray']:.2f} | {m['ciede2000_gray']:.2f} | 0.0 |")
    print(f"| truth | | | {m['colourfulness_truth']:.1f} |")
    print(f"{seconds / max(1, len(report.images)):.3f} s per picture (wall, contended)")


if __name__ == "__main__":
    main()
