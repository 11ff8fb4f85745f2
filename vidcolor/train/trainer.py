"""The training loop shared by the modes: data, optimiser, schedule, checkpoints, samples, metrics.

Resumable: the latest checkpoint (model, optimiser, step, grad scaler) is written atomically every
``checkpoint_every`` steps; starting the same recipe again continues from it. The batch of step k
depends only on the seed and k (``BatchStream``), so a resumed run trains exactly like an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from vidcolor.color import compose_rgb, luma_to_lightness, rgb_to_luma
from vidcolor.colorizer import resolve_device
from vidcolor.errors import InputError, ModelError
from vidcolor.metrics import psnr
from vidcolor.models.ab_bins import annealed_mean, rebalance_weights
from vidcolor.models.efficientnet import load_imagenet_weights
from vidcolor.models.generator import Generator, GeneratorConfig
from vidcolor.models.weights import load_generator, read_metadata, save_generator
from vidcolor.train.augment import AugmentConfig
from vidcolor.train.corpus import open_corpus
from vidcolor.train.data import BatchStream, load_or_build_cache, split_holdout
from vidcolor.train.hints import fixed_point_hints, simulate_hints
from vidcolor.train.index import training_paths
from vidcolor.train.losses import bin_prior, build_perceptual, classification_loss, target_ab
from vidcolor.train.recipe import Recipe, validate_recipe
from vidcolor.train.samples import save_sample_grid

HEAD_STRIDE = 4
# Columns of metrics.csv; a mode may add its loss parts after these.
BASE_COLUMNS = ("step", "loss", "lr", "images_per_s", "holdout_psnr", "gray_psnr", "holdout_hint10_psnr")
# Random streams of BatchStream.generator used here (0 and 1 are the stream's own).
HINT_STREAM = 2
HOLDOUT_HINT_POINTS = 10

LogFn = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    steps: int
    seconds: float
    weights: Path
    holdout_psnr: float
    holdout_gray_psnr: float


@dataclass(frozen=True)
class Precision:
    """Autocast dtype for the forward passes (None: float32) and whether gradients are scaled."""

    dtype: torch.dtype | None
    scale: bool

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def resolve_precision(amp: str, device: torch.device) -> Precision:
    """``auto``: bf16 on CUDA that has it, else fp16 with a grad scaler; float32 on CPU, where
    bf16 autocast is only faster on CPUs with AMX/AVX512-BF16 (ask for it with ``bf16``)."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return Precision(None, False)
    if amp == "auto":
        return Precision(torch.bfloat16, False) if torch.cuda.is_bf16_supported() else Precision(torch.float16, True)
    if amp == "bf16":
        return Precision(torch.bfloat16, False)
    if amp == "fp16":
        if device.type != "cuda":
            raise InputError("fp16 mixed precision needs CUDA; on CPU use --amp bf16")
        return Precision(torch.float16, True)
    raise InputError(f"unknown --amp {amp!r}: auto, off, bf16 or fp16")


def lr_factor(step: int, warmup: int, total: int, schedule: str = "cosine", decay_steps: int = 0) -> float:
    """Linear warm-up, then ``cosine``: cosine decay to 5% of the base rate over the rest, or
    ``wsd`` (warm-up, stable, decay): constant, then the same cosine over the last decay_steps."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "wsd":
        start = total - decay_steps
        if step < start:
            return 1.0
        progress = min(1.0, (step - start) / max(1, decay_steps))
    else:
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def evaluate_holdout(
    model: Generator,
    rgb: torch.Tensor,
    device: torch.device,
    temperature: float | None = None,
    hints: torch.Tensor | None = None,
) -> tuple[float, float]:
    """Mean PSNR of the colorized holdout (given ``hints``, if any) and of its grey version."""
    was_training = model.training
    model.eval()
    luma = rgb_to_luma(rgb)
    preds = []
    for i in range(0, len(rgb), 32):
        part = luma[i : i + 32].to(device)
        h = hints[i : i + 32].to(device) if hints is not None else None
        ab = model(luma_to_lightness(part), temperature=temperature, hints=h).float().cpu()
        preds.append(compose_rgb(luma[i : i + 32], ab))
    model.train(was_training)
    pred = torch.cat(preds)
    gray = luma.expand(-1, 3, -1, -1)
    return float(psnr(pred, rgb).mean()), float(psnr(gray, rgb).mean())


def load_init(path: str) -> tuple[Generator, dict[str, str]]:
    """A generator to start from: a vidcolor .safetensors file (what ``init_from`` names)."""
    try:
        return load_generator(path)
    except ModelError as exc:
        raise ModelError(f"train.init_from: {exc}") from None


class Trainer:
    """Classification or regression training of a generator (``GanTrainer`` adds the critic)."""

    modes: tuple[str, ...] = ("classification", "regression")

    def __init__(self, recipe: Recipe, log: LogFn | None = None, on_step: LogFn | None = None) -> None:
        self.recipe = validate_recipe(recipe)
        self.cfg = recipe.train
        self.log = log or (lambda _: None)
        self.on_step = on_step or (lambda _: None)
        if self.cfg.mode not in self.modes:
            raise InputError(
                f"training mode {self.cfg.mode!r} needs "
                f"{'GanTrainer' if self.cfg.mode == 'gan' else 'another trainer'}: "
                "use vidcolor.train.modes.build_trainer()"
            )
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        # Data parallel over processes (see run_data_parallel): each rank trains on its share of
        # every batch and gradients are averaged; rank 0 alone writes files and logs.
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        self.device = resolve_device(self.cfg.device)
        self.precision = resolve_precision(self.cfg.amp, self.device)
        self.out = Path(self.cfg.out_dir)
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)

        self.low_stream: BatchStream | None = None
        if recipe.data.corpus:
            self._open_corpus()
        else:
            self._open_files()
        self.holdout_rgb = self._center_crops(self.holdout_idx)
        self.holdout_hints = (
            fixed_point_hints(self.holdout_rgb, HOLDOUT_HINT_POINTS, 3, self.cfg.seed)
            if self.recipe.model.hints
            else None
        )
        self.stream = BatchStream(self.images, self.train_idx, self.cfg.batch_size, recipe.augment, self.cfg.seed)

        # Seeded initialisation (the same recipe gives the same run), without disturbing the
        # caller's global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            self.model = self._build_model().to(self.device)
        if self.cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        enc = list(self.model.encoder.parameters())
        enc_ids = {id(p) for p in enc}
        rest = [p for p in self.model.parameters() if id(p) not in enc_ids]
        self.opt = torch.optim.AdamW(
            [{"params": enc, "lr_scale": self.cfg.encoder_lr_scale}, {"params": rest, "lr_scale": 1.0}],
            lr=self.cfg.lr,
            weight_decay=self.cfg.weight_decay,
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.scale)
        self.step = 0
        head = self.model.config.head
        self.class_weights = self._class_weights() if head == "classification" else None
        self.perceptual = (
            build_perceptual(self.cfg.perceptual_net, self.cfg.pretrained_encoder).to(self.device)
            if head == "regression" and self.cfg.perceptual_weight > 0
            else None
        )
        # Set by a weights-only resume: the step from which the learning rate warms up again.
        self.rewarm_from = -1
        self._build_extra()
        self._resume()

    # -- setup helpers -------------------------------------------------------------------
    def _open_files(self) -> None:
        """Training files from roots or indexes, decoded once into the cache; a random holdout."""
        data = self.recipe.data
        paths = training_paths(data.roots, data.index, data.verify_index, data.extra_index)
        if not paths:
            raise InputError(f"no training images under {', '.join(data.roots)}")
        self.images = load_or_build_cache(paths, data.cache_size, Path(data.cache_dir), data.filter, data.workers)
        if len(self.images) < data.holdout + self.cfg.batch_size:
            raise InputError(
                f"only {len(self.images)} usable training images: too few for holdout {data.holdout} + batch "
                f"{self.cfg.batch_size}"
            )
        self.train_idx, self.holdout_idx = split_holdout(len(self.images), data.holdout, self.cfg.seed)

    def _open_corpus(self) -> None:
        """A packed corpus: its high-resolution array trains the main stages, its low-resolution
        array the first; its held-out rows (evenly thinned to data.holdout) are scored."""
        data = self.recipe.data
        corpus = open_corpus(data.corpus, data.corpus_fingerprint)
        low_idx, high_idx, held = corpus.split(data.corpus_filter)
        if len(high_idx) < self.cfg.batch_size or len(held) == 0:
            raise InputError(
                f"corpus {data.corpus}: {len(high_idx)} training and {len(held)} held-out pictures are too few"
            )
        side = corpus.high.shape[1]
        for name, size in (
            ("augment.size", self.recipe.augment.size),
            ("augment.final_size", self.recipe.augment.final_size),
        ):
            if size > side:
                raise InputError(f"{name} {size} is larger than the corpus's {side} px pictures")
        self.images, self.train_idx = corpus.high, high_idx
        self.holdout_idx = held[np.linspace(0, len(held) - 1, min(len(held), data.holdout)).round().astype(np.int64)]
        if self.cfg.low_steps:
            low_aug = replace(self.recipe.augment, size=self.recipe.augment.low_size)
            self.low_stream = BatchStream(
                corpus.low, low_idx, self.cfg.low_batch_size or self.cfg.batch_size, low_aug, self.cfg.seed
            )

    def _build_extra(self) -> None:
        """Hook for subclasses: more networks to build before the checkpoint is read."""

    def _build_model(self) -> Generator:
        """A fresh generator: from ``init_from``, else an encoder from ``init_backbone`` or ImageNet."""
        if self.cfg.init_from:
            model, _ = load_init(self.cfg.init_from)
            if model.config.head != self.cfg.mode:
                raise InputError(f"train.init_from has a {model.config.head} head; this recipe trains {self.cfg.mode}")
            return model
        model = Generator(GeneratorConfig(**{**self.recipe.model.to_dict(), "head": self.cfg.mode}))
        if self.cfg.init_backbone:
            from vidcolor.train.backbone import import_backbone

            import_backbone(model.encoder, self.cfg.init_backbone)
        elif self.cfg.pretrained_encoder:
            load_imagenet_weights(model.encoder)
        return model

    def _center_crops(self, idx: np.ndarray) -> torch.Tensor:
        rgb = torch.from_numpy(np.ascontiguousarray(self.images[np.sort(idx)])).permute(0, 3, 1, 2).float() / 255.0
        return F.interpolate(
            rgb, size=(self.recipe.augment.size,) * 2, mode="bilinear", antialias=True, align_corners=False
        ).clamp(0, 1)

    def _class_weights(self) -> torch.Tensor:
        sample = self.train_idx[:: max(1, len(self.train_idx) // 2000)]
        ab = target_ab(self._center_crops(sample), HEAD_STRIDE)
        prior = bin_prior(ab, self.model.bin_centers.cpu())
        return rebalance_weights(prior, self.cfg.rebalance_lambda).to(self.device)

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    @property
    def total_steps(self) -> int:
        """Steps of the whole schedule (what a progress bar counts to)."""
        return self.cfg.steps

    @property
    def steps_done(self) -> int:
        return self.step

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "step": self.step,
            "scaler": self.scaler.state_dict(),
            "mode": self.cfg.mode,
            "config": json.dumps(self.model.config.to_dict()),
        }

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def _resume(self) -> None:
        weights_step = self._weights_resume_step()
        if not self.checkpoint_path.exists() or weights_step > self._checkpoint_step():
            if weights_step > 0:
                self._resume_from_weights()
            return
        try:
            state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
            if state.get("mode", self.cfg.mode) != self.cfg.mode:
                raise ValueError(f"it is a {state['mode']} run")
            self.load_checkpoint_state(state)
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise ModelError(
                f"{self.checkpoint_path} does not fit this recipe ({str(exc).splitlines()[0][:160]}); train into "
                "another --out"
            ) from None

    @property
    def resume_weights_path(self) -> Path:
        """Weights-only resume point written beside checkpoint.pt (small enough to commit)."""
        return self.out / "resume.safetensors"

    def _checkpoint_step(self) -> int:
        try:
            state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
            return int(state["step"])
        except Exception:  # an unreadable checkpoint is reported by the normal resume path
            return 0

    def _weights_resume_step(self) -> int:
        path = self.cfg.resume_weights
        if not path or not Path(path).is_file() or self.cfg.mode == "gan":
            return 0
        return int(read_metadata(path).get("step", "0") or 0)

    def _resume_from_weights(self) -> None:
        """Continue from ``resume_weights``: model and step; the optimiser starts afresh and the
        learning rate warms up again (its moments re-estimate within a few hundred steps)."""
        model, meta = load_generator(self.cfg.resume_weights)
        if model.config.to_dict() | {"bin_bias": ()} != self.model.config.to_dict() | {"bin_bias": ()}:
            raise ModelError(f"train.resume_weights {self.cfg.resume_weights} is another architecture than this recipe")
        self.model.load_state_dict(model.state_dict())
        self.step = int(meta["step"])
        self.rewarm_from = self.step

    def _sync_buffers(self) -> None:
        """Average batch-norm statistics over the ranks (each saw only its share of batches)."""
        if self.world == 1:
            return
        for buf in self.model.buffers():
            if buf.is_floating_point():
                dist.all_reduce(buf)
                buf /= self.world

    def save_checkpoint(self) -> None:
        self._sync_buffers()
        if self.rank != 0:
            return
        tmp = self.checkpoint_path.with_suffix(".partial")
        torch.save(self.checkpoint_state(), tmp)
        os.replace(tmp, self.checkpoint_path)
        save_generator(
            self.model,
            self.resume_weights_path,
            {"name": self.recipe.name, "step": str(self.step), "mode": self.cfg.mode},
        )

    # -- losses --------------------------------------------------------------------------
    def predict_ab(self, head: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Differentiable ab at full training size from the head (annealed mean for bins)."""
        if self.model.config.head == "classification":
            head = annealed_mean(head.float(), self.model.bin_centers, self.model.config.temperature)
        return F.interpolate(head.float(), size=size, mode="bilinear", align_corners=False)

    def base_loss(self, head: torch.Tensor, rgb: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The generator's own loss given its head output (float32 maths, whatever the autocast)."""
        if self.class_weights is not None:
            loss = classification_loss(
                head.float(), target_ab(rgb, HEAD_STRIDE), self.model.bin_centers, self.class_weights
            )
            return loss, {"ce": float(loss.detach())}
        ab = F.interpolate(head.float(), size=rgb.shape[-2:], mode="bilinear", align_corners=False)
        pix = F.huber_loss(ab, target_ab(rgb), delta=self.cfg.huber_delta)
        parts = {"huber": float(pix.detach())}
        loss = pix
        if self.perceptual is not None:
            pred_rgb = compose_rgb(rgb_to_luma(rgb), ab)
            with self.precision.autocast(self.device):
                perc = self.perceptual(pred_rgb, rgb).float()
            loss = loss + self.cfg.perceptual_weight * perc * 100.0
            parts["perceptual"] = float(perc.detach())
        return loss, parts

    def loss(
        self, rgb: torch.Tensor, luma: torch.Tensor, hints: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        lightness = luma_to_lightness(luma)
        if self.cfg.channels_last:
            lightness = lightness.contiguous(memory_format=torch.channels_last)
            hints = hints.contiguous(memory_format=torch.channels_last) if hints is not None else None
        with self.precision.autocast(self.device):
            head = self.model.head_output(lightness, hints)
        return self.base_loss(head, rgb)

    def _set_lr(self, opt: torch.optim.Optimizer, base: float, step: int, total: int) -> float:
        factor = lr_factor(step, self.cfg.warmup_steps, total, self.cfg.schedule, self.cfg.decay_steps)
        if self.rewarm_from >= 0 and step - self.rewarm_from < self.cfg.rewarm_steps:
            factor *= (step - self.rewarm_from + 1) / self.cfg.rewarm_steps
        for group in opt.param_groups:
            group["lr"] = base * factor * group.get("lr_scale", 1.0)
        return base * factor

    def augment_for(self, step: int) -> AugmentConfig:
        """The augmentation of batch ``step``: the final phase trains on larger crops."""
        aug = self.recipe.augment
        if self.cfg.final_steps and step >= self.cfg.steps - self.cfg.final_steps:
            return replace(aug, size=aug.final_size)
        return aug

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """This rank's share of batch ``step``: (RGB, degraded luma, simulated hints or None)."""
        part = (self.rank, self.world)  # each rank prepares only its slice of the global batch
        if self.low_stream is not None and step < self.cfg.low_steps:
            rgb, luma = self.low_stream.batch(step, None, part)
        else:
            rgb, luma = self.stream.batch(step, self.augment_for(step), part)
        gen = self.stream.generator(HINT_STREAM + 1000 * self.rank, step)
        hints = simulate_hints(rgb, self.recipe.hints, gen) if self.model.config.hints else None
        return rgb, luma, hints

    def _average_gradients(self) -> None:
        if self.world == 1:
            return
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def train_step(self) -> dict[str, Any]:
        """One optimiser step on batch number ``self.step``; returns the log row."""
        self.model.train()
        t0 = time.time()
        rgb, luma, hints = self.batch(self.step)
        rgb, luma = rgb.to(self.device), luma.to(self.device)
        hints = hints.to(self.device) if hints is not None else None
        lr = self._set_lr(self.opt, self.cfg.lr, self.step, self.cfg.steps)
        loss, parts = self.loss(rgb, luma, hints)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self._average_gradients()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.step += 1
        return {
            "step": self.step,
            "loss": float(loss.detach()),
            "lr": lr,
            "images_per_s": len(rgb) * self.world / max(1e-9, time.time() - t0),
            **parts,
        }

    def finished(self) -> bool:
        return self.step >= self.cfg.steps

    def is_due(self, every: int) -> bool:
        return self.steps_done % every == 0 or self.finished()

    def columns(self) -> tuple[str, ...]:
        return BASE_COLUMNS + (("ce",) if self.class_weights is not None else ("huber", "perceptual"))

    # -- the loop ------------------------------------------------------------------------
    def _csv_writer(self, fh: Any, new_file: bool, path: Path) -> csv.DictWriter:
        columns: list[str] = list(self.columns())
        if not new_file:  # keep an existing file's columns: appended rows must line up
            with path.open(newline="") as existing:
                header = next(csv.reader(existing), None)
            columns = header or columns
        writer = csv.DictWriter(fh, columns, extrasaction="ignore")
        if new_file:
            writer.writeheader()
        return writer

    def evaluate(self, row: dict[str, Any]) -> None:
        """Holdout PSNR (automatic, and with 10 hint points when the model takes hints) and a grid."""
        ps, gray = evaluate_holdout(self.model, self.holdout_rgb, self.device)
        row.update(holdout_psnr=ps, gray_psnr=gray)
        if self.holdout_hints is not None:
            row["holdout_hint10_psnr"] = evaluate_holdout(
                self.model, self.holdout_rgb, self.device, hints=self.holdout_hints
            )[0]
        save_sample_grid(
            self.model, self.holdout_rgb[:8], self.out / "samples" / f"step{self.steps_done:07d}.png", self.device
        )

    def run(self, stop: Callable[[], bool] | None = None) -> TrainResult:
        start = time.time()
        metrics_file = self.out / "metrics.csv"
        new_file = not metrics_file.exists() or metrics_file.stat().st_size == 0
        with contextlib.ExitStack() as stack:
            writer = None
            if self.rank == 0:
                fh = stack.enter_context(metrics_file.open("a", newline=""))
                writer = self._csv_writer(fh, new_file, metrics_file)
            while not self.finished():
                if stop is not None and stop():
                    break
                row = self.train_step()
                if self.is_due(self.cfg.checkpoint_every):
                    self.save_checkpoint()
                if self.rank == 0 and self.steps_done > 0 and self.is_due(self.cfg.sample_every):
                    self.evaluate(row)
                self.on_step(row)
                if writer is not None and (self.steps_done % self.cfg.log_every == 0 or "holdout_psnr" in row):
                    writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
                    fh.flush()
                    self.log(row)
        self.save_checkpoint()
        if self.rank != 0:
            return TrainResult(
                self.steps_done, time.time() - start, self.out / "model.safetensors", float("nan"), float("nan")
            )
        ps, gray = evaluate_holdout(self.model, self.holdout_rgb, self.device)
        weights = self.out / "model.safetensors"
        meta = {
            "name": self.recipe.name,
            "steps": str(self.steps_done),
            "mode": self.cfg.mode,
            "recipe": repr(asdict(self.recipe)),
        }
        save_generator(self.model.cpu(), weights, meta)
        self.model.to(self.device)
        return TrainResult(self.steps_done, time.time() - start, weights, ps, gray)
