"""Typed configuration: dataclass schemas behind every Hydra group, checked before JAX starts.

`register_configs()` puts the schemas in Hydra's ConfigStore; the yaml files in `conf/` name them in
their defaults lists, so an unknown key or a wrong type fails at composition. `to_config()` turns the
composed DictConfig into these dataclasses, running the `__post_init__` value checks.
"""

import dataclasses
import math
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from jaxalign.data.corpus import OOV_POLICIES, CorpusSpec
from jaxalign.data.digit_strips import DigitStripsSpec
from jaxalign.data.load import TARGET_ORDERS
from jaxalign.data.spoken_words import SpokenWordsSpec
from jaxalign.data.synthetic import SyntheticSpec
from jaxalign.data.timit import TimitSpec
from jaxalign.errors import ConfigError
from jaxalign.models import KINDS
from jaxalign.models.rnn import COMPUTE_DTYPES
from jaxalign.optim import LR_SCHEDULES, OPTIMIZERS
from jaxalign.setups import (
    ATTENTIONS,
    INITS,
    KERNELS,
    METHODS,
    PRONUNCIATION_STARTS,
    SCHEDULES,
    SETUPS,
    TOPOLOGIES,
    WEIGHTINGS,
)


def _one_of(key: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed; choose one of {list(allowed)}")


def _at_least(key: str, value, low) -> None:
    if not value >= low:  # NaN too
        raise ConfigError(f"{key}={value!r} must be >= {low}")


def _finite(key: str, value) -> None:
    if not math.isfinite(value):
        raise ConfigError(f"{key}={value!r} must be a finite number")


@dataclasses.dataclass
class SetupConfig:
    name: str = MISSING  # one_to_one | time_sync | many_to_one | order_sync | seq2seq | one_to_many
    weighting: str = "exponential"  # many_to_one only: last | uniform | linear | exponential
    decay: float = 0.2  # many_to_one exponential weighting: weight ∝ exp(-decay * frames before the end)
    attention: str = "content"  # seq2seq: content (additive, Bahdanau) | location (plus a conv over the last weights)
    max_output_length: int = 20  # seq2seq, one_to_many: most symbols a decode emits (then the end symbol)
    input_frames: int = 64  # one_to_many: frames every input is resampled to before it is flattened into one vector

    def __post_init__(self):
        _one_of("setup.name", self.name, SETUPS)
        _one_of("setup.weighting", self.weighting, WEIGHTINGS)
        _one_of("setup.attention", self.attention, ATTENTIONS)
        _at_least("setup.max_output_length", self.max_output_length, 1)
        _at_least("setup.input_frames", self.input_frames, 1)


@dataclasses.dataclass
class ModelConfig:
    kind: str = "gru"  # simple | gru | lstm | mlp
    hidden: int = 128  # units per direction (the MLP: units per layer)
    num_layers: int = 2
    bidirectional: bool = True
    dropout: float = 0.0  # between layers, training only
    unroll: int = 0  # recurrent scan steps per loop iteration; 0: the backend's default (CPU 1, GPU 8)
    compute_dtype: str = "float32"  # float32 | bfloat16: recurrent matmul inputs (carries and gates stay float32)
    decoder_hidden: int = 128  # seq2seq, one_to_many: units of the decoder's GRU
    embedding_dim: int = 32  # seq2seq, one_to_many: size of the previous symbol's embedding fed to the decoder
    attention_dim: int = 128  # seq2seq: units of the additive attention's tanh layer
    location_filters: int = 8  # seq2seq, setup.attention=location: conv channels over the previous weights
    location_width: int = 7  # seq2seq, setup.attention=location: conv width in frames
    conv_channels: list[int] = dataclasses.field(default_factory=lambda: [32, 64])  # one_to_many: 3x3 conv layers

    def __post_init__(self):
        _one_of("model.kind", self.kind, KINDS)
        _at_least("model.hidden", self.hidden, 1)
        _at_least("model.num_layers", self.num_layers, 1)
        _at_least("model.unroll", self.unroll, 0)
        _one_of("model.compute_dtype", self.compute_dtype, COMPUTE_DTYPES)
        for key in ("decoder_hidden", "embedding_dim", "attention_dim", "location_filters", "location_width"):
            _at_least(f"model.{key}", getattr(self, key), 1)
        for c in self.conv_channels:
            _at_least("model.conv_channels entries", c, 1)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout={self.dropout} must be in [0, 1)")


@dataclasses.dataclass
class OptimConfig:
    name: str = "adam"  # adam | adamw | sgd
    learning_rate: float = 3e-3  # peak; traced in the step: sweeping it does not recompile
    schedule: str = "cosine"  # constant | cosine (to 5% of the peak at the last step)
    weight_decay: float = 0.0  # adamw only
    momentum: float = 0.9  # sgd only
    clip_norm: float = 1.0  # global gradient norm clip; 0 disables

    def __post_init__(self):
        _one_of("optim.name", self.name, OPTIMIZERS)
        _one_of("optim.schedule", self.schedule, LR_SCHEDULES)
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(f"optim.learning_rate={self.learning_rate} must be a finite number > 0")
        for key in ("weight_decay", "momentum", "clip_norm"):
            _finite(f"optim.{key}", getattr(self, key))
            _at_least(f"optim.{key}", getattr(self, key), 0.0)


@dataclasses.dataclass
class AlignConfig:
    schedule: str = "per_step"  # per_step | per_epoch | realign_list | full_sum | ctc
    init: str = "uniform"  # initial alignment for the warm-up: uniform | ctc_warmup | full_sum_warmup
    warmup_steps: int = 300  # steps trained on the initial alignment before the first realignment
    method: str = "viterbi"  # viterbi (ordered grid) | masked (the notes' method 1)
    topology: str = (
        "grid"  # grid (every row visited) | ctc (per_step on CTC's grid: optional blanks, hard-EM's twin of CTC)
    )
    kernel: str = "scan"  # scan (XLA scans, every backend) | pallas (Viterbi and full-sum as Pallas kernels: GPUs; interpreted elsewhere)
    states_per_symbol: int = (
        2  # k ordered sub-state rows per symbol (k >= 2 tells "3 3" from "3" and sharpens boundaries)
    )
    pause_states: int = 1  # rows of a corpus' pause (data.silence), entered or skipped whole: its shortest length in frames; 3 cut spurious pauses but cost boundaries (docs/aligner.md)
    aligned_pause_states: int = 3  # rows of each pause block where a trained run aligns (jaxalign-align, Run.align, the re-estimated pause probabilities), each reading a column training learnt: 3 cut spurious pauses at no cost in boundaries (docs/aligner.md)
    pause_probability: float = (
        0.5  # in (0, 1): entering an optional pause costs log p, skipping it log(1 - p); 0.5: no preference
    )
    aligner_context: int = 3  # w >= 0: an MLP over frames t-w..t+w finds the per_step path (flat-start warm-up; other schedules ignore it); -1: the model itself
    prior_scale: float = 0.0  # realignment scores log p(c|x) - prior_scale * log p(c) (batch mean posterior); 0: off
    prior_steps: int = (
        0  # > 0: align.prior_scale fades linearly to 0 over this many steps after the warm-up; 0: constant
    )
    aligner_mix: float = 1.0  # with a local aligner: per_step paths score log p_local + aligner_mix * log p_model; 0: the local aligner alone
    pronunciation_every: int = 200  # data with several pronunciations of a word: steps between re-choosing the one trained on; 0: the first listed
    pronunciation_sum: bool = False  # per_step with a local aligner: the aligner trains on the sum over every listed pronunciation (soft EM) instead of the chosen path
    pronunciation_start: str = "first"  # trained on before the first re-choice: first (the first listed) | random (drawn per occurrence; worse, docs/aligner.md)
    realign_at: list[float] = dataclasses.field(
        default_factory=list
    )  # realign_list: epochs (>= 1) or fractions of training (< 1)

    def __post_init__(self):
        _one_of("align.schedule", self.schedule, SCHEDULES)
        _one_of("align.init", self.init, INITS)
        _one_of("align.method", self.method, METHODS)
        _one_of("align.kernel", self.kernel, KERNELS)
        _one_of("align.topology", self.topology, TOPOLOGIES)
        _at_least("align.warmup_steps", self.warmup_steps, 0)
        _at_least("align.pronunciation_every", self.pronunciation_every, 0)
        _one_of("align.pronunciation_start", self.pronunciation_start, PRONUNCIATION_STARTS)
        _at_least("align.states_per_symbol", self.states_per_symbol, 1)
        _at_least("align.pause_states", self.pause_states, 1)
        _at_least("align.aligned_pause_states", self.aligned_pause_states, 1)
        if not 0 < self.pause_probability < 1:
            raise ConfigError(f"align.pause_probability must be in (0, 1), got {self.pause_probability}")
        _at_least("align.prior_scale", self.prior_scale, 0.0)
        _at_least("align.prior_steps", self.prior_steps, 0)
        _at_least("align.aligner_mix", self.aligner_mix, 0.0)
        _at_least("align.aligner_context", self.aligner_context, -1)
        if self.pronunciation_sum and (
            self.schedule != "per_step" or self.init != "uniform" or self.aligner_context < 0
        ):
            raise ConfigError(
                "align.pronunciation_sum=true trains the local aligner of align.schedule=per_step after align.init=uniform "
                f"(align.aligner_context >= 0); got schedule={self.schedule}, init={self.init}, "
                f"aligner_context={self.aligner_context}"
            )
        bad = [x for x in self.realign_at if x <= 0]
        if bad:
            raise ConfigError(f"align.realign_at entries must be > 0, got {bad}")


@dataclasses.dataclass
class DistributedConfig:
    coordinator: str = ""  # HOST:PORT of process 0, the same in every process; empty: one process (or SLURM's)
    num_processes: int = 1  # processes in the run, each with its own devices (e.g. one per host or GPU)
    process_id: int = 0  # this process's rank, 0..num_processes-1; process 0 writes the run record

    def __post_init__(self):
        _at_least("trainer.distributed.num_processes", self.num_processes, 1)
        if not 0 <= self.process_id < self.num_processes:
            raise ConfigError(
                f"trainer.distributed.process_id={self.process_id} must be in [0, {self.num_processes}) "
                f"(trainer.distributed.num_processes={self.num_processes})"
            )
        if self.num_processes > 1 and not self.coordinator:
            raise ConfigError(
                f"trainer.distributed.coordinator (HOST:PORT of process 0) is required with "
                f"trainer.distributed.num_processes={self.num_processes}"
            )


@dataclasses.dataclass
class TrainerConfig:
    steps: int = 3000
    batch_size: int = 32
    eval_every: int = 500  # steps between validation evaluations (and one at the end)
    num_buckets: int = (
        4  # padded length buckets, hence compiled shapes (bounds: the fewest padded frames, `bucket_bounds`)
    )
    checkpoint_every: int = 500
    keep_checkpoints: int = (
        2  # newest checkpoints kept on disk; more let experiments/figures.py show the alignment settle
    )
    resume: bool = (
        False  # true: continue from the run dir's latest checkpoint (step 0 if none); false: refuse a dir with one
    )
    beam_width: int = 1  # ctc: >1 adds prefix beam search on the test set
    progress: bool = True  # a bar on a terminal, a console line every log_every steps otherwise
    log_every: int = 50  # steps between train lines in metrics.jsonl (and console lines off a terminal)
    converge_churn: float = (
        0.0  # stop once under this share of a probe's frames change row between checks; 0: run all steps
    )
    converge_every: int = 100  # steps between convergence checks (after the warm-up)
    converge_patience: int = 2  # quiet checks in a row that stop training
    converge_examples: int = 64  # training examples in the convergence probe
    distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)  # several processes

    def __post_init__(self):
        for key in (
            "steps",
            "batch_size",
            "eval_every",
            "num_buckets",
            "checkpoint_every",
            "keep_checkpoints",
            "beam_width",
            "log_every",
            "converge_every",
            "converge_patience",
            "converge_examples",
        ):
            _at_least(f"trainer.{key}", getattr(self, key), 1)
        _finite("trainer.converge_churn", self.converge_churn)
        if not 0.0 <= self.converge_churn < 1.0:
            raise ConfigError(f"trainer.converge_churn={self.converge_churn} must be in [0, 1)")


def _check_split_sizes(data) -> None:
    """The generated data sets: a training split to learn from, and no negative sizes."""
    _at_least("data.num_train", data.num_train, 1)
    _at_least("data.num_valid", data.num_valid, 0)
    _at_least("data.num_test", data.num_test, 0)


@dataclasses.dataclass
class TargetOrder:
    """What every data config shares (each data source has labels)."""

    target_order: str = "as_written"  # as_written | reversed: targets (and true alignments' rows) last symbol first

    def __post_init__(self):
        _one_of("data.target_order", self.target_order, TARGET_ORDERS)


@dataclasses.dataclass
class DigitStripsConfig(DigitStripsSpec, TargetOrder):
    name: str = "digit_strips"

    def __post_init__(self):
        super().__post_init__()
        _check_split_sizes(self)


@dataclasses.dataclass
class SyntheticConfig(SyntheticSpec, TargetOrder):
    name: str = "synthetic"

    def __post_init__(self):
        super().__post_init__()
        _check_split_sizes(self)


@dataclasses.dataclass
class ArraysConfig(TargetOrder):
    name: str = "arrays"
    path: str = MISSING
    valid_fraction: float = 0.1  # used only when the file has no `split` key
    test_fraction: float = 0.1
    seed: int = 0


@dataclasses.dataclass
class TimitConfig(TimitSpec, TargetOrder):
    name: str = "timit"


@dataclasses.dataclass
class SpokenWordsConfig(SpokenWordsSpec, TargetOrder):
    name: str = "spoken_words"

    def __post_init__(self):
        super().__post_init__()
        _check_split_sizes(self)


@dataclasses.dataclass
class CorpusConfig(CorpusSpec, TargetOrder):
    name: str = "corpus"

    def __post_init__(self):
        super().__post_init__()
        _one_of("data.oov", self.oov, OOV_POLICIES)
        if self.target_order != "as_written":
            raise ConfigError("data=corpus aligns transcripts as written: data.target_order=reversed does not apply")


DATA_CONFIGS = {
    "digit_strips": DigitStripsConfig,
    "synthetic": SyntheticConfig,
    "arrays": ArraysConfig,
    "timit": TimitConfig,
    "spoken_words": SpokenWordsConfig,
    "corpus": CorpusConfig,
}


@dataclasses.dataclass
class Config:
    setup: SetupConfig = MISSING
    model: ModelConfig = MISSING
    data: Any = MISSING
    optim: OptimConfig = MISSING
    align: AlignConfig = dataclasses.field(default_factory=AlignConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    seed: int = 0

    def __post_init__(self):
        SETUPS[self.setup.name].check_config(self)


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="setup", name="base_setup", node=SetupConfig)
    cs.store(group="model", name="base_model", node=ModelConfig)
    cs.store(group="optim", name="base_optim", node=OptimConfig)
    for name, node in DATA_CONFIGS.items():
        cs.store(group="data", name=f"base_{name}", node=node)


def to_config(cfg) -> Config:
    """Composed DictConfig -> checked `Config` dataclass (raises ConfigError naming the key)."""
    try:
        obj = OmegaConf.to_object(cfg)
    except MissingMandatoryValue as err:
        raise ConfigError(f"{err.full_key} is required here: add {err.full_key}=... to the command line") from None
    if not isinstance(obj, Config):
        raise ConfigError("the composed config is not based on base_config")
    # Keys added with "+" slip past struct mode and would be dropped silently: name them instead.
    for section in cfg:
        if section not in {f.name for f in dataclasses.fields(Config)}:
            raise ConfigError(
                f"unknown key {section!r} (top-level keys: {[f.name for f in dataclasses.fields(Config)]})"
            )
        _check_known(section, cfg[section], getattr(obj, section))
    return obj


def _check_known(prefix: str, cfg, node) -> None:
    """Names the first key of `cfg` that the dataclass `node` lacks, in nested sections too."""
    if not dataclasses.is_dataclass(node):
        return
    known = {f.name for f in dataclasses.fields(node)}
    extra = sorted(set(cfg.keys()) - known)
    if extra:
        raise ConfigError(f"unknown key {prefix}.{extra[0]} (known: {sorted(known)})")
    for name in known:
        if dataclasses.is_dataclass(getattr(node, name)):
            _check_known(f"{prefix}.{name}", cfg[name], getattr(node, name))


RETIRED_KEYS = ("xla_flags",)  # top-level keys of older runs' saved configs that no longer mean anything


def save_config(config: Config, path) -> None:
    """Writes `config` as the yaml Hydra leaves in a run's `.hydra/config.yaml`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(OmegaConf.to_yaml(OmegaConf.structured(config)))


def load_config(path) -> Config:
    """A run's saved config (`.hydra/config.yaml`) -> checked `Config`, through the same schemas
    as a composed one, so a key the schemas no longer know is named instead of dropped."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no config at {path} (a run directory holds .hydra/config.yaml)")
    try:
        raw = OmegaConf.load(path)
    except Exception as err:  # yaml's and omegaconf's errors; keep their first line
        raise ConfigError(f"{path} is not a readable config: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, DictConfig):
        raise ConfigError(f"{path} is not a readable config: it holds a {type(raw).__name__}, not a mapping")
    for key in RETIRED_KEYS:  # runs saved before a key was removed still load
        raw.pop(key, None)
    name = OmegaConf.select(raw, "data.name")
    if name not in DATA_CONFIGS:
        raise ConfigError(f"{path}: data.name={name!r} is not one of {list(DATA_CONFIGS)}")
    schema = OmegaConf.structured(Config)
    schema.data = OmegaConf.structured(DATA_CONFIGS[name])
    try:
        merged = OmegaConf.merge(schema, raw)
    except Exception as err:  # omegaconf's errors name the key; keep their first line
        raise ConfigError(f"{path}: {str(err).splitlines()[0]}") from None
    return to_config(merged)
