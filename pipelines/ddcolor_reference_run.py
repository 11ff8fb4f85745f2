"""DDColor's own inference on seeded weights: the reference vidcolor's port is checked against.

Runs with DDColor's Python (its checkout on sys.path), never with vidcolor's: see
tests/data/ddcolor/RECIPE.md for that environment. It uses only DDColor's public entry points,
as its ``scripts/infer.py`` does: ``build_ddcolor_model(DDColor, model_path=FILE,
input_size=N, model_size=SIZE)`` on the file in the published layout (``{'params': state}``),
then ``ColorizationPipeline(model, input_size=N).process(cv2.imread(PHOTO))`` and
``cv2.imwrite``.

    DDCOLOR=/path/to/DDColor ddcolor-env/bin/python pipelines/ddcolor_reference_run.py \\
        WORK PHOTO OUT_DIR SIZE[,SIZE] INPUT[,INPUT]
    (THREADS=N for N torch threads; 1 by default)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> int:
    work, photo, out_dir = (Path(a).resolve() for a in sys.argv[1:4])
    sizes = sys.argv[4].split(",")
    inputs = [int(n) for n in sys.argv[5].split(",")]
    sys.path.insert(0, os.environ["DDCOLOR"])
    out_dir.mkdir(parents=True, exist_ok=True)

    import cv2
    import torch
    from ddcolor import ColorizationPipeline, DDColor, build_ddcolor_model

    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    image = cv2.imread(str(photo))
    if image is None:
        raise SystemExit(f"{photo}: OpenCV cannot read it")
    record: dict = {"torch": torch.__version__, "opencv": cv2.__version__, "outputs": {}}
    for size in sizes:
        for input_size in inputs:
            model = build_ddcolor_model(
                DDColor,
                model_path=str(work / f"seeded-{size}.pth"),
                input_size=input_size,
                model_size=size,
                device=torch.device("cpu"),
            )
            out = ColorizationPipeline(model, input_size=input_size, device=torch.device("cpu")).process(image)
            name = f"{size}-{input_size}.png"
            cv2.imwrite(str(out_dir / name), out)
            record["outputs"][name] = {"size": size, "input_size": input_size}
            print(f"{size} at {input_size}: {out_dir / name}", flush=True)
    (out_dir / "ddcolor-run.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
