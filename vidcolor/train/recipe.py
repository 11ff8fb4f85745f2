"""Training recipes: TOML files (pipelines/*.toml) parsed into dataclasses."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vidcolor.errors import InputError
from vidcolor.models.generator import GeneratorConfig
from vidcolor.train.augment import AugmentConfig
from vidcolor.train.data import DataFilter


@dataclass(frozen=True)
class DataConfig:
    roots: tuple[str, ...] = ("../shared/data/train",)
    cache_size: int = 160  # square side the images are cached at (crops come from it)
    holdout: int = 256  # training images kept aside for monitoring and temperature tuning
    cache_dir: str = ".cache/vidcolor"
    min_side: int = 64
    min_chroma: float = 3.0

    @property
    def filter(self) -> DataFilter:
        return DataFilter(self.min_side, self.min_chroma)


@dataclass(frozen=True)
class TrainConfig:
    mode: str = "classification"  # classification | regression | gan
    steps: int = 10000
    batch_size: int = 32
    lr: float = 5e-4
    encoder_lr_scale: float = 0.3  # the pretrained encoder moves slower than the new decoder
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    rebalance_lambda: float = 0.5  # classification: 1 = fully rebalanced, 0 = raw prior
    huber_delta: float = 5.0  # regression: ab units
    perceptual_weight: float = 0.1  # regression: weight of the frozen-encoder feature loss
    pretrained_encoder: bool = True
    checkpoint_every: int = 250
    sample_every: int = 500
    log_every: int = 25
    out_dir: str = "runs/default"
    seed: int = 0
    threads: int = 0  # 0: torch's default
    device: str = "auto"
    # GAN fine-tuning (DeOldify's NoGAN schedule): critic pretraining, then a short joint phase.
    init_from: str = ""  # generator checkpoint or safetensors to start from
    critic_pretrain_steps: int = 500
    gan_weight: float = 0.02
    critic_lr: float = 2e-4


@dataclass(frozen=True)
class Recipe:
    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = "vidcolor-model"
    description: str = ""


def _build(cls: type, section: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise InputError(f"recipe section [{where}] has unknown keys: {', '.join(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}
    return cls(**values)


def recipe_from_dict(raw: dict[str, Any]) -> Recipe:
    sections = {"model": GeneratorConfig, "data": DataConfig, "augment": AugmentConfig, "train": TrainConfig}
    unknown = sorted(set(raw) - set(sections) - {"name", "description"})
    if unknown:
        raise InputError(f"recipe has unknown sections: {', '.join(unknown)}")
    parts = {k: _build(cls, raw.get(k, {}), k) for k, cls in sections.items()}
    return Recipe(name=raw.get("name", "vidcolor-model"), description=raw.get("description", ""), **parts)


def load_recipe(path: str | Path, overrides: dict[str, dict[str, Any]] | None = None) -> Recipe:
    """Parse a recipe file; ``overrides`` maps section -> key -> value (from CLI options)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"recipe not found: {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"recipe {path} is not valid TOML: {exc}") from exc
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    return recipe_from_dict(raw)
