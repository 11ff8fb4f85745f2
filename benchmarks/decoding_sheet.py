"""Contact sheet of decoding settings on real film frames (issue 11): grey | the settings | truth.

Frame 20 of every other video-tune clip (DAVIS 2016), coloured by one set of weights at the video
render size under several (alpha, T, gamma[, low, high]) decodings (low, high: the confidence
window), composed with the frame's true luma (no temporal stage). alpha scales the rebalancing
correction -alpha*log w(q) (the class weights come from the training recipe's holdout trainer, as
in pipelines/tune_temperature.py).

    nice python benchmarks/decoding_sheet.py runs/v2/resume.safetensors [--recipe pipelines/v2.toml] \
        [--settings 0.75,1.0,0 0.75,1.0,1 1,0.55,1,0.35,0.55] [--out benchmarks/decoding_sheet.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import torch
import torch.nn.functional as F
from PIL import Image

from vidcolor.color import compose_rgb, luma_to_lightness, rgb_to_luma
from vidcolor.models.base import render_shape, resize_luma
from vidcolor.models.weights import load_generator
from vidcolor.train.recipe import load_recipe
from vidcolor.train.trainer import Trainer

CLIPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "video-tune"
TILE = (180, 320)  # height, width
FRAME = 20


def parse_setting(text: str) -> tuple[float, float, float, float, float]:
    """ "alpha,T,gamma" or "alpha,T,gamma,low,high" -> (alpha, T, gamma, low, high)."""
    values = [float(x) for x in text.split(",")]
    if len(values) not in (3, 5):
        raise SystemExit(f"--settings {text}: give alpha,T,gamma or alpha,T,gamma,low,high")
    alpha, temperature, gamma, low, high = values if len(values) == 5 else [*values, 0.0, 1.0]
    return alpha, temperature, gamma, low, high


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", type=Path)
    ap.add_argument(
        "--recipe", default="pipelines/v2.toml", help="the recipe whose class weights give the rebalancing correction"
    )
    ap.add_argument(
        "--settings", nargs="+", default=["0.75,1.0,0", "0.75,1.0,1", "0.75,1.0,2"], help="alpha,T,gamma[,low,high]"
    )
    ap.add_argument("--clips", type=Path, default=CLIPS)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "decoding_sheet.png")
    args = ap.parse_args()
    torch.set_num_threads(1)
    log_w = torch.log(Trainer(load_recipe(args.recipe)).class_weights.float().cpu())
    generator = load_generator(args.weights)[0].eval()
    settings = [parse_setting(s) for s in args.settings]
    rows = []
    for clip in sorted(args.clips.glob("*.mp4"))[::2]:
        with av.open(str(clip)) as c:
            frame = next(f for i, f in enumerate(c.decode(video=0)) if i == FRAME).to_ndarray(format="rgb24")
        rgb = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0
        luma = rgb_to_luma(rgb)
        small = resize_luma(luma, render_shape(*rgb.shape[-2:], 16, True))
        row = [luma.expand(-1, 3, -1, -1)]
        for alpha, temperature, gamma, low, high in settings:
            generator.set_decoding(
                temperature=temperature,
                bin_bias=tuple((-alpha * log_w).tolist()),
                confidence_gamma=gamma,
                confidence_window=(low, high),
            )
            with torch.no_grad():
                ab = generator(luma_to_lightness(small))
            row.append(compose_rgb(luma, F.interpolate(ab, size=rgb.shape[-2:], mode="bilinear", align_corners=False)))
        row.append(rgb)
        rows.append(torch.cat([F.interpolate(x, size=TILE, mode="area") for x in row], 3))
    sheet = torch.cat(rows, 2)[0].permute(1, 2, 0).clamp(0, 1).mul(255).round().byte().numpy()
    Image.fromarray(sheet).save(args.out, optimize=True)
    print(
        f"{args.out}: rows {[c.stem for c in sorted(args.clips.glob('*.mp4'))[::2]]}, columns grey | "
        + " | ".join(args.settings)
        + " | truth"
    )


if __name__ == "__main__":
    main()
