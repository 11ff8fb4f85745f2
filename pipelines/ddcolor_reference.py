"""DDColor's own output as a reference for vidcolor's DDColor support (issue 37).

The recipe (tests/data/ddcolor/RECIPE.md has the whole of it, environment included):

    python pipelines/ddcolor_reference.py weights WORK        # seeded states -> WORK/seeded-SIZE.pth
    DDCOLOR=... ddcolor-env/bin/python pipelines/ddcolor_reference_run.py \\
        WORK samples/photos/chelsea.png WORK/out tiny,large 512,256
    python pipelines/ddcolor_reference.py collect WORK        # -> tests/data/ddcolor/ (+ manifest.json)
    python pipelines/ddcolor_reference.py compare WORK        # vidcolor image on the published-layout files

``compare`` runs ``vidcolor image --model ddcolor:WORK/seeded-SIZE.pth --render-factor N/16`` and
prints, per size and input size, the mean and largest difference per channel from DDColor's own
pictures, in 8-bit code values.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vidcolor.hashing import sha256_file
from vidcolor.models.ddcolor.seeded import (
    EMBED_STD,
    HEAD_BIAS,
    HEAD_GAIN,
    LAYER_SCALE,
    SEED,
    SN_GAIN,
    published_layout,
    seeded_state,
)
from vidcolor.models.seeding import state_digest

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "tests" / "data" / "ddcolor"
PHOTO = REPO / "samples" / "photos" / "chelsea.png"
SIZES = ("tiny", "large")
INPUT_SIZES = (512, 256)
# What the suite checks (tests/test_ddcolor_reference.py): the large network at 512 only in
# ``compare`` (a 900 MB file and half a minute a picture), so its picture is not committed.
COMMITTED = ("tiny-512.png", "tiny-256.png", "large-256.png")


def constants() -> dict:
    return {
        "seed": SEED,
        "layer_scale": LAYER_SCALE,
        "embed_std": EMBED_STD,
        "sn_gain": SN_GAIN,
        "head_gain": HEAD_GAIN,
        "head_bias": list(HEAD_BIAS),
    }


def difference(ours: Path, theirs: Path) -> dict[str, list[float]]:
    """Per-channel mean and largest absolute difference of two 8-bit RGB pictures."""
    a = np.asarray(Image.open(ours).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(theirs).convert("RGB"), dtype=np.int16)
    if a.shape != b.shape:
        raise SystemExit(f"{ours}: {a.shape} but DDColor's is {b.shape}")
    d = np.abs(a - b)
    return {"mean": [round(float(x), 4) for x in d.mean(axis=(0, 1))], "max": [int(x) for x in d.max(axis=(0, 1))]}


def cmd_weights(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        state = seeded_state(size)
        torch.save(published_layout(state), work / f"seeded-{size}.pth")
        print(f"{size}: {len(state)} tensors, digest {state_digest(state)} -> {work / f'seeded-{size}.pth'}")


def cmd_collect(work: Path) -> None:
    out = work / "out"
    run = json.loads((out / "ddcolor-run.json").read_text())
    REFERENCE.mkdir(parents=True, exist_ok=True)
    manifest = {
        "photo": str(PHOTO.relative_to(REPO)),
        "photo_sha256": sha256_file(PHOTO),
        **constants(),
        "input_sizes": list(INPUT_SIZES),
        "ddcolor_commit": "2adb63f2656ac41cbdf7b894cddd94121a3faf13",
        "ddcolor_torch": run.get("torch"),
        "ddcolor_opencv": run.get("opencv"),
        "sizes": {},
    }
    for size in SIZES:
        state = torch.load(work / f"seeded-{size}.pth", weights_only=True)["params"]
        entry = {"state_digest": state_digest(state), "outputs": {}}
        for input_size in INPUT_SIZES:
            name = f"{size}-{input_size}.png"
            if name not in COMMITTED:
                continue
            # DDColor wrote BGR through OpenCV; stored as an RGB PNG without metadata.
            rgb = np.asarray(Image.open(out / name).convert("RGB"))
            Image.fromarray(rgb).save(REFERENCE / name, optimize=True)
            entry["outputs"][name] = {"input_size": input_size, "sha256": sha256_file(REFERENCE / name)}
        manifest["sizes"][size] = entry
    (REFERENCE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {REFERENCE}")


def cmd_compare(work: Path) -> None:
    print("| size | input | mean difference R, G, B | largest difference R, G, B |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="vidcolor-ddcolor-") as tmp:
        for size in SIZES:
            for input_size in INPUT_SIZES:
                dest = Path(tmp) / f"{size}-{input_size}"
                cmd = [
                    sys.executable,
                    "-m",
                    "vidcolor",
                    "image",
                    str(PHOTO),
                    "-o",
                    str(dest),
                    "--model",
                    f"ddcolor:{work / f'seeded-{size}.pth'}",
                    "--render-factor",
                    str(input_size // 16),
                    "--quiet",
                ]
                subprocess.run(cmd, check=True)
                d = difference(dest / PHOTO.name, work / "out" / f"{size}-{input_size}.png")
                mean = ", ".join(f"{x:.4f}" for x in d["mean"])
                top = ", ".join(str(x) for x in d["max"])
                print(f"| {size} | {input_size} | {mean} | {top} |", flush=True)
                shutil.rmtree(dest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("weights", "collect", "compare"))
    ap.add_argument("work", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    {"weights": cmd_weights, "collect": cmd_collect, "compare": cmd_compare}[args.step](args.work)


if __name__ == "__main__":
    main()
