"""The training loop, in named parts: set-up, a step, evaluation, checkpointing, the summary.

`train(config, run_dir)` builds a `Trainer` and runs it. Everything that varies between setups and
alignment schedules is the setup object's business (`jaxalign.setups`); the loop only asks it. The
run record (console, metrics, progress, environment) is `jaxalign.training.record`.
"""

import contextlib
import math
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from jaxalign.config import Config, save_config
from jaxalign.data import Batcher, IteratorState
from jaxalign.data.corpus import add_unaligned
from jaxalign.data.dataset import DataSplits, flatten_ragged, unflatten_ragged
from jaxalign.data.dictionary import (
    dictionary_text,
    estimated_pause_probabilities,
    estimated_probabilities,
    read_dictionary,
)
from jaxalign.data.load import load_splits
from jaxalign.decoding import churn
from jaxalign.errors import TrainingDiverged
from jaxalign.optim import lr_multiplier
from jaxalign.setups import setup_for_data
from jaxalign.training.alignments import AlignmentStore
from jaxalign.training.checkpoints import Checkpoints
from jaxalign.training.convergence import Convergence, probe_examples
from jaxalign.training.evaluation import alignment_figures, evaluate_split
from jaxalign.training.parallel import DataParallel
from jaxalign.training.pauses import pause_counts
from jaxalign.training.pronunciations import PronunciationChoice, PronunciationGraphs
from jaxalign.training.record import MetricsWriter, Progress, console, write_environment
from jaxalign.training.run_dir import check_resume, hold
from jaxalign.training.step import init_train_state, make_eval_fn, make_train_step


def due(step: int, every: int) -> bool:
    """Whether something done every `every` steps falls after step `step` (0-based)."""
    return (step + 1) % every == 0


class Trainer:
    """One experiment into `run_dir`: `Trainer(config, run_dir).run()` returns the test metrics.

    The constructor builds, in order: the run dir and its config record, the data and the setup,
    the devices, the batchers, the train state and the jitted functions, the alignment store, the
    checkpoints (restoring the latest), and the metrics writer.
    """

    def __init__(self, config: Config, run_dir, record: dict[str, str] | None = None):
        """record: more files of the run record ({path in the run dir: text}, e.g. Hydra's
        `.hydra/overrides.yaml`), written with the config when the run starts at step 0."""
        self.config, self.run_dir = config, Path(run_dir)
        self.first = jax.process_index() == 0  # with several processes, the first one writes the run record
        trainer = config.trainer
        self.checkpoints = Checkpoints(self.run_dir / "checkpoints", max_to_keep=trainer.keep_checkpoints)
        self.resume_changes = check_resume(config, self.run_dir, self.checkpoints.latest_step())
        fresh = self.checkpoints.latest_step() is None
        self.make_run_dir(fresh=fresh, record=record or {})

        self.splits = load_splits(config.data)
        self.setup = setup_for_data(config, self.splits.train.info())
        self.splits = leave_out_too_short(self.splits, self.setup)
        if self.first and fresh:
            for name, text in self.splits.record.items():  # the data source's part of the record
                (self.run_dir / name).write_text(text)
        self.setup.check_data(self.splits)

        self.parallel = DataParallel(trainer.batch_size)
        for line in self.setup.check_devices(jax.device_count()):
            console(line)

        self.train_batches = Batcher(
            self.splits.train, trainer.batch_size, num_buckets=trainer.num_buckets, seed=config.seed
        )
        self.eval_batches = {
            name: Batcher(data, trainer.batch_size, num_buckets=trainer.num_buckets)
            for name, data in (("valid", self.splits.valid), ("test", self.splits.test))
            if len(data)
        }

        graphdef, optimizer, self.state = init_train_state(config, self.setup, self.splits.train.feature_dim)
        self.graphdef = graphdef
        self.train_step = make_train_step(
            graphdef, optimizer, self.setup, lr_multiplier(config.optim.schedule, trainer.steps)
        )
        self.evaluate = make_eval_fn(graphdef, self.setup)
        self.key = jax.random.key(config.seed)
        self.compiled: set[tuple] = set()  # batch shapes the train step has compiled for

        self.pronunciations = self.graphs = None  # before the store: its flat start reads the targets it draws
        if config.align.pronunciation_every and any(w is not None for w in self.splits.train.alternatives or []):
            sums_warmup = config.align.init == "full_sum_warmup" and self.setup.warmup_steps > 0
            self.pronunciations = PronunciationChoice(
                self.splits.train,
                self.train_batches,
                self.setup,
                graphdef,
                config.align.pronunciation_every,
                config.align.pronunciation_start,
                config.seed,
                at_warmup=sums_warmup,
            )
            if config.align.schedule == "full_sum" or sums_warmup or config.align.pronunciation_sum:
                self.graphs = PronunciationGraphs(self.splits.train, self.setup)
        self.store = AlignmentStore(self.train_batches, self.setup, graphdef) if self.setup.stores_alignments else None
        self.convergence = self.make_convergence()
        self.previous_forced = None  # validation alignments at the last evaluation, for alignment churn
        self.valid_lengths = self.splits.valid.frame_lengths() if len(self.splits.valid) else np.zeros(0, np.int64)

        self.start = self.restore()
        self.state = self.parallel.replicate(self.state)

        if self.first:
            write_environment(self.run_dir / "environment.json", self.parallel.shape)
        self.writer = MetricsWriter(self.run_dir, resumed_from=self.start or None)
        changed = {k: new for k, (_, new) in self.resume_changes.items()}  # bookkeeping keys a resume changed
        self.writer.write(
            self.start, "timing", event="start", resumed_from=self.start, **({"changed": changed} if changed else {})
        )
        for message in self.setup.warnings(trainer.steps):
            console(f"WARNING: {message}")
            self.writer.write(self.start, "warning", message=message)

    def make_convergence(self) -> Convergence | None:
        """The convergence check (`jaxalign.training.convergence`) where it is asked for and applies."""
        trainer, train = self.config.trainer, self.splits.train
        if trainer.converge_churn == 0 or not self.setup.aligns or not len(train):
            return None
        probe = train.subset(probe_examples(len(train), trainer.converge_examples, self.config.seed))
        self.probe_batches = Batcher(probe, trainer.batch_size, num_buckets=trainer.num_buckets)
        return Convergence(trainer, probe, first_step=self.setup.warmup_steps)

    def make_run_dir(self, fresh: bool, record: dict[str, str]) -> None:
        """The run dir; when the run starts at step 0, its record: the config (`.hydra/config.yaml`)
        and `record`'s files. With several processes the first one writes."""
        (self.run_dir / "figures").mkdir(parents=True, exist_ok=True)
        if self.first and fresh:
            save_config(self.config, self.run_dir / ".hydra" / "config.yaml")
            for name, text in record.items():
                (self.run_dir / name).write_text(text)

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
        if self.convergence:
            out.update({f"converge_{k}": v for k, v in self.convergence.flat().items()})
        if self.pronunciations:
            out.update({f"pronunciation_{k}": v for k, v in self.pronunciations.flat().items()})
        return out

    def restore(self) -> int:
        """Loads the latest checkpoint if there is one; returns the step to start from."""
        if self.checkpoints.latest_step() is None:
            if self.config.trainer.resume:
                console(f"trainer.resume=true, but there is no checkpoint under {self.run_dir}: starting at step 0")
            return 0
        self.state, meta, saved = self.checkpoints.restore(self.state, self.extras())
        self.train_batches.state = IteratorState(**meta["iterator"])
        if self.store:
            stored = {k[len("store_") :]: v for k, v in saved.items() if k.startswith("store_")}
            self.store.load_flat(stored, meta["realigned"])
        if self.pronunciations:
            self.pronunciations.load_flat(
                {k[len("pronunciation_") :]: v for k, v in saved.items() if k.startswith("pronunciation_")}
            )
        if self.convergence:
            self.convergence.load_flat(
                {k[len("converge_") :]: v for k, v in saved.items() if k.startswith("converge_")}
            )
        if saved["has_valid_forced"]:
            self.previous_forced = [
                p.astype(np.int32) for p in unflatten_ragged(saved["valid_forced"], self.valid_lengths)
            ]
        console(f"resumed from the checkpoint at step {meta['step']}")
        return int(meta["step"])

    def checkpoint(self, step: int) -> None:
        realigned = sorted(self.store.realigned) if self.store else []
        meta = {"step": step, "iterator": vars(self.train_batches.state), "realigned": realigned}
        meta["data"] = self.splits.train.info()  # what `jaxalign.load_run` needs to rebuild the model without the data
        self.checkpoints.save(step, self.state, meta, self.extras())

    # -- steps -------------------------------------------------------------------------------

    def dispatch(self, step: int):
        """Runs one train step asynchronously; returns (metrics on device, frames, compiled)."""
        if self.store:  # stored schedules: realign the whole training set where the schedule says so
            moved = self.store.realign_if_due(
                step, self.state.params, before=lambda params: self.pronounce(step, params)
            )
            if moved is not None:
                self.writer.write(step, "realign", alignment_churn=moved, epoch=self.train_batches.state.epoch)
        elif self.pronunciations and self.pronunciations.due(step):
            self.pronounce(step, self.state.params)
        batch = self.train_batches.next_batch()
        if self.store:
            batch["fixed_positions"] = self.store.batch_positions(batch)
        if self.graphs:
            batch["graph"] = self.graphs.batch(batch["index"])
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

    def pronounce(self, step: int, params) -> None:
        """Re-chooses the training targets' pronunciations before step `step` (`PronunciationChoice`)."""
        if self.pronunciations:
            tic = time.perf_counter()
            changed = self.pronunciations.update(params)
            self.writer.write(step, "pronunciations", changed=changed, seconds=time.perf_counter() - tic)

    def write_dictionary_probabilities(self, step: int) -> None:
        """The run's dictionary.txt, rewritten with MFA's probability columns: for the words whose
        pronunciations training chose among, how often it chose each (`estimated_probabilities`);
        for every word followed by another in the training set, the probability of a pause after
        each of its pronunciations in the run's own alignments (`pause_counts`,
        `estimated_pause_probabilities`). `jaxalign-align` weighs its graphs with both. Every
        process aligns; the first writes."""
        path = self.run_dir / "dictionary.txt"
        train = self.splits.train
        if train.words is None or train.optional_symbol is None:
            return
        choice = self.pronunciations.choice if self.pronunciations else None
        aligning = setup_for_data(self.config, train.info(), aligning=True)  # the pauses jaxalign-align will find
        paused, occurrences = pause_counts(
            train, self.train_batches, aligning, self.graphdef, self.state.params, step, choice
        )
        if not self.first or not path.is_file():
            return
        entries, _ = read_dictionary(path, self.config.data.silence)
        chosen = self.pronunciations.counts() if self.pronunciations else {}
        chosen = {w: c for w, c in chosen.items() if len(entries.get(w, [])) == len(c)}
        pauses = {}
        for word, j in occurrences:
            if word in entries and j < len(entries[word]):
                pauses.setdefault(word, [(0, 0)] * len(entries[word]))[j] = (paused[word, j], occurrences[word, j])
        pause_after = estimated_pause_probabilities(pauses)
        path.write_text(dictionary_text(entries, estimated_probabilities(chosen), pause_after), encoding="utf-8")
        rate = sum(paused.values()) / max(sum(occurrences.values()), 1)
        console(
            f"dictionary probabilities re-estimated into {path}: pronunciations of {len(chosen)} words, "
            f"a pause after {len(pause_after)} words (between words {rate:.1%} of the time)"
        )

    def log_train(self, step: int, metrics) -> dict:
        """Reads a dispatched step's metrics (blocks until it finished); stops on a non-finite loss."""
        metrics = jax.device_get(metrics)
        if not math.isfinite(float(metrics["loss"])):
            self.writer.write(step, "failed", reason="non-finite loss", loss=str(metrics["loss"]))
            raise TrainingDiverged(
                f"loss became {metrics['loss']} at step {step}; the last finite metrics are in {self.writer.path}"
            )
        if step % self.config.trainer.log_every == 0 or step == self.config.trainer.steps - 1:  # (0-based: not `due`)
            self.writer.write(step, "train", **metrics)
        return metrics

    # -- evaluation --------------------------------------------------------------------------

    def evaluate_batch(self, batch: dict) -> dict:
        """The jitted decode of one host batch with the current params (`make_eval_fn`)."""
        return self.evaluate(self.state.params, self.parallel.batch(batch))

    def evaluate_split(self, split: str) -> dict:
        beam_width = self.config.trainer.beam_width if split == "test" else 1
        data = getattr(self.splits, split)
        metrics, forced = evaluate_split(
            self.evaluate_batch,
            data,
            self.eval_batches[split],
            self.setup,
            beam_width=beam_width,
            to_host=self.parallel.to_host,
        )
        if split == "valid":
            if forced is not None and self.previous_forced is not None:
                metrics["alignment_churn"] = churn(self.previous_forced, forced)
            self.previous_forced = forced
        return metrics

    def check_convergence(self, step: int) -> bool:
        """Aligns the probe after step `step` (0-based) when a check is due; returns whether training
        has converged (`Convergence`)."""
        if not (self.convergence and self.convergence.due(step)):
            return False
        _, forced = evaluate_split(
            self.evaluate_batch,
            self.convergence.probe,
            self.probe_batches,
            self.setup,
            beam_width=1,
            to_host=self.parallel.to_host,
        )
        moved = self.convergence.update(forced)
        if moved is not None:
            self.writer.write(step + 1, "converge", alignment_churn=moved, quiet_checks=self.convergence.quiet)
        return self.convergence.converged

    def figure(self, step: int) -> Path | None:
        """figures/alignment_test_<i>.png for the shortest, median and longest test target."""
        if "test" not in self.eval_batches:
            return None
        # The other processes evaluate with the first (one SPMD program), drawing into a scratch dir.
        scratch = None if self.first else tempfile.TemporaryDirectory()
        stem = (self.run_dir if self.first else Path(scratch.name)) / "figures" / "alignment_test"
        paths = alignment_figures(
            self.evaluate_batch,
            self.splits.test,
            self.eval_batches["test"],
            self.setup,
            stem,
            to_host=self.parallel.to_host,
        )
        if scratch is not None:
            scratch.cleanup()
        for i, path in enumerate(paths):
            self.writer.add_figure(f"alignment_test_{i}", path, step)
        return self.run_dir / "figures" / "alignment_test_*.png" if paths else None

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> dict:
        trainer = self.config.trainer
        sizes = self.splits.sizes()
        until = (
            f"up to {trainer.steps} steps (until the alignments converge)"
            if self.convergence
            else f"{trainer.steps} steps"
        )
        console(
            f"{self.config.setup.name} on {self.config.data.name} ({sizes['train']} train / {sizes['valid']} valid / {sizes['test']} test), "
            f"{until} of batch {trainer.batch_size}; run dir {self.run_dir}"
        )
        clock = time.perf_counter()
        progress = Progress(trainer.steps, self.start, trainer.log_every, trainer.progress)
        pending, valid = None, {}
        stopped = f"trainer.steps={trainer.steps} reached"
        end = trainer.steps
        for step in range(self.start, trainer.steps):
            metrics, frames, compiled = self.dispatch(step)
            loss = None
            if pending is not None:  # read the previous step's metrics only now: the device stays busy
                loss = float(self.log_train(*pending)["loss"])
            pending = (step, metrics)
            progress.update(step, frames, compiled, loss)
            converged = self.check_convergence(step)
            if converged:
                progress.skip()
                stopped, end = self.convergence.reason(), step + 1
            last = converged or step == trainer.steps - 1
            evaluate, save = due(step, trainer.eval_every) or last, due(step, trainer.checkpoint_every) or last
            if evaluate or save:
                self.log_train(*pending)
                pending = None
            if evaluate and "valid" in self.eval_batches:
                valid = self.evaluate_split("valid")
                self.writer.write(step + 1, "valid", **valid)
                progress.skip()
            if save:
                self.checkpoint(step + 1)
                progress.skip()
            if converged:
                break
        progress.close()
        self.write_dictionary_probabilities(end)
        if self.start >= end:
            stopped = f"resumed at step {self.start}: nothing left to train"
        self.writer.write(end, "stop", reason=stopped)
        test = {}
        if "test" in self.eval_batches:
            test = self.evaluate_split("test")
            self.writer.write(end, "test", **test)
        figure = self.figure(end)
        seconds = time.perf_counter() - clock
        self.writer.write(end, "timing", event="end", seconds=seconds, frames_per_second=progress.frames_per_second)
        self.writer.close()
        self.checkpoints.close()
        self.summary(valid, test, seconds, figure, f"stopped at step {end}: {stopped}")
        return test

    def summary(self, valid: dict, test: dict, seconds: float, figure: Path | None, stopped: str) -> None:
        """The end of the run on the console: why it stopped, final metrics, wall time, where things are."""

        def show(metrics):
            return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float))) or "-"

        latest = self.checkpoints.latest_step()
        lines = [
            f"done in {seconds:.0f} s; {stopped}",
            f"  valid: {show(valid)}",
            f"  test:  {show(test)}",
            f"  run dir:    {self.run_dir} (metrics.jsonl, tensorboard/)",
            f"  checkpoint: {self.run_dir / 'checkpoints' / str(latest)}",
        ]
        if figure:
            lines.append(f"  figures:    {figure}")
        console("\n".join(lines))


def train(config: Config, run_dir, record: dict[str, str] | None = None) -> dict:
    """Runs one experiment into `run_dir` (holding its lock: `jaxalign.training.run_dir`); returns
    the final test metrics. `record` as in `Trainer`."""
    with hold(run_dir) if jax.process_index() == 0 else contextlib.nullcontext():
        return Trainer(config, run_dir, record).run()


def leave_out_too_short(splits, setup):
    """Named examples (a corpus' recordings) whose target's grid does not fit their frames (k
    sub-states a phone need k frames each: `Setup.frames_needed`) are left out of training, as
    `jaxalign-align` leaves them unaligned, rather than masked in every batch: one console line each,
    and a row with the reason in the run record's `corpus_unaligned.csv`."""
    parts, rows = {}, []
    for name in ("train", "valid", "test"):
        data = getattr(splits, name)
        if data.names is None or not len(data):
            parts[name] = data
            continue
        feasible = setup.feasible_targets(data.frame_lengths(), data.labels)
        for i in np.flatnonzero(~feasible):
            reason = (
                f"audio too short: {len(data.features[i])} frames for a path through "
                f"{setup.frames_needed(data.labels[i])} grid rows"
            )
            rows.append((data.names[i], reason))
            console(f"unaligned {data.names[i]}: {reason}")
        parts[name] = data.subset(np.flatnonzero(feasible)) if not feasible.all() else data
    if not rows:
        return splits
    return add_unaligned(DataSplits(parts["train"], parts["valid"], parts["test"], record=splits.record), rows)
