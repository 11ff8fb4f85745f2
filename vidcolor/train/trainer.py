"""The training loop shared by the modes: data, optimiser, schedule, checkpoints, samples, metrics.

Resumable: the latest checkpoint (model, optimiser, step, RNG) is written atomically every
``checkpoint_every`` steps; starting the same recipe again continues from it.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import compose_rgb, luma_to_lightness, rgb_to_luma
from vidcolor.errors import InputError
from vidcolor.models.efficientnet import load_imagenet_weights
from vidcolor.models.generator import Generator
from vidcolor.models.weights import save_generator
from vidcolor.train.data import batches, list_images, load_or_build_cache, split_holdout
from vidcolor.train.losses import PerceptualLoss, bin_prior, classification_loss, target_ab
from vidcolor.models.ab_bins import rebalance_weights
from vidcolor.train.recipe import Recipe
from vidcolor.train.samples import save_sample_grid

HEAD_STRIDE = 4

LogFn = Callable[[dict[str, float]], None]


@dataclass
class TrainResult:
    steps: int
    seconds: float
    weights: Path
    holdout_psnr: float
    holdout_gray_psnr: float


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(name)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up then cosine decay to 5% of the base rate."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of RGB in [0,1]."""
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10.0 * torch.log10(1.0 / mse)


@torch.no_grad()
def evaluate_holdout(model: Generator, rgb: torch.Tensor, device: torch.device, temperature: float | None = None) -> tuple[float, float]:
    """Mean PSNR of the colorized holdout and of its grey version against the truth."""
    model.eval()
    luma = rgb_to_luma(rgb)
    preds = []
    for i in range(0, len(rgb), 32):
        l = luma[i : i + 32].to(device)
        ab = model(luma_to_lightness(l), temperature=temperature).float().cpu()
        preds.append(compose_rgb(luma[i : i + 32], ab))
    pred = torch.cat(preds)
    gray = luma.expand(-1, 3, -1, -1)
    return float(psnr(pred, rgb).mean()), float(psnr(gray, rgb).mean())


class Trainer:
    def __init__(self, recipe: Recipe, log: LogFn | None = None) -> None:
        self.recipe = recipe
        self.cfg = recipe.train
        self.log = log or (lambda _: None)
        if self.cfg.mode not in ("classification", "regression"):
            raise InputError(f"unknown training mode {self.cfg.mode!r}: classification or regression (gan: see train.gan)")
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        self.device = resolve_device(self.cfg.device)
        self.out = Path(self.cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)

        paths = list_images(recipe.data.roots)
        if not paths:
            raise InputError(f"no training images under {', '.join(recipe.data.roots)}")
        self.images = load_or_build_cache(paths, recipe.data.cache_size, Path(recipe.data.cache_dir), recipe.data.filter)
        if len(self.images) <= recipe.data.holdout + recipe.train.batch_size:
            raise InputError(f"only {len(self.images)} usable training images: too few for this recipe")
        self.train_idx, self.holdout_idx = split_holdout(len(self.images), recipe.data.holdout, self.cfg.seed)
        self.holdout_rgb = self._center_crops(self.holdout_idx)

        head = "regression" if self.cfg.mode == "regression" else "classification"
        self.model = Generator(type(recipe.model)(**{**recipe.model.to_dict(), "head": head})).to(self.device)
        if self.cfg.pretrained_encoder and not self.cfg.init_from:
            load_imagenet_weights(self.model.encoder)
        enc = list(self.model.encoder.parameters())
        enc_ids = {id(p) for p in enc}
        rest = [p for p in self.model.parameters() if id(p) not in enc_ids]
        self.opt = torch.optim.AdamW(
            [{"params": enc, "lr_scale": self.cfg.encoder_lr_scale}, {"params": rest, "lr_scale": 1.0}],
            lr=self.cfg.lr,
            weight_decay=self.cfg.weight_decay,
        )
        self.gen = torch.Generator().manual_seed(self.cfg.seed)
        self.step = 0
        self.class_weights = self._class_weights() if head == "classification" else None
        self.perceptual = PerceptualLoss(self.cfg.pretrained_encoder).to(self.device) if head == "regression" and self.cfg.perceptual_weight > 0 else None
        self._resume()

    # -- setup helpers -------------------------------------------------------------------
    def _center_crops(self, idx: np.ndarray) -> torch.Tensor:
        rgb = torch.from_numpy(np.ascontiguousarray(self.images[np.sort(idx)])).permute(0, 3, 1, 2).float() / 255.0
        return F.interpolate(rgb, size=(self.recipe.augment.size,) * 2, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)

    def _class_weights(self) -> torch.Tensor:
        sample = self.train_idx[:: max(1, len(self.train_idx) // 2000)]
        ab = target_ab(self._center_crops(sample), HEAD_STRIDE)
        prior = bin_prior(ab, self.model.bin_centers.cpu())
        return rebalance_weights(prior, self.cfg.rebalance_lambda).to(self.device)

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def _resume(self) -> None:
        if self.checkpoint_path.exists():
            state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
            self.step = int(state["step"])
            self.gen.set_state(state["rng"])
        elif self.cfg.init_from:
            from vidcolor.models.weights import load_generator

            init, _ = load_generator(self.cfg.init_from)
            self.model.load_state_dict(init.state_dict())

    def save_checkpoint(self) -> None:
        tmp = self.checkpoint_path.with_suffix(".partial")
        torch.save({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step, "rng": self.gen.get_state()}, tmp)
        os.replace(tmp, self.checkpoint_path)

    # -- one step ------------------------------------------------------------------------
    def loss(self, rgb: torch.Tensor, luma: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        lightness = luma_to_lightness(luma)
        head = self.model.head_output(lightness)
        if self.class_weights is not None:
            loss = classification_loss(head, target_ab(rgb, HEAD_STRIDE), self.model.bin_centers, self.class_weights)
            return loss, {"ce": float(loss.detach())}
        ab = F.interpolate(head, size=rgb.shape[-2:], mode="bilinear", align_corners=False)
        truth = target_ab(rgb)
        pix = F.huber_loss(ab, truth, delta=self.cfg.huber_delta)
        parts = {"huber": float(pix)}
        loss = pix
        if self.perceptual is not None:
            pred_rgb = compose_rgb(rgb_to_luma(rgb), ab)
            perc = self.perceptual(pred_rgb, rgb)
            loss = loss + self.cfg.perceptual_weight * perc * 100.0
            parts["perceptual"] = float(perc)
        return loss, parts

    def run(self, stop: Callable[[], bool] | None = None) -> TrainResult:
        start = time.time()
        stream = batches(self.images, self.train_idx, self.cfg.batch_size, self.recipe.augment, self.gen)
        metrics_file = self.out / "metrics.csv"
        new_file = not metrics_file.exists()
        with metrics_file.open("a", newline="") as fh:
            writer = csv.writer(fh)
            if new_file:
                writer.writerow(["step", "loss", "lr", "images_per_s", "holdout_psnr", "gray_psnr"])
            while self.step < self.cfg.steps:
                if stop is not None and stop():
                    break
                self.model.train()
                t0 = time.time()
                rgb, luma = next(stream)
                rgb, luma = rgb.to(self.device), luma.to(self.device)
                factor = lr_factor(self.step, self.cfg.warmup_steps, self.cfg.steps)
                for group in self.opt.param_groups:
                    group["lr"] = self.cfg.lr * factor * group["lr_scale"]
                loss, parts = self.loss(rgb, luma)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                self.step += 1
                rate = len(rgb) / (time.time() - t0)
                row = {"step": self.step, "loss": float(loss.detach()), "lr": self.cfg.lr * factor, "images_per_s": rate, **parts}
                if self.step % self.cfg.checkpoint_every == 0 or self.step == self.cfg.steps:
                    self.save_checkpoint()
                if self.step % self.cfg.sample_every == 0 or self.step == self.cfg.steps:
                    ps, gray = evaluate_holdout(self.model, self.holdout_rgb, self.device)
                    row.update(holdout_psnr=ps, gray_psnr=gray)
                    save_sample_grid(self.model, self.holdout_rgb[:8], self.out / "samples" / f"step{self.step:07d}.png", self.device)
                if self.step % self.cfg.log_every == 0 or "holdout_psnr" in row:
                    writer.writerow([self.step, f"{float(loss.detach()):.5f}", f"{row['lr']:.3g}", f"{rate:.1f}", row.get("holdout_psnr", ""), row.get("gray_psnr", "")])
                    fh.flush()
                    self.log(row)
        self.save_checkpoint()
        ps, gray = evaluate_holdout(self.model, self.holdout_rgb, self.device)
        weights = self.out / "model.safetensors"
        save_generator(self.model.cpu(), weights, {"name": self.recipe.name, "steps": str(self.step), "recipe": repr(asdict(self.recipe))})
        self.model.to(self.device)
        return TrainResult(self.step, time.time() - start, weights, ps, gray)
