"""The training loop: data, model, jitted step, alignment schedule, evaluation, checkpoints, logs."""

import json
import math
import time
from pathlib import Path

import flax
import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm

from jaxalign.config import Config, ConfigError
from jaxalign.data import Batcher, IteratorState
from jaxalign.data.dataset import flatten_ragged, unflatten_ragged
from jaxalign.data.load import load_splits
from jaxalign.decoding import churn
from jaxalign.models import SequenceModel
from jaxalign.plots import plot_alignment
from jaxalign.training.alignments import AlignmentStore
from jaxalign.training.checkpoints import CheckpointError, Checkpoints
from jaxalign.training.evaluation import evaluate_split
from jaxalign.training.step import StepSpec, TrainState, make_eval_fn, make_optimizer, make_train_step

LOG_EVERY = 50


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last finite metrics are in metrics.jsonl."""


class MetricsWriter:
    """Appends JSON lines to metrics.jsonl. Lines with split "timing" hold wall-clock numbers; all
    other lines are deterministic for a given config and seed on CPU."""

    def __init__(self, path: Path, resumed_from: int | None):
        """On resume from the checkpoint at step S, keeps what the run had written before saving it:
        lines of earlier steps and the validation line of step S; the rest is written again."""
        self.path = path
        lines = path.read_text().splitlines() if path.exists() and resumed_from is not None else []
        records = [json.loads(ln) for ln in lines if ln]
        kept = [r for r in records if r["step"] < resumed_from or (r["step"] == resumed_from and r["split"] == "valid")]
        path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def write(self, step: int, split: str, **values) -> None:
        clean = {k: (np.asarray(v).item() if np.ndim(v) == 0 and hasattr(v, "dtype") else v) for k, v in values.items()}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": int(step), "split": split, **clean}) + "\n")


def write_environment(path: Path) -> None:
    """Versions and device: RNG streams and numerics change between JAX releases."""
    env = {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "device_count": jax.device_count(),
    }
    path.write_text(json.dumps(env, indent=2) + "\n")


def make_spec(config: Config, num_classes: int) -> StepSpec:
    return StepSpec(
        setup=config.setup.name,
        num_classes=num_classes,
        schedule=config.align.schedule,
        init=config.align.init,
        method=config.align.method,
        states_per_symbol=config.align.states_per_symbol,
        warmup_steps=config.align.warmup_steps,
        weighting=config.setup.weighting,
        decay=config.setup.decay,
    )


def check_data_fits_setup(splits, config: Config) -> None:
    if config.setup.name == "many_to_one" and splits.train.label_lengths().max() > 1:
        raise ConfigError("setup=many_to_one needs one label per example; for digit strips set data.max_digits=1 (or use +experiment=many_to_one_digits)")
    if config.setup.name in ("time_sync", "one_to_one") and splits.train.alignments is None:
        raise ConfigError(f"setup={config.setup.name} needs per-frame labels: the data has no true alignments")
    k = config.align.states_per_symbol
    if config.setup.name == "order_sync" and k > 1:
        short = np.flatnonzero(splits.train.label_lengths() * k > splits.train.frame_lengths())
        if len(short) == len(splits.train):
            raise ConfigError(f"align.states_per_symbol={k}: every training target is longer than its input once expanded")


def realign_due(config: Config, step: int, epoch: int, epoch_start: bool, done: set) -> int | None:
    """A mark for the realignment due before this step (per_epoch, realign_list), or None.

    Marks are the epoch number for epoch-based points and -(step + 1) for fractions of training,
    so each point fires once, also across a resume.
    """
    align = config.align
    if align.schedule == "per_epoch":
        due = epoch_start and step >= align.warmup_steps
        return epoch if due and epoch not in done else None
    for at in align.realign_at:
        if at >= 1 and epoch_start and epoch == int(at) and epoch not in done:
            return epoch
        if at < 1 and step == int(round(at * config.trainer.steps)) and -(step + 1) not in done:
            return -(step + 1)
    return None


def train(config: Config, run_dir) -> dict:
    """Runs one experiment into `run_dir`; returns the final test metrics."""
    run_dir = Path(run_dir)
    (run_dir / "figures").mkdir(parents=True, exist_ok=True)
    splits = load_splits(config.data)
    check_data_fits_setup(splits, config)
    spec = make_spec(config, splits.train.num_classes)
    trainer = config.trainer
    train_batches = Batcher(splits.train, trainer.batch_size, num_buckets=trainer.num_buckets, seed=config.seed)
    eval_batches = {
        name: Batcher(data, trainer.batch_size, num_buckets=trainer.num_buckets)
        for name, data in (("valid", splits.valid), ("test", splits.test))
        if len(data)
    }

    model = SequenceModel(
        splits.train.feature_dim,
        spec.num_outputs,
        kind=config.model.kind,
        hidden=config.model.hidden,
        num_layers=config.model.num_layers,
        bidirectional=config.model.bidirectional,
        dropout=config.model.dropout,
        rngs=nnx.Rngs(config.seed),
    )
    graphdef, params = nnx.split(model)
    o = config.optim
    optimizer = make_optimizer(o.name, o.learning_rate, total_steps=trainer.steps, schedule=o.schedule,
                               weight_decay=o.weight_decay, momentum=o.momentum, clip_norm=o.clip_norm)
    state = TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))
    train_step = make_train_step(graphdef, optimizer, spec)
    evaluate = make_eval_fn(graphdef, spec)
    key = jax.random.key(config.seed)
    store = AlignmentStore(train_batches, spec, graphdef) if spec.fixed_alignments else None
    realigned: set[int] = set()

    previous_forced = None  # validation alignments at the last evaluation, for alignment churn
    valid_lengths = splits.valid.frame_lengths() if len(splits.valid) else np.zeros(0, np.int64)

    def extras() -> dict[str, np.ndarray]:
        """Host-side state that a checkpoint must carry besides the train state (orbax saves no
        zero-size arrays, so an empty validation split adds nothing)."""
        out = {"has_valid_forced": np.array(previous_forced is not None and valid_lengths.sum() > 0)}
        if valid_lengths.sum() > 0:
            forced = previous_forced or [np.zeros(n, np.int32) for n in valid_lengths]
            out["valid_forced"] = flatten_ragged(forced)[0]
        if store:
            out.update({f"store_{k}": v for k, v in store.flat().items()})
        return out

    checkpoints = Checkpoints(run_dir / "checkpoints")
    start = 0
    if checkpoints.latest_step() is not None:
        state, meta, saved = checkpoints.restore(state, extras())
        start = int(meta["step"])
        train_batches.state = IteratorState(**meta["iterator"])
        realigned = set(meta["realigned"])
        if store:
            store.load_flat({k[len("store_"):]: v for k, v in saved.items() if k.startswith("store_")})
        if saved["has_valid_forced"]:
            previous_forced = [p.astype(np.int32) for p in unflatten_ragged(saved["valid_forced"], valid_lengths)]
    elif trainer.resume:
        raise CheckpointError(f"trainer.resume=true but there is no checkpoint under {run_dir / 'checkpoints'}; pass the run's directory as hydra.run.dir")
    write_environment(run_dir / "environment.json")
    writer = MetricsWriter(run_dir / "metrics.jsonl", resumed_from=start if start else None)
    writer.write(start, "timing", event="start", resumed_from=start)

    def checkpoint(step):
        meta = {"step": step, "iterator": vars(train_batches.state), "realigned": sorted(realigned)}
        checkpoints.save(step, state, meta, extras())

    def log_train(step, metrics):
        metrics = jax.device_get(metrics)
        if not math.isfinite(float(metrics["loss"])):
            writer.write(step, "failed", reason="non-finite loss", loss=str(metrics["loss"]))
            raise TrainingDiverged(f"loss became {metrics['loss']} at step {step}; the last finite metrics are in {writer.path}")
        if step % LOG_EVERY == 0 or step == trainer.steps - 1:
            writer.write(step, "train", **metrics)
        return metrics

    def run_eval(split):
        beam_width = trainer.beam_width if split == "test" else 1
        return evaluate_split(evaluate, state.params, getattr(splits, split), eval_batches[split], spec, beam_width=beam_width)

    pending = None
    compiled: set[tuple] = set()
    bar = tqdm(total=trainer.steps, initial=start, disable=not trainer.progress, desc="train", dynamic_ncols=True)
    frames_done, clock = 0, time.perf_counter()
    for step in range(start, trainer.steps):
        epoch_start = train_batches.state.position == 0
        mark = realign_due(config, step, train_batches.state.epoch, epoch_start, realigned) if store else None
        if mark is not None:
            moved = store.realign(state.params)
            realigned.add(mark)
            writer.write(step, "realign", alignment_churn=moved, epoch=train_batches.state.epoch)
        batch = train_batches.next_batch()
        if store:
            batch["fixed_positions"] = store.batch_positions(batch)
        shape = batch["features"].shape
        first_call = shape not in compiled
        tic = time.perf_counter()
        state, metrics = train_step(state, batch, key)
        if first_call:
            jax.block_until_ready(state.step)
            compiled.add(shape)
            writer.write(step, "timing", event="compile", frames=shape[1], first_call_seconds=time.perf_counter() - tic)
        if pending is not None:  # read the previous step's metrics only now: the device stays busy
            done = log_train(*pending)
            bar.set_postfix(loss=f"{float(done['loss']):.3f}", frames_per_s=f"{frames_done / (time.perf_counter() - clock):.0f}")
        pending = (step, metrics)
        frames_done += int((batch["logit_paddings"] == 0).sum())
        bar.update(1)
        last = step == trainer.steps - 1
        if (step + 1) % trainer.eval_every == 0 or last:
            log_train(*pending)
            pending = None
            if "valid" in eval_batches:
                metrics, forced = run_eval("valid")
                if forced is not None and previous_forced is not None:
                    metrics["alignment_churn"] = churn(previous_forced, forced)
                previous_forced = forced
                writer.write(step + 1, "valid", **metrics)
        if (step + 1) % trainer.checkpoint_every == 0 or last:
            if pending is not None:
                log_train(*pending)
                pending = None
            checkpoint(step + 1)
    bar.close()
    final = {}
    if "test" in eval_batches:
        final, _ = run_eval("test")
        writer.write(trainer.steps, "test", **final)
        plot_alignment(evaluate, state.params, splits.test, eval_batches["test"], spec, run_dir / "figures" / "alignment_test.png")
    writer.write(trainer.steps, "timing", event="end", seconds=time.perf_counter() - clock)
    checkpoints.close()
    return final
