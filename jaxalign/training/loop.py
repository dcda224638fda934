"""The training loop, in named parts: set-up, a step, evaluation, checkpointing, the summary.

`train(config, run_dir)` builds a `Trainer` and runs it. Everything that varies between setups and
alignment schedules is the setup object's business (`jaxalign.setups`); the loop only asks it.
"""

import json
import math
import sys
import tempfile
import time
from pathlib import Path

import flax
import jax
import jaxlib
import numpy as np
import optax
from tqdm import tqdm

from jaxalign.align.pallas_grid import use_interpreter
from jaxalign.config import Config, save_config
from jaxalign.data import Batcher, IteratorState
from jaxalign.data.dataset import flatten_ragged, unflatten_ragged
from jaxalign.data.load import load_splits
from jaxalign.decoding import churn
from jaxalign.errors import ConfigError
from jaxalign.plots import plot_alignments
from jaxalign.setups import make_setup
from jaxalign.training.alignments import AlignmentStore
from jaxalign.training.checkpoints import CheckpointError, Checkpoints
from jaxalign.training.evaluation import evaluate_split
from jaxalign.training.parallel import DataParallel
from jaxalign.training.step import init_train_state, lr_multiplier, make_eval_fn, make_train_step


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last finite metrics are in metrics.jsonl."""


def console(message: str) -> None:
    """One line on the console, above the progress bar if there is one (from the first process)."""
    if jax.process_index() == 0:
        tqdm.write(f"jaxalign: {message}", file=sys.stderr)


class MetricsWriter:
    """Appends JSON lines to metrics.jsonl (the record) and scalars to TensorBoard (`tensorboard/`).

    Lines with split "timing" hold wall-clock numbers; all other lines are deterministic for a
    given config and seed on CPU. A metric that does not apply at a step is NaN and left out.
    """

    def __init__(self, run_dir: Path, resumed_from: int | None):
        """On resume from the checkpoint at step S, keeps what the run had written before saving it:
        lines of earlier steps and the validation line of step S; the rest is written again."""
        from tensorboardX import SummaryWriter

        self.path = run_dir / "metrics.jsonl"
        self.tensorboard = None
        if jax.process_index() != 0:  # with several processes, the first one keeps the record
            return
        lines = self.path.read_text().splitlines() if self.path.exists() and resumed_from is not None else []
        records = [json.loads(ln) for ln in lines if ln]
        kept = [r for r in records if r["step"] < resumed_from or (r["step"] == resumed_from and r["split"] == "valid")]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.tensorboard = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, step: int, split: str, **values) -> None:
        if self.tensorboard is None:  # not the first process
            return
        clean = {k: (np.asarray(v).item() if np.ndim(v) == 0 and hasattr(v, "dtype") else v) for k, v in values.items()}
        clean = {k: v for k, v in clean.items() if not (isinstance(v, float) and math.isnan(v))}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": int(step), "split": split, **clean}) + "\n")
        if split != "timing":
            for key, value in clean.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.tensorboard.add_scalar(f"{split}/{key}", value, step)

    def add_figure(self, tag: str, png: Path, step: int) -> None:
        import matplotlib.image

        if self.tensorboard is not None:
            self.tensorboard.add_image(tag, matplotlib.image.imread(png)[..., :3], step, dataformats="HWC")

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def write_environment(path: Path, mesh: dict | None) -> None:
    """Versions, devices and the data-parallel mesh: RNG streams and numerics change between JAX releases."""
    env = {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "device_count": jax.device_count(),
        "process_count": jax.process_count(),
    }
    if mesh:
        env["mesh"] = mesh
    path.write_text(json.dumps(env, indent=2) + "\n")


class Progress:
    """A one-line bar on a terminal; a log line every `every` steps otherwise (e.g. into a file).
    Throughput is wall time between updates (the loop reads each step's metrics one step later, so
    it keeps pace with the device), leaving out the steps that compiled."""

    def __init__(self, total: int, start: int, every: int, enabled: bool):
        self.tty = enabled and sys.stderr.isatty()
        self.enabled, self.every, self.total = enabled, every, total
        self.bar = tqdm(total=total, initial=start, desc="train", dynamic_ncols=True, disable=not self.tty)
        self.frames = 0
        self.seconds = 0.0
        self.clock = time.perf_counter()

    def update(self, step: int, frames: int, compiled: bool, loss: float | None) -> None:
        now = time.perf_counter()
        if not compiled:
            self.frames += frames
            self.seconds += now - self.clock
        self.clock = now
        rate = f"{self.frames / self.seconds:.0f}" if self.seconds > 0 else "-"
        self.bar.update(1)
        if loss is not None and self.tty:
            self.bar.set_postfix(loss=f"{loss:.3f}", frames_per_s=rate)
        elif loss is not None and self.enabled and not self.tty and (step + 1) % self.every == 0:
            console(f"step {step + 1}/{self.total} loss {loss:.3f} frames/s {rate}")

    def skip(self) -> None:
        """Leaves the time since the last update (evaluation, checkpointing) out of the throughput."""
        self.clock = time.perf_counter()

    @property
    def frames_per_second(self) -> float | None:
        return self.frames / self.seconds if self.seconds > 0 else None

    def close(self) -> None:
        self.bar.close()


class Trainer:
    """One experiment into `run_dir`: `Trainer(config, run_dir).run()` returns the test metrics."""

    def __init__(self, config: Config, run_dir):
        self.config, self.run_dir = config, Path(run_dir)
        (self.run_dir / "figures").mkdir(parents=True, exist_ok=True)
        first = jax.process_index() == 0  # with several processes, the first one writes the run record
        if first and not (self.run_dir / ".hydra" / "config.yaml").exists():  # Hydra writes it for CLI runs only
            save_config(config, self.run_dir / ".hydra" / "config.yaml")
        trainer = config.trainer
        self.splits = load_splits(config.data)
        self.setup = make_setup(config, self.splits.train.num_classes)
        self.setup.check_data(self.splits)
        self.parallel = DataParallel(trainer.batch_size)
        if config.setup.name == "order_sync" and config.align.kernel == "pallas":
            if (
                self.parallel.mesh is not None
            ):  # XLA cannot split a Triton call over devices: it would gather the batch onto every one
                raise ConfigError(
                    f"align.kernel=pallas runs on one device, but the batch is split over {jax.device_count()}: "
                    "use align.kernel=scan, or one device (e.g. CUDA_VISIBLE_DEVICES=0)"
                )
            how = (
                "in Pallas' interpreter (exact, slower than the scan; compiled on NVIDIA GPUs only)"
                if use_interpreter(None)
                else "compiled by Triton"
            )
            console(f"align.kernel=pallas on {jax.default_backend()}: the Viterbi and full-sum kernels run {how}")
        self.train_batches = Batcher(
            self.splits.train, trainer.batch_size, num_buckets=trainer.num_buckets, seed=config.seed
        )
        self.eval_batches = {
            name: Batcher(data, trainer.batch_size, num_buckets=trainer.num_buckets)
            for name, data in (("valid", self.splits.valid), ("test", self.splits.test))
            if len(data)
        }
        graphdef, optimizer, self.state = init_train_state(config, self.setup, self.splits.train.feature_dim)
        self.train_step = make_train_step(
            graphdef, optimizer, self.setup, lr_multiplier(config.optim.schedule, trainer.steps)
        )
        self.evaluate = make_eval_fn(graphdef, self.setup)
        self.key = jax.random.key(config.seed)
        self.store = AlignmentStore(self.train_batches, self.setup, graphdef) if self.setup.stored_alignments else None
        self.realigned: set[int] = set()  # realignment marks already done (see Schedule.realign_due)
        self.previous_forced = None  # validation alignments at the last evaluation, for alignment churn
        self.valid_lengths = self.splits.valid.frame_lengths() if len(self.splits.valid) else np.zeros(0, np.int64)
        self.compiled: set[tuple] = set()
        self.checkpoints = Checkpoints(self.run_dir / "checkpoints", max_to_keep=trainer.keep_checkpoints)
        self.start = self.restore()
        self.state = self.parallel.replicate(self.state)
        if first:
            write_environment(self.run_dir / "environment.json", self.parallel.shape)
        self.writer = MetricsWriter(self.run_dir, resumed_from=self.start or None)
        self.writer.write(self.start, "timing", event="start", resumed_from=self.start)
        self.warn_if_never_realigned()

    # -- checkpoints -------------------------------------------------------------------------

    def extras(self) -> dict[str, np.ndarray]:
        """Host-side state that a checkpoint carries besides the train state (orbax saves no
        zero-size arrays, so an empty validation split adds nothing)."""
        out = {"has_valid_forced": np.array(self.previous_forced is not None and self.valid_lengths.sum() > 0)}
        if self.valid_lengths.sum() > 0:
            forced = self.previous_forced or [np.zeros(n, np.int32) for n in self.valid_lengths]
            out["valid_forced"] = flatten_ragged(forced)[0]
        if self.store:
            out.update({f"store_{k}": v for k, v in self.store.flat().items()})
        return out

    def restore(self) -> int:
        """Loads the latest checkpoint if there is one; returns the step to start from."""
        if self.checkpoints.latest_step() is None:
            if self.config.trainer.resume:
                raise CheckpointError(
                    f"trainer.resume=true but there is no checkpoint under {self.run_dir / 'checkpoints'}; pass the run's directory as hydra.run.dir"
                )
            return 0
        self.state, meta, saved = self.checkpoints.restore(self.state, self.extras())
        self.train_batches.state = IteratorState(**meta["iterator"])
        self.realigned = set(meta["realigned"])
        if self.store:
            self.store.load_flat({k[len("store_") :]: v for k, v in saved.items() if k.startswith("store_")})
        if saved["has_valid_forced"]:
            self.previous_forced = [
                p.astype(np.int32) for p in unflatten_ragged(saved["valid_forced"], self.valid_lengths)
            ]
        console(f"resumed from the checkpoint at step {meta['step']}")
        return int(meta["step"])

    def checkpoint(self, step: int) -> None:
        meta = {"step": step, "iterator": vars(self.train_batches.state), "realigned": sorted(self.realigned)}
        train = self.splits.train  # what `jaxalign.load_run` needs to rebuild the model without the data
        meta["data"] = {"feature_dim": train.feature_dim, "num_classes": train.num_classes, "vocab": list(train.vocab)}
        self.checkpoints.save(step, self.state, meta, self.extras())

    # -- steps -------------------------------------------------------------------------------

    def warn_if_never_realigned(self) -> None:
        warmup, steps = self.setup.warmup_steps, self.config.trainer.steps
        if warmup >= steps:
            message = (
                f"align.warmup_steps={warmup} >= trainer.steps={steps}: this run never leaves its initial "
                f"alignment (align.init={self.config.align.init}), so align.schedule={self.config.align.schedule} never realigns"
            )
            console(f"WARNING: {message}")
            self.writer.write(self.start, "warning", message=message)

    def realign_if_due(self, step: int) -> None:
        """Stored schedules: realign the whole training set where the schedule says so."""
        epoch_start = self.train_batches.state.position == 0
        mark = self.setup.realign_due(step, self.train_batches.state.epoch, epoch_start, self.realigned)
        if mark is not None:
            moved = self.store.realign(self.state.params)
            self.realigned.add(mark)
            self.writer.write(step, "realign", alignment_churn=moved, epoch=self.train_batches.state.epoch)

    def dispatch(self, step: int):
        """Runs one train step asynchronously; returns (metrics on device, frames, compiled)."""
        if self.store:
            self.realign_if_due(step)
        batch = self.train_batches.next_batch()
        if self.store:
            batch["fixed_positions"] = self.store.batch_positions(batch)
        shape = batch["features"].shape
        first_call = shape not in self.compiled
        if first_call:
            console(f"compiling the train step for {shape[1]} frames (batch {shape[0]})…")
        tic = time.perf_counter()
        self.state, metrics = self.train_step(self.state, self.parallel.batch(batch), self.key)
        if first_call:
            jax.block_until_ready(self.state.step)
            self.compiled.add(shape)
            self.writer.write(
                step, "timing", event="compile", frames=shape[1], first_call_seconds=time.perf_counter() - tic
            )
        frames = int(((batch["logit_paddings"] == 0) & (batch["weights"][:, None] > 0)).sum())
        return metrics, frames, first_call

    def log_train(self, step: int, metrics) -> dict:
        """Reads a dispatched step's metrics (blocks until it finished); stops on a non-finite loss."""
        metrics = jax.device_get(metrics)
        if not math.isfinite(float(metrics["loss"])):
            self.writer.write(step, "failed", reason="non-finite loss", loss=str(metrics["loss"]))
            raise TrainingDiverged(
                f"loss became {metrics['loss']} at step {step}; the last finite metrics are in {self.writer.path}"
            )
        if step % self.config.trainer.log_every == 0 or step == self.config.trainer.steps - 1:
            self.writer.write(step, "train", **metrics)
        return metrics

    # -- evaluation --------------------------------------------------------------------------

    def evaluate_batch(self, params, batch: dict) -> dict:
        return self.parallel.to_host(self.evaluate(params, self.parallel.batch(batch)))

    def evaluate_split(self, split: str) -> dict:
        beam_width = self.config.trainer.beam_width if split == "test" else 1
        data = getattr(self.splits, split)
        metrics, forced = evaluate_split(
            self.evaluate_batch, self.state.params, data, self.eval_batches[split], self.setup, beam_width=beam_width
        )
        if split == "valid":
            if forced is not None and self.previous_forced is not None:
                metrics["alignment_churn"] = churn(self.previous_forced, forced)
            self.previous_forced = forced
        return metrics

    def figure(self, step: int) -> Path | None:
        """figures/alignment_test_<i>.png for the shortest, median and longest test target."""
        if "test" not in self.eval_batches:
            return None
        first = jax.process_index() == 0  # the others evaluate with it (one SPMD program) into a scratch dir
        scratch = None if first else tempfile.TemporaryDirectory()
        paths = plot_alignments(
            self.evaluate_batch,
            self.state.params,
            self.splits.test,
            self.eval_batches["test"],
            self.setup,
            (self.run_dir if first else Path(scratch.name)) / "figures" / "alignment_test",
        )
        if scratch is not None:
            scratch.cleanup()
        for i, path in enumerate(paths):
            self.writer.add_figure(f"alignment_test_{i}", path, step)
        return self.run_dir / "figures" / "alignment_test_*.png"

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> dict:
        trainer = self.config.trainer
        sizes = self.splits.sizes()
        console(
            f"{self.config.setup.name} on {self.config.data.name} ({sizes['train']} train / {sizes['valid']} valid / {sizes['test']} test), "
            f"{trainer.steps} steps of batch {trainer.batch_size}; run dir {self.run_dir}"
        )
        clock = time.perf_counter()
        progress = Progress(trainer.steps, self.start, trainer.log_every, trainer.progress)
        pending, valid = None, {}
        for step in range(self.start, trainer.steps):
            metrics, frames, compiled = self.dispatch(step)
            loss = None
            if pending is not None:  # read the previous step's metrics only now: the device stays busy
                loss = float(self.log_train(*pending)["loss"])
            pending = (step, metrics)
            progress.update(step, frames, compiled, loss)
            last = step == trainer.steps - 1
            if (step + 1) % trainer.eval_every == 0 or (step + 1) % trainer.checkpoint_every == 0 or last:
                self.log_train(*pending)
                pending = None
            if ((step + 1) % trainer.eval_every == 0 or last) and "valid" in self.eval_batches:
                valid = self.evaluate_split("valid")
                self.writer.write(step + 1, "valid", **valid)
                progress.skip()
            if (step + 1) % trainer.checkpoint_every == 0 or last:
                self.checkpoint(step + 1)
                progress.skip()
        progress.close()
        test = {}
        if "test" in self.eval_batches:
            test = self.evaluate_split("test")
            self.writer.write(trainer.steps, "test", **test)
        figure = self.figure(trainer.steps)
        seconds = time.perf_counter() - clock
        self.writer.write(
            trainer.steps, "timing", event="end", seconds=seconds, frames_per_second=progress.frames_per_second
        )
        self.writer.close()
        self.checkpoints.close()
        self.summary(valid, test, seconds, figure)
        return test

    def summary(self, valid: dict, test: dict, seconds: float, figure: Path | None) -> None:
        """The end of the run on the console: final metrics, wall time, where things are."""

        def show(metrics):
            return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float))) or "-"

        latest = self.checkpoints.latest_step()
        lines = [
            f"done in {seconds:.0f} s",
            f"  valid: {show(valid)}",
            f"  test:  {show(test)}",
            f"  run dir:    {self.run_dir} (metrics.jsonl, tensorboard/)",
            f"  checkpoint: {self.run_dir / 'checkpoints' / str(latest)}",
        ]
        if figure:
            lines.append(f"  figures:    {figure}")
        console("\n".join(lines))


def train(config: Config, run_dir) -> dict:
    """Runs one experiment into `run_dir`; returns the final test metrics."""
    return Trainer(config, run_dir).run()
