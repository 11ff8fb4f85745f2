"""DeOldify's own inference on seeded weights: the reference vidcolor's port is checked against.

Runs with DeOldify's Python (its checkout on sys.path, its vendored fastai 1.0.x), never with
vidcolor's: see tests/data/deoldify/RECIPE.md for building that environment. It uses only
DeOldify's public entry points, as its notebooks do:

1. builds each generator with DeOldify's own builder (``gen_learner_deep`` / ``gen_learner_wide``),
   puts in the seeded state that ``pipelines/deoldify_reference.py weights`` wrote, creates the
   optimiser with discriminative learning rates (``slice``) and saves with fastai's ``learn.save``
   (the file vidcolor must load directly);
2. loads that file back with DeOldify's ``gen_inference_deep`` / ``gen_inference_wide``;
3. runs ``ModelImageVisualizer.get_transformed_image`` on the photo at each render factor
   (post-processing on, no watermark) and saves the result as PNG.

    DEOLDIFY=/path/to/DeOldify TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 \\
        deoldify-env/bin/python pipelines/deoldify_reference_run.py WORK PHOTO OUT_DIR
    (THREADS=N for N torch threads; 1 by default)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

RENDER_FACTORS = (8, 21)
KINDS = {"artistic": ("resnet34", "deep"), "video": ("resnet101", "wide")}
# torchvision's ImageNet file names: fastai's create_body asks for pretrained weights, which
# cannot be downloaded here; seeded random ones stand in (learn.load replaces them all anyway).
TORCHVISION_FILES = {"resnet34": "resnet34-b627a593.pth", "resnet101": "resnet101-63fe2227.pth"}


def main() -> int:
    work, photo, out_dir = (Path(a).resolve() for a in sys.argv[1:4])
    sys.path.insert(0, os.environ["DEOLDIFY"])
    os.environ.setdefault("TORCH_HOME", str(work / "torch-home"))
    out_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(work)  # DeOldify reads ./dummy/ and ./models/ relative to the working directory

    import torch
    import torchvision.models as tvm

    # One thread by default: oneDNN's multi-threaded convolutions sum in another order, which can
    # move a value across a truncation step; the committed reference is single-threaded.
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    checkpoints = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    for arch, name in TORCHVISION_FILES.items():
        if not (checkpoints / name).exists():
            torch.manual_seed(0)
            torch.save(getattr(tvm, arch)().state_dict(), checkpoints / name)
    dummy = work / "dummy"
    dummy.mkdir(exist_ok=True)
    from PIL import Image

    for i in range(2):
        Image.new("RGB", (8, 8), (i * 100, 50, 50)).save(dummy / f"d{i}.png")
    (work / "models").mkdir(exist_ok=True)

    from deoldify import device
    from deoldify.device_id import DeviceId

    device.set(device=DeviceId.CPU)
    import torch.nn.functional as F
    from deoldify.dataset import get_dummy_databunch
    from deoldify.filters import ColorizerFilter, MasterFilter
    from deoldify.generators import gen_inference_deep, gen_inference_wide, gen_learner_deep, gen_learner_wide
    from deoldify.visualize import ModelImageVisualizer

    manifest: dict[str, object] = {
        "render_factors": list(RENDER_FACTORS),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "outputs": {},
    }
    for kind, (_arch, unet) in KINDS.items():
        seeded = torch.load(work / f"seeded-{kind}.pt", map_location="cpu", weights_only=True)
        builder = gen_learner_deep if unet == "deep" else gen_learner_wide
        learn = builder(data=get_dummy_databunch(), gen_loss=F.l1_loss)
        learn.model.load_state_dict(seeded, strict=True)
        learn.create_opt(slice(1e-5, 1e-3), 1e-3)  # fastai's discriminative learning rates
        name = f"deoldify-{kind}-seeded"
        learn.path = work  # learn.save writes WORK/models/NAME.pth, where gen_inference_* reads it
        learn.save(name)
        del learn
        infer = gen_inference_deep if unet == "deep" else gen_inference_wide
        learn = infer(root_folder=work, weights_name=name)
        filtr = MasterFilter([ColorizerFilter(learn=learn)], render_factor=RENDER_FACTORS[0])
        vis = ModelImageVisualizer(filtr, results_dir=str(out_dir))
        for rf in RENDER_FACTORS:
            result = vis.get_transformed_image(photo, render_factor=rf, post_process=True, watermarked=False)
            target = out_dir / f"{kind}-rf{rf}.png"
            result.save(target)
            manifest["outputs"][f"{kind}-rf{rf}"] = target.name  # type: ignore[index]
            print(f"{kind} render factor {rf}: {target}", flush=True)
        del learn, vis, filtr
    (out_dir / "deoldify-run.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
