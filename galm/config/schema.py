"""Every setting of galm as frozen dataclasses: one typed tree, read by `galm.config.reader`.

No torch and no other galm package is imported here, so any part of galm (and a user reading a
run's `config.yaml`) can load the schema cheaply. Validation that needs only the values lives here.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from galm.config.typed import ConfigError

TRUNK_LAYERS = ("conv1", "conv2", "conv3")
# Whether a domain's labels are per class (every image of a class alike) or per image.
LABEL_LEVELS = ("class", "image")
HeadMode = Literal["batched", "per_attribute"]
Precision = Literal["auto", "float32", "bf16"]
RewardMetric = Literal["accuracy", "balanced_accuracy", "auc"]
InputCache = Literal["auto", "device", "stream"]
INPUT_CACHES = ("auto", "device", "stream")
Switch = Literal["auto", "on", "off"]
SWITCHES = ("auto", "on", "off")
SPLITS = ("train", "val", "test")
# Devices a run may name: torch's own names of the backends galm runs on.
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|(cuda|xpu)(:[0-9]+)?")


def _require(ok: bool, key: str, expected: str, value: Any) -> None:
    """A ConfigError naming the dotted key, what it must be and what it was, unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key} must be {expected}, got {value!r}")


def _at_least(section: str, config: Any, minimum: int, *names: str) -> None:
    """Each named integer field of ``config`` is at least ``minimum``."""
    for name in names:
        value = getattr(config, name)
        _require(value >= minimum, f"{section}.{name}", f"at least {minimum}", value)


def _positive(key: str, value: float) -> None:
    _require(math.isfinite(value) and value > 0, key, "a positive number", value)


def _non_negative(key: str, value: float) -> None:
    _require(math.isfinite(value) and value >= 0, key, "a number >= 0", value)


def _splits(key: str, splits: tuple[str, ...]) -> None:
    """A non-empty list of distinct split names."""
    ok = bool(splits) and len(set(splits)) == len(splits) and all(s in SPLITS for s in splits)
    _require(ok, key, f"a non-empty list of distinct splits among {list(SPLITS)}", list(splits))


@dataclass(frozen=True)
class SpaceConfig:
    """Channels, kernels, widths and input resolution of the space (Table 1 by default)."""

    resolution: int = 64
    in_channels: int = 3
    trunk_channels: tuple[int, int, int] = (16, 32, 64)
    trunk_kernels: tuple[int, int, int] = (7, 3, 3)
    conv4_channels: int = 32
    conv5_channels: int = 16
    conv4_kernels: tuple[int, ...] = (3, 5)
    conv5_kernels: tuple[int, ...] = (3, 5)
    fc_widths: tuple[int, ...] = (64, 128, 256)

    def __post_init__(self) -> None:
        if self.resolution % 32 != 0 or self.resolution < 32:
            raise ConfigError(
                f"space.resolution must be a multiple of 32 (five 2x2 poolings), got {self.resolution}"
            )
        _at_least("space", self, 1, "in_channels", "conv4_channels", "conv5_channels")
        _require(all(c >= 1 for c in self.trunk_channels), "space.trunk_channels", "positive channel counts",
                 list(self.trunk_channels))
        for name in ("conv4_kernels", "conv5_kernels", "fc_widths"):
            values = getattr(self, name)
            if not values or len(set(values)) != len(values):
                raise ConfigError(f"space.{name} must be a non-empty list of distinct values, got {list(values)}")
        _require(all(w >= 1 for w in self.fc_widths), "space.fc_widths", "a list of positive widths",
                 list(self.fc_widths))
        for name in ("trunk_kernels", "conv4_kernels", "conv5_kernels"):
            kernels = getattr(self, name)
            _require(all(k >= 1 and k % 2 == 1 for k in kernels), f"space.{name}",
                     "positive odd kernel sizes (same padding)", list(kernels))

    def resolution_after(self, layer: str) -> int:
        """Spatial size of a layer's output (each conv layer halves the size)."""
        order = ("input", "conv1", "conv2", "conv3", "conv4", "conv5")
        return self.resolution // (2 ** order.index(layer))

    def channels_of(self, layer: str) -> int:
        if layer in TRUNK_LAYERS:
            return self.trunk_channels[TRUNK_LAYERS.index(layer)]
        return {"conv4": self.conv4_channels, "conv5": self.conv5_channels}[layer]

    @property
    def flat_features(self) -> int:
        """Length of the flattened Conv-5 output that feeds Fc-1."""
        return self.conv5_channels * self.resolution_after("conv5") ** 2

    @property
    def max_width(self) -> int:
        return max(self.fc_widths)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SpaceConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})



@dataclass(frozen=True)
class ExecutionConfig:
    """Device-side speed settings for search and retraining."""

    # Where the uint8 images live: 'device' copies the whole domain to the device once, 'stream' reads
    # each batch from the memory-mapped cache, 'auto' caches on a GPU when the domain fits easily.
    input_cache: InputCache = "auto"
    # NHWC conv weights ('auto': on CUDA, where cuDNN's NHWC kernels are faster). Input batches are
    # NHWC in memory already: they are gathered as (B, H, W, 3) and permuted, not copied.
    channels_last: Switch = "auto"
    # torch.compile the shared trunk (search) and the fixed network (retraining).
    compile: bool = False
    compile_backend: str = "inductor"

    def __post_init__(self) -> None:
        if self.input_cache not in INPUT_CACHES:
            raise ValueError(f"execution.input_cache must be one of {INPUT_CACHES}, got {self.input_cache!r}")
        if self.channels_last not in SWITCHES:
            raise ValueError(f"execution.channels_last must be one of {SWITCHES}, got {self.channels_last!r}")



@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of a fixed network (retraining a derived or given architecture)."""

    epochs: int = 12
    batch_size: int = 64
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    flip: bool = True
    # Random shifts of up to this many pixels (edges replicated); 0 = none.
    crop_padding: int = 0
    eval_batch_size: int = 256
    # Splits the network is trained on, and the split it is scored on (test classes are unseen).
    splits: tuple[str, ...] = ("train",)
    eval_split: str = "test"

    def __post_init__(self) -> None:
        _at_least("train", self, 1, "epochs", "batch_size", "eval_batch_size")
        _at_least("train", self, 0, "crop_padding")
        _positive("train.lr", self.lr)
        _require(0 <= self.momentum < 1, "train.momentum", "in [0, 1)", self.momentum)
        _non_negative("train.weight_decay", self.weight_decay)
        _splits("train.splits", self.splits)
        _require(self.eval_split in SPLITS, "train.eval_split", f"one of {list(SPLITS)}", self.eval_split)



@dataclass(frozen=True)
class ControllerConfig:
    """ARM + MNAS sizes and their REINFORCE optimisation (section 4.1 defaults)."""

    embedding_dim: int = 32
    arm_dim: int = 50
    hidden: int = 100
    num_layers: int = 2
    init_range: float = 0.1
    lr: float = 1e-4
    baseline_decay: float = 0.95
    # One EMA baseline per attribute (attributes differ widely in difficulty) or one for all.
    per_attribute_baseline: bool = True
    # Entropy bonus (not in the paper): without it the policy collapses onto the first heads
    # that the shared weights happen to favour, before the others are trained.
    entropy_weight: float = 0.01
    grad_clip: float | None = 5.0
    # False: one embedding conditions every attribute's policy (single-task ENAS, the `single_task`
    # method); pair it with per_attribute_baseline=false.
    attribute_conditioned: bool = True

    def __post_init__(self) -> None:
        _at_least("controller", self, 1, "embedding_dim", "arm_dim", "hidden", "num_layers")
        _positive("controller.init_range", self.init_range)
        _positive("controller.lr", self.lr)
        _require(0 <= self.baseline_decay <= 1, "controller.baseline_decay", "in [0, 1]", self.baseline_decay)
        _non_negative("controller.entropy_weight", self.entropy_weight)
        if self.grad_clip is not None:
            _positive("controller.grad_clip", self.grad_clip)


@dataclass(frozen=True)
class SearchConfig:
    """The search budget and its settings (Algorithm 1)."""

    episodes: int = 10
    # Phase-1 minibatches per episode; 0 means one pass over the training split.
    shared_steps: int = 0
    # Phase-2 controller updates per episode (2,000 in the paper).
    controller_steps: int = 2000
    # Attributes trained per phase-1 step: 1 is the paper's loop, 0 means all of them
    # (one trunk pass per batch, batched heads).
    attributes_per_step: int = 0
    # Attributes per controller update: 1 is the paper's batch size, 0 means all of them.
    controller_attributes_per_step: int = 1
    # Episodes of phase 1 only (uniform controller samples) before the controller starts to learn.
    warmup_episodes: int = 0
    batch_size: int = 64
    shared_lr: float = 2e-3
    shared_weight_decay: float = 1e-4
    flip: bool = True
    # Random shifts of up to this many pixels (edges replicated) on phase-1 batches; 0 = none
    # (the paper does not say which augmentation it used).
    crop_padding: int = 0
    head_mode: HeadMode = "batched"
    # 'auto': bf16 autocast on GPUs and on CPUs with native bf16 units, float32 elsewhere.
    precision: Precision = "auto"
    reward: RewardMetric = "accuracy"
    # Final architecture per attribute: the policy's argmax, the best of k samples by validation reward,
    # or the best of them by short stand-alone training (trained; see below).
    # networks: whole networks (the argmax, derive_samples networks drawn from the policy and
    # derive_anchors) are trained stand-alone and the best by validation mAUC is kept, because a head
    # changes the trunk every other head reads, which a per-attribute score cannot see.
    derive: Literal["argmax", "best_of_k", "trained", "networks"] = "argmax"
    derive_samples: int = 8
    # derive=networks: networks of one head for every attribute ('default', 'largest' or a short form
    # such as c4k3s0-c5k3s0-f256-f128-o2) also scored, so a search is checked against fixed heads.
    derive_anchors: tuple[str, ...] = ()
    # derive=networks with anchors: a searched network replaces the best anchor only if its mAUC gain
    # over it exceeds this many standard errors of the paired per-attribute differences (1: the
    # one-standard-error rule), because a gain within the scoring noise is as likely a worse network.
    derive_margin_se: float = 1.0
    # derive=networks: score every network this many times, each with other folds and training seeds,
    # and average; with 2 or more the margin's standard error is that of the repeats (the fold
    # partition moves a gain more than the attributes do), at that many times the cost.
    derive_repeats: int = 1
    # derive=trained: the argmax and derive_samples sampled heads of every attribute are trained
    # stand-alone (all attributes' candidates in one batched network) for this many epochs on the
    # training split, and each attribute keeps the one with the best validation AUC.
    derive_epochs: int = 3
    # derive=trained or networks: 0 trains the candidates on the training split and scores them on the
    # validation split; k >= 2 scores them by k-fold cross-validation over search.retrain_splits (whole
    # classes per fold where the test split holds unseen classes), at about k-1 times the training cost.
    derive_folds: int = 0
    # Attributes with fewer known positives or negatives than this on the training split (or constant
    # there) are not searched, get the default head, and are left out of mAUC (listed as skipped).
    min_positives: int = 5
    # Images a controller update's reward is measured on; 0 = search.batch_size (one minibatch).
    reward_batch_size: int = 0
    # BatchNorm statistics of the heads when rewards are measured: 'running' (the mix accumulated over
    # every sampled architecture) or 'batch' (the scored batch's own, for the candidate as it is).
    reward_bn: Literal["running", "batch"] = "running"
    # Retraining of the derived network (section 4.1): splits, and from scratch or from the supernet's weights.
    retrain_splits: tuple[str, ...] = ("train", "val")
    retrain_init: Literal["scratch", "supernet"] = "scratch"

    def __post_init__(self) -> None:
        _at_least("search", self, 1, "batch_size", "derive_epochs", "derive_repeats")
        _at_least("search", self, 0, "episodes", "shared_steps", "controller_steps", "attributes_per_step",
                  "controller_attributes_per_step", "warmup_episodes", "crop_padding", "derive_samples", "derive_folds",
                  "min_positives", "reward_batch_size")
        _require(self.warmup_episodes <= self.episodes, "search.warmup_episodes",
                 f"at most search.episodes ({self.episodes})", self.warmup_episodes)
        _positive("search.shared_lr", self.shared_lr)
        _non_negative("search.derive_margin_se", self.derive_margin_se)
        _non_negative("search.shared_weight_decay", self.shared_weight_decay)
        _splits("search.retrain_splits", self.retrain_splits)
        _require(self.derive_folds != 1, "search.derive_folds", "0 (the validation split) or at least 2",
                 self.derive_folds)



@dataclass(frozen=True)
class TransferConfig:
    """How new attributes are initialised from a finished search."""

    # How a new attribute finds its nearest searched attribute (see the module docstring).
    init: Literal["heads", "warmup", "probe", "random"] = "heads"
    # init=warmup: shared-weight steps for the new heads, then embedding-only REINFORCE steps.
    warmup_shared_steps: int = 12
    warmup_controller_steps: int = 40
    warmup_lr: float = 0.02
    # Copy the nearest searched attribute's head weights into the new head as well.
    copy_head_weights: bool = True

    def __post_init__(self) -> None:
        _at_least("transfer", self, 0, "warmup_shared_steps", "warmup_controller_steps")
        _positive("transfer.warmup_lr", self.warmup_lr)



SHARED_CUE_MODES = ("rotate", "keep", "same")


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes, noise levels and seed of the synthetic domains."""

    n_domains: int = 3
    classes_per_domain: int = 12
    images_per_class: int = 60
    resolution: int = 64
    n_shared_factors: int = 6
    n_private_factors: int = 4
    attributes_per_domain: int = 12
    test_class_fraction: float = 0.25
    val_fraction: float = 0.2
    # 'images': val is a carve of every training class's images; 'classes': whole training classes
    # are held out for val, so the search's reward measures generalisation to unseen classes.
    val_split: str = "images"
    label_noise: float = 0.0
    image_flip_prob: float = 0.1
    pixel_noise: float = 0.08
    label_level: str = "image"
    # How a shared factor is drawn across domains: 'rotate' = another cue type per domain;
    # 'keep' = the same cue type everywhere, with another variant and hue per domain;
    # 'same' = drawn as in the first domain (same cue, variant and colour).
    shared_cues: str = "rotate"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_domains", "images_per_class", "attributes_per_domain"):
            if getattr(self, name) < 1:
                raise ValueError(f"synthetic.{name} must be at least 1, got {getattr(self, name)}")
        if self.classes_per_domain < 2:
            raise ValueError(f"synthetic.classes_per_domain must be at least 2, got {self.classes_per_domain}")
        if self.resolution < 16:
            raise ValueError(f"synthetic.resolution must be at least 16, got {self.resolution}")
        if self.n_shared_factors < 0 or self.n_private_factors < 0 or self.factors_per_domain < 1:
            raise ValueError("synthetic factor counts must be non-negative with at least one factor per domain")
        if self.attributes_per_domain > self.max_attributes:
            raise ValueError(
                f"synthetic.attributes_per_domain must be at most {self.max_attributes} "
                f"for {self.factors_per_domain} factors, got {self.attributes_per_domain}"
            )
        for name in ("test_class_fraction", "val_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"synthetic.{name} must lie in (0, 1), got {getattr(self, name)}")
        for name in ("label_noise", "image_flip_prob"):
            if not 0.0 <= getattr(self, name) <= 0.5:
                raise ValueError(f"synthetic.{name} must lie in [0, 0.5], got {getattr(self, name)}")
        if self.pixel_noise < 0:
            raise ValueError(f"synthetic.pixel_noise must be non-negative, got {self.pixel_noise}")
        if self.label_level not in LABEL_LEVELS:
            raise ValueError(f"synthetic.label_level must be one of {LABEL_LEVELS}, got {self.label_level!r}")
        if self.val_split not in ("images", "classes"):
            raise ValueError(f"synthetic.val_split must be 'images' or 'classes', got {self.val_split!r}")
        if self.shared_cues not in SHARED_CUE_MODES:
            raise ValueError(f"synthetic.shared_cues must be one of {SHARED_CUE_MODES}, got {self.shared_cues!r}")
        if self.seed < 0:
            raise ValueError(f"synthetic.seed must be non-negative, got {self.seed}")

    @property
    def factors_per_domain(self) -> int:
        """Shared plus private factors seen by one domain."""
        return self.n_shared_factors + self.n_private_factors

    @property
    def max_attributes(self) -> int:
        """Distinct attributes one domain can define: one per factor plus three rules per factor pair."""
        f = self.factors_per_domain
        return f + 3 * f * (f - 1) // 2

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON/YAML."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SyntheticConfig":
        """Build from a dict, rejecting unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown synthetic config keys {unknown}; known: {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True)
class DataConfig:
    """Where the attribute domain comes from."""

    # 'synthetic' for the built-in generator, or the directory of a prepared domain.
    source: str = "synthetic"
    # Which synthetic domain (syn1, syn2, ...) when source is 'synthetic'.
    domain: str = "syn1"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    # Where the search's validation images come from: 'domain' keeps the domain's own val split;
    # 'classes' holds out val_fraction of the training classes whole (seeded by the run's seed), so
    # the reward measures generalisation to unseen classes as the test split does. The test split
    # never changes.
    val_split: Literal["domain", "classes"] = "domain"
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.val_split not in ("domain", "classes"):
            raise ValueError(f"data.val_split must be 'domain' or 'classes', got {self.val_split!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must lie in (0, 1), got {self.val_fraction}")


@dataclass(frozen=True)
class GalmConfig:
    """Everything a run reads; the resolved copy is written into every run directory."""

    seed: int = 0
    # 'auto' (CUDA when available, else CPU), 'cpu', 'cuda', 'cuda:1', ...
    device: str = "auto"
    # CPU threads for torch; 0 uses the cores this process was given (OMP_NUM_THREADS, affinity,
    # cgroup quota, a --jobs share or a Ray task's CPUs; galm.engine.threads), not the machine's count.
    threads: int = 0
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)

    @property
    def retrain(self) -> TrainConfig:
        """Training settings for retraining a searched network: `train`, on `search.retrain_splits`."""
        return replace(self.train, splits=self.search.retrain_splits)

    def check(self) -> None:
        """Cross-field checks that single fields cannot express."""
        if self.data.source == "synthetic" and self.data.synthetic.resolution != self.space.resolution:
            raise ConfigError(
                f"data.synthetic.resolution ({self.data.synthetic.resolution}) must equal "
                f"space.resolution ({self.space.resolution})"
            )
        _require(self.threads >= 0, "threads", "0 (the cores this process was given) or positive", self.threads)
        _require(self.seed >= 0, "seed", "a non-negative integer", self.seed)
        _require(DEVICE_PATTERN.fullmatch(self.device) is not None, "device",
                 "'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or 'xpu[:N]'", self.device)

