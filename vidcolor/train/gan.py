"""GAN fine-tuning with DeOldify's NoGAN schedule.

1. The generator was trained alone (classification or regression): ``init_from`` names it.
2. Critic pretraining: the critic learns to tell the frozen generator's colours from the truth
   (``critic_pretrain_steps``); the generator does not move.
3. A short joint phase (``steps``): each step updates the critic once, then the generator on its
   own base loss + ``gan_weight`` × the adversarial loss (non-saturating, per critic patch).

Most of the colour comes from step 1; the adversarial phase only adds the vividness a
regression-to-the-mean loss takes away, and stopping it early avoids the usual GAN artefacts.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from vidcolor.color import luma_to_lightness, rgb_to_lab
from vidcolor.errors import InputError
from vidcolor.models.critic import Critic
from vidcolor.models.generator import Generator
from vidcolor.train.trainer import BASE_COLUMNS, Trainer, load_init


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target)


class GanTrainer(Trainer):
    modes = ("gan",)

    def _build_model(self) -> Generator:
        if not self.cfg.init_from:
            raise InputError('train.mode = "gan" needs train.init_from (a trained generator .safetensors)')
        model, _ = load_init(self.cfg.init_from)
        return model

    def _build_extra(self) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed + 1)
            self.critic = Critic(self.cfg.critic_channels).to(self.device)
        # Adam with a low beta1, as usual for critics: momentum lags behind a moving generator.
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=self.cfg.critic_lr, betas=(0.5, 0.99))
        self.critic_scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.scale)
        self.critic_step = 0

    # -- progress and checkpoints ----------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return self.cfg.critic_pretrain_steps + self.cfg.steps

    @property
    def steps_done(self) -> int:
        return self.critic_step + self.step

    def finished(self) -> bool:
        return self.critic_step >= self.cfg.critic_pretrain_steps and self.step >= self.cfg.steps

    def columns(self) -> tuple[str, ...]:
        base = ("ce",) if self.class_weights is not None else ("huber", "perceptual")
        return BASE_COLUMNS + ("phase", "critic_loss", "critic_acc", "adv") + base

    def checkpoint_state(self) -> dict[str, Any]:
        state = super().checkpoint_state()
        state.update(
            critic=self.critic.state_dict(),
            critic_optimizer=self.critic_opt.state_dict(),
            critic_scaler=self.critic_scaler.state_dict(),
            critic_step=self.critic_step,
        )
        return state

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        super().load_checkpoint_state(state)
        self.critic.load_state_dict(state["critic"])
        self.critic_opt.load_state_dict(state["critic_optimizer"])
        if state.get("critic_scaler"):
            self.critic_scaler.load_state_dict(state["critic_scaler"])
        self.critic_step = int(state["critic_step"])

    # -- steps -------------------------------------------------------------------------------
    def _critic_update(
        self, lightness: torch.Tensor, real_ab: torch.Tensor, fake_ab: torch.Tensor
    ) -> tuple[float, float]:
        """One critic step on real vs (detached) fake colours; returns (loss, accuracy)."""
        self.critic.train().requires_grad_(True)
        with self.precision.autocast(self.device):
            real = self.critic(lightness, real_ab)
            fake = self.critic(lightness, fake_ab.detach())
        loss = 0.5 * (_bce(real, True) + _bce(fake, False))
        self.critic_opt.zero_grad(set_to_none=True)
        self.critic_scaler.scale(loss).backward()
        self.critic_scaler.step(self.critic_opt)
        self.critic_scaler.update()
        acc = 0.5 * (float((real > 0).float().mean()) + float((fake < 0).float().mean()))
        return float(loss.detach()), acc

    def train_step(self) -> dict[str, Any]:
        t0 = time.time()
        rgb, luma = self.stream.batch(self.steps_done)
        rgb, luma = rgb.to(self.device), luma.to(self.device)
        lab = rgb_to_lab(rgb)
        # Real and fake pairs share the true lightness: the critic must judge the colours alone.
        true_l, true_ab = lab[:, :1], lab[:, 1:]
        lightness = luma_to_lightness(luma)
        size = tuple(rgb.shape[-2:])
        if self.critic_step < self.cfg.critic_pretrain_steps:
            self.model.eval()
            with torch.no_grad(), self.precision.autocast(self.device):
                fake_ab = self.predict_ab(self.model.head_output(lightness), size)
            closs, acc = self._critic_update(true_l, true_ab, fake_ab)
            self.critic_step += 1
            return {
                "step": self.steps_done,
                "phase": "critic",
                "loss": closs,
                "critic_loss": closs,
                "critic_acc": acc,
                "lr": self.cfg.critic_lr,
                "images_per_s": len(rgb) / max(1e-9, time.time() - t0),
            }

        self.model.train()
        lr = self._set_lr(self.opt, self.cfg.lr, self.step, self.cfg.steps)
        with self.precision.autocast(self.device):
            head = self.model.head_output(lightness)
        base, parts = self.base_loss(head, rgb)
        fake_ab = self.predict_ab(head, size)
        closs, acc = self._critic_update(true_l, true_ab, fake_ab)
        self.critic.eval().requires_grad_(False)  # the generator's step must not train the critic
        with self.precision.autocast(self.device):
            adv = _bce(self.critic(true_l, fake_ab), True)
        loss = base + self.cfg.gan_weight * adv
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.step += 1
        return {
            "step": self.steps_done,
            "phase": "joint",
            "loss": float(loss.detach()),
            "critic_loss": closs,
            "critic_acc": acc,
            "adv": float(adv.detach()),
            "lr": lr,
            "images_per_s": len(rgb) / max(1e-9, time.time() - t0),
            **parts,
        }
