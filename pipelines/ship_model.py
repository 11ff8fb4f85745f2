"""Ship a trained generator: copy it into vidcolor/weights/ and register it.

    python pipelines/ship_model.py runs/default/model.safetensors --name vidcolor-lite0-cls \
        --version 1 --decoding runs/default/decoding.json --default --description "..."

--decoding takes the JSON that pipelines/tune_temperature.py wrote (temperature and the
rebalancing correction chosen on the training holdout).

Writes vidcolor/weights/NAME.safetensors (the architecture and the chosen decoding
temperature in its metadata) and its entry in vidcolor/weights/registry.json (sha256 included),
both atomically.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path

from vidcolor.models.registry import REGISTRY_FILE, WEIGHTS_DIR, RegistryEntry, read_registry
from vidcolor.models.weights import load_generator, save_generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", type=Path)
    ap.add_argument("--name", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--decoding", type=Path, default=None, help="tune_temperature.py's JSON")
    ap.add_argument("--render-factor", type=int, default=16)
    ap.add_argument("--render-factor-video", type=int, default=16)
    ap.add_argument("--description", default="")
    ap.add_argument("--card", default="MODEL_CARD.md")
    ap.add_argument("--default", action="store_true")
    args = ap.parse_args()

    model, meta = load_generator(args.weights)
    if args.decoding is not None:
        tuned = json.loads(args.decoding.read_text())
        model.set_decoding(
            temperature=tuned["temperature"],
            bin_bias=tuple(tuned["bin_bias"]),
            confidence_gamma=tuned.get("confidence_gamma", 0.0),
            confidence_window=tuple(tuned.get("confidence_window", (0.0, 1.0))),
        )
    target = WEIGHTS_DIR / f"{args.name}.safetensors"
    keep = {k: v for k, v in meta.items() if k not in ("format", "config")}
    sha = save_generator(model, target, {**keep, "name": args.name, "version": args.version})
    entry = RegistryEntry(
        name=args.name,
        file=target.name,
        version=args.version,
        sha256=sha,
        description=args.description,
        card=args.card,
        default_render_factor=args.render_factor,
        default_render_factor_video=args.render_factor_video,
        default=args.default,
    )
    entries = [e for e in read_registry() if e.name != args.name]
    if args.default:
        entries = [RegistryEntry(**{**asdict(e), "default": False}) for e in entries]
    entries.append(entry)
    tmp = REGISTRY_FILE.with_suffix(".partial")
    tmp.write_text(json.dumps({"models": [asdict(e) for e in entries]}, indent=2) + "\n")
    os.replace(tmp, REGISTRY_FILE)
    print(f"{target} sha256 {sha}")


if __name__ == "__main__":
    main()
