"""Training recipes: TOML files (pipelines/*.toml) parsed into dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

from vidcolor.errors import InputError
from vidcolor.models.generator import GeneratorConfig
from vidcolor.train.augment import AugmentConfig
from vidcolor.train.corpus import CorpusFilter
from vidcolor.train.data import DataFilter
from vidcolor.train.hints import HintSimulation


@dataclass(frozen=True)
class DataConfig:
    roots: tuple[str, ...] = ("../shared/data/train",)
    cache_size: int = 160  # square side the images are cached at (crops come from it)
    holdout: int = 256  # training images kept aside for monitoring and temperature tuning
    cache_dir: str = ".cache/vidcolor"
    min_side: int = 64
    min_chroma: float = 3.0
    # A training index (pipelines/build_index.py): the exact file list, checked by size (and by
    # sha256 with verify_index) instead of walking ``roots``. Relative paths in it are resolved
    # against the index file's folder.
    index: str = ""
    verify_index: bool = False
    # More indexes whose files are added to the main set (pipelines/extra_data.py writes one).
    extra_index: tuple[str, ...] = ()
    workers: int = 2  # processes decoding images when the cache is built
    # A packed corpus folder (pipelines/build_corpus.py, vidcolor/train/corpus.py): when set it
    # replaces roots and indexes; its held-out rows are the holdout (at most ``holdout`` of them
    # are scored during training). ``corpus_fingerprint`` refuses any other corpus.
    corpus: str = ""
    corpus_fingerprint: str = ""
    min_saturation: float = 0.03  # corpus pictures below this mean HSV saturation do not train
    max_flatness: float = 0.3  # nor those whose 8 commonest exact colours cover more (graphics)

    @property
    def filter(self) -> DataFilter:
        return DataFilter(self.min_side, self.min_chroma)

    @property
    def corpus_filter(self) -> CorpusFilter:
        return CorpusFilter(self.min_saturation, self.max_flatness)


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
    perceptual_weight: float = 0.1  # regression: weight of the frozen-network feature loss
    # Frozen network of the perceptual loss: "efficientnet" (ImageNet EfficientNet-Lite0) or
    # "vgg16:PATH" (torchvision-layout VGG16 weights a user supplies, loaded with weights_only).
    perceptual_net: str = "efficientnet"
    init_backbone: str = ""  # encoder weights exported by `vidcolor train --export-backbone`
    amp: str = "auto"  # auto (cuda: bf16 or fp16) | off | bf16 | fp16 (cuda only)
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
    critic_channels: int = 64  # width of the critic's first layer (doubles per downsampling)
    # Speed and scale of long CPU runs.
    channels_last: bool = False  # NHWC layout: about 1.4x faster training on this CPU
    procs: int = 1  # data-parallel processes (gloo); the batch is split between them
    # Learning-rate schedule: "cosine" (warm-up, cosine to 5%) or "wsd" (warm-up, constant, then
    # a cosine decay over the last decay_steps: the run can be lengthened until the decay starts).
    schedule: str = "cosine"
    decay_steps: int = 0
    # Finish at a larger crop: the last final_steps steps train at augment.final_size.
    final_steps: int = 0
    # Weights-only resume point (safetensors with the step in its metadata), e.g. a file committed
    # between sessions; used when OUT/checkpoint.pt is absent or older. The optimiser restarts and
    # its learning rate warms up again over rewarm_steps.
    resume_weights: str = ""
    rewarm_steps: int = 200
    # A low-resolution first stage (corpus runs): the first low_steps steps train on the corpus's
    # low-resolution array (every picture, Tiny ImageNet included) at augment.low_size, with
    # batches of low_batch_size (0: batch_size): many more distinct pictures a second.
    low_steps: int = 0
    low_batch_size: int = 0


@dataclass(frozen=True)
class Recipe:
    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    hints: HintSimulation = field(default_factory=HintSimulation)
    name: str = "vidcolor-model"
    description: str = ""


MODES = ("classification", "regression", "gan")
AMP_MODES = ("auto", "off", "bf16", "fp16")


def _coerce(value: Any, default: Any, where: str) -> Any:
    """Check a recipe value against the type of the field's default (TOML gives no schema)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, tuple):
        ok = (
            isinstance(value, (list, tuple)) and all(isinstance(v, type(default[0])) for v in value)
            if default
            else isinstance(value, (list, tuple))
        )
        value = tuple(value) if ok else value
    else:  # pragma: no cover - every recipe field has one of the types above
        ok = True
    if not ok:
        raise InputError(f"recipe key {where} = {value!r}: expected {type(default).__name__}")
    return value


def _build(cls: type, section: Any, where: str) -> Any:
    if not isinstance(section, dict):
        raise InputError(f"recipe [{where}] must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise InputError(f"recipe section [{where}] has unknown keys: {', '.join(unknown)}")
    defaults = cls()
    values = {k: _coerce(v, getattr(defaults, k), f"{where}.{k}") for k, v in section.items()}
    try:
        return cls(**values)
    except ValueError as exc:  # a dataclass's own validation
        raise InputError(f"recipe [{where}]: {exc}") from None


def validate_recipe(recipe: Recipe) -> Recipe:
    """Reject values no run could use, with a message naming the key."""
    t, d, a, m = recipe.train, recipe.data, recipe.augment, recipe.model

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise InputError(f"recipe: {message}")

    need(t.mode in MODES, f"train.mode {t.mode!r} is not one of {', '.join(MODES)}")
    need(t.amp in AMP_MODES, f"train.amp {t.amp!r} is not one of {', '.join(AMP_MODES)}")
    need(t.steps >= 0, "train.steps must be >= 0")
    need(t.batch_size >= 1, "train.batch_size must be >= 1")
    need(t.lr > 0 and t.critic_lr > 0, "learning rates must be > 0")
    need(
        t.checkpoint_every >= 1 and t.sample_every >= 1 and t.log_every >= 1,
        "checkpoint_every, sample_every and log_every must be >= 1",
    )
    need(t.warmup_steps >= 0 and t.critic_pretrain_steps >= 0, "warmup_steps and critic_pretrain_steps must be >= 0")
    need(0.0 <= t.rebalance_lambda <= 1.0, "train.rebalance_lambda must be in [0, 1]")
    need(t.huber_delta > 0, "train.huber_delta must be > 0")
    need(t.perceptual_weight >= 0 and t.gan_weight >= 0, "loss weights must be >= 0")
    need(t.critic_channels >= 1, "train.critic_channels must be >= 1")
    net, _, net_path = t.perceptual_net.partition(":")
    need(
        t.perceptual_net == "efficientnet" or (net == "vgg16" and bool(net_path)),
        f'train.perceptual_net {t.perceptual_net!r}: "efficientnet" or "vgg16:PATH"',
    )
    need(
        t.mode != "gan" or bool(t.init_from),
        'train.mode = "gan" needs train.init_from (a trained generator .safetensors)',
    )
    need(a.size >= 32 and a.size % 32 == 0, f"augment.size {a.size} must be a positive multiple of 32")
    need(0.0 < a.crop_min <= a.crop_max <= 1.0, "augment: need 0 < crop_min <= crop_max <= 1")
    need(d.holdout >= 1, "data.holdout must be >= 1 (the holdout images are how a run is judged)")
    # A corpus has its own picture sides (checked when it is opened); file caches have cache_size.
    need(bool(d.corpus) or d.cache_size >= a.size, f"data.cache_size {d.cache_size} must be >= augment.size {a.size}")
    need(bool(d.roots) or bool(d.index) or bool(d.corpus), "data: give roots, an index or a corpus")
    need(t.low_steps == 0 or bool(d.corpus), "train.low_steps needs data.corpus (its low-resolution array)")
    need(0 <= t.low_steps + t.final_steps <= t.steps, "train.low_steps + train.final_steps must be in [0, train.steps]")
    need(
        t.low_steps == 0 or (a.low_size >= 32 and a.low_size % 32 == 0),
        "train.low_steps needs augment.low_size, a positive multiple of 32",
    )
    need(
        t.low_batch_size >= 0 and (t.low_batch_size or t.batch_size) % t.procs == 0,
        "train.low_batch_size must split evenly over train.procs",
    )
    need(d.workers >= 1, "data.workers must be >= 1")
    need(m.head in ("classification", "regression"), f"model.head {m.head!r}: classification or regression")
    need(
        len(m.decoder_channels) == 3 and all(c >= 1 for c in m.decoder_channels),
        "model.decoder_channels: three positive widths",
    )
    need(m.temperature > 0, "model.temperature must be > 0")
    need(t.schedule in ("cosine", "wsd"), f"train.schedule {t.schedule!r}: cosine or wsd")
    need(0 <= t.decay_steps <= t.steps, "train.decay_steps must be in [0, train.steps]")
    need(0 <= t.final_steps <= t.steps, "train.final_steps must be in [0, train.steps]")
    need(
        t.final_steps == 0 or (a.final_size >= 32 and a.final_size % 32 == 0),
        "train.final_steps needs augment.final_size, a positive multiple of 32",
    )
    need(
        bool(d.corpus) or a.final_size == 0 or d.cache_size >= a.final_size,
        f"data.cache_size {d.cache_size} must be >= augment.final_size {a.final_size}",
    )
    need(1 <= t.procs <= 64, "train.procs must be in 1..64")
    need(t.batch_size % t.procs == 0, f"train.batch_size {t.batch_size} must split evenly over train.procs {t.procs}")
    need(t.rewarm_steps >= 0, "train.rewarm_steps must be >= 0")
    return recipe


def recipe_from_dict(raw: dict[str, Any]) -> Recipe:
    sections = {
        "model": GeneratorConfig,
        "data": DataConfig,
        "augment": AugmentConfig,
        "train": TrainConfig,
        "hints": HintSimulation,
    }
    unknown = sorted(set(raw) - set(sections) - {"name", "description"})
    if unknown:
        raise InputError(f"recipe has unknown sections: {', '.join(unknown)}")
    parts = {k: _build(cls, raw.get(k, {}), k) for k, cls in sections.items()}
    name, description = raw.get("name", "vidcolor-model"), raw.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        raise InputError("recipe name and description must be strings")
    return validate_recipe(Recipe(name=name, description=description, **parts))


def load_recipe(path: str | Path, overrides: dict[str, dict[str, Any]] | None = None) -> Recipe:
    """Parse a recipe file; ``overrides`` maps section -> key -> value (from CLI options)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"recipe not found: {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"recipe {path} is not valid TOML: {exc}") from exc
    for section, values in (overrides or {}).items():
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            raise InputError(f"recipe [{section}] must be a table")
        table.update(values)
    return recipe_from_dict(raw)
