"""The trainer for a recipe's mode: the one place that knows every trainer class.

Kept apart from trainer.py so that the GAN trainer, which builds on the plain one, is imported
by nobody it imports (no import circle).
"""

from __future__ import annotations

from vidcolor.train.gan import GanTrainer
from vidcolor.train.recipe import Recipe
from vidcolor.train.trainer import LogFn, Trainer


def build_trainer(recipe: Recipe, log: LogFn | None = None, on_step: LogFn | None = None) -> Trainer:
    """The trainer for the recipe's mode: classification and regression share ``Trainer``; gan
    adds the critic (``GanTrainer``)."""
    if recipe.train.mode == "gan":
        return GanTrainer(recipe, log, on_step)
    return Trainer(recipe, log, on_step)
