"""DeOldify's own output as a reference for vidcolor's DeOldify support (issue 13).

The recipe (tests/data/deoldify/RECIPE.md has the whole of it, environment included):

    python pipelines/deoldify_reference.py weights WORK           # seeded states -> WORK/seeded-KIND.pt
    DEOLDIFY=... TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 deoldify-env/bin/python \\
        pipelines/deoldify_reference_run.py WORK samples/photos/chelsea.png WORK/out
    python pipelines/deoldify_reference.py collect WORK           # -> tests/data/deoldify/ (+ manifest.json)
    python pipelines/deoldify_reference.py compare WORK           # vidcolor image on the learn.save files

``compare`` runs ``vidcolor image --model deoldify-KIND:WORK/models/deoldify-KIND-seeded.pth``
(the files DeOldify's ``learn.save`` wrote) and prints, per kind and render factor, the mean and
largest difference per channel from DeOldify's own pictures, in 8-bit code values.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vidcolor.hashing import sha256_file
from vidcolor.models.deoldify.seeded import HEAD_BIAS, POWER_ITERATIONS, SEED, SN_GAIN, seeded_state, state_digest

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "tests" / "data" / "deoldify"
PHOTO = REPO / "samples" / "photos" / "chelsea.png"
KINDS = ("artistic", "video")  # stable is video's architecture
RENDER_FACTORS = (8, 21)


def difference(ours: Path, theirs: Path) -> dict[str, list[float]]:
    """Per-channel mean and largest absolute difference of two 8-bit RGB pictures."""
    a = np.asarray(Image.open(ours).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(theirs).convert("RGB"), dtype=np.int16)
    if a.shape != b.shape:
        raise SystemExit(f"{ours}: {a.shape} but DeOldify's is {b.shape}")
    d = np.abs(a - b)
    return {"mean": [round(float(x), 3) for x in d.mean(axis=(0, 1))], "max": [int(x) for x in d.max(axis=(0, 1))]}


def cmd_weights(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        state = seeded_state(kind)
        torch.save(state, work / f"seeded-{kind}.pt")
        print(f"{kind}: {len(state)} tensors, digest {state_digest(state)} -> {work / f'seeded-{kind}.pt'}")


def cmd_collect(work: Path) -> None:
    out = work / "out"
    run = json.loads((out / "deoldify-run.json").read_text())
    REFERENCE.mkdir(parents=True, exist_ok=True)
    manifest = {
        "photo": str(PHOTO.relative_to(REPO)),
        "photo_sha256": sha256_file(PHOTO),
        "seed": SEED,
        "power_iterations": POWER_ITERATIONS,
        "sn_gain": SN_GAIN,
        "head_bias": list(HEAD_BIAS),
        "render_factors": list(RENDER_FACTORS),
        "deoldify_threads": run.get("threads"),
        "deoldify_torch": run.get("torch"),
        "kinds": {},
    }
    for kind in KINDS:
        state = torch.load(work / f"seeded-{kind}.pt", weights_only=True)
        entry = {
            "state_digest": state_digest(state),
            "learn_save_sha256": sha256_file(work / "models" / f"deoldify-{kind}-seeded.pth"),
            "outputs": {},
        }
        for rf in RENDER_FACTORS:
            name = f"{kind}-rf{rf}.png"
            shutil.copyfile(out / name, REFERENCE / name)
            entry["outputs"][str(rf)] = {"file": name, "sha256": sha256_file(REFERENCE / name)}
        manifest["kinds"][kind] = entry
    (REFERENCE / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"reference pictures and manifest -> {REFERENCE}")


def cmd_compare(work: Path, threads: int) -> int:
    worst = 0.0
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    print(f"vidcolor image vs DeOldify's own output, {threads} torch thread(s), photo {PHOTO.name}")
    print("| kind | render factor | mean difference R, G, B | largest difference R, G, B |")
    print("| --- | --- | --- | --- |")
    for kind in KINDS:
        weights = work / "models" / f"deoldify-{kind}-seeded.pth"
        for rf in RENDER_FACTORS:
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "vidcolor",
                        "image",
                        str(PHOTO),
                        "-o",
                        tmp,
                        "--model",
                        f"deoldify-{kind}:{weights}",
                        "--render-factor",
                        str(rf),
                    ],
                    check=True,
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
                d = difference(Path(tmp) / PHOTO.name, REFERENCE / f"{kind}-rf{rf}.png")
            worst = max(worst, *d["max"])
            print(f"| {kind} | {rf} | {', '.join(f'{x:.3f}' for x in d['mean'])} | {', '.join(map(str, d['max']))} |")
    return 0 if worst <= 2 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("weights", "collect", "compare"))
    parser.add_argument("work", type=Path, help="working folder outside the repository")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for compare (the reference was made on 1)"
    )
    args = parser.parse_args()
    if args.step == "weights":
        cmd_weights(args.work)
    elif args.step == "collect":
        cmd_collect(args.work)
    else:
        return cmd_compare(args.work, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
