"""A trained run, loaded from its directory for use: `jaxalign.load_run(run_dir)`.

The run directory holds the resolved config (`.hydra/config.yaml`) and orbax checkpoints; the model
and its setup are rebuilt exactly as the Trainer builds them (`init_train_state`), and the checkpoint
restores into that template. Sequences are padded into the run's length buckets by the same
`Batcher` as in training, so a call compiles once per bucket shape.
"""

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np

from jaxalign.aligner.export import Clock
from jaxalign.config import Config, load_config
from jaxalign.data import Batcher, SequenceData, bucket_bounds
from jaxalign.errors import CheckpointError, RunError
from jaxalign.setups import SETUPS, Setup, setup_for_data
from jaxalign.training.checkpoints import Checkpoints
from jaxalign.training.evaluation import alignment_figures
from jaxalign.training.outputs import per_example
from jaxalign.training.run_dir import holder
from jaxalign.training.step import init_train_state, make_eval_fn

# Sequences longer than this (frames), or whose grid has more cells, are long recordings: the net
# runs over them in overlapping windows, and their forced alignment is banded (`jaxalign.align.long`).
LONG_FRAMES = 30_000  # 5 minutes at 10 ms
LONG_GRID_CELLS = 50_000_000  # 50 MB of one-byte backpointers
CHUNK_FRAMES = 3_000  # the windows the net runs over for a long recording (30 s at 10 ms) ...
CHUNK_OVERLAP = 300  # ... with this much context on each side


@dataclasses.dataclass
class Run:
    """A trained model at one checkpoint step. Inputs are lists of per-sequence NumPy arrays:
    features (T_i, F) float, labels (L_i,) int symbol ids in [0, num_classes)."""

    run_dir: Path
    config: Config
    setup: Setup
    params: object  # nnx.State of the model
    step: int  # the checkpoint's training step
    data_info: dict  # what the run knows of its training data (`SequenceData.info()`)
    evaluate: Callable  # jitted (params, batch) -> `setup.decode` outputs (see make_eval_fn)

    @property
    def feature_dim(self) -> int:
        """F, the features per frame the model takes."""
        return self.data_info["feature_dim"]

    @property
    def vocab(self) -> list[str]:
        """Class names of the training data; len = num_classes."""
        return list(self.data_info["vocab"])

    @property
    def num_classes(self) -> int:
        return len(self.vocab)

    @property
    def clock(self) -> Clock | None:
        """Frame index -> seconds of the run's audio front end (`jaxalign.aligner.export`); None for
        features without one (.npz, digit strips, synthetic). Runs recorded before the front end was
        kept in the checkpoint read it from their data config."""
        front_end = self.data_info.get("front_end")
        if front_end is not None:
            return Clock.of_front_end(SimpleNamespace(**front_end))
        if hasattr(self.config.data, "hop_ms") and hasattr(self.config.data, "frame_ms"):
            return Clock.of_front_end(self.config.data)
        return None

    def feasible(self, frame_lengths, labels) -> np.ndarray:
        """(N,) bool: each target's grid fits its input (`Setup.feasible_targets`)."""
        return self.setup.feasible_targets(frame_lengths, labels)

    def outputs(self, features, labels=None, shapes=None) -> list[dict]:
        """One dict per sequence: `log_probs` (T_i, C') over the head's outputs (C' =
        `setup.num_outputs`: sub-state rows, the CTC blank last where the run has one; seq2seq: the
        log attention weights over the L_i + 1 output positions of the teacher-forced decode of
        `labels`; one_to_many: none),
        `hypothesis` (the decoded symbol ids) and, with `labels` and an aligning setup, `positions`
        (T_i,) int32: the forced Viterbi alignment of the labels, the target row (symbol index in
        the label sequence) of each frame (seq2seq: the path through the attention); all -1 when the target needs more frames than the input
        has (`setup.feasible`). `shapes`: `batch_shapes` of a larger set the sequences belong to,
        so that calls over its parts share compiled shapes; default: the sequences' own."""
        features = [np.asarray(x, np.float32) for x in features]
        if not features:
            return []
        self._check_features(features)
        given = labels is not None
        labels = self._checked_labels(labels, len(features)) if given else [np.zeros(1, np.int32)] * len(features)
        frames = np.array([len(x) for x in features])
        feasible = self.feasible(frames, labels)
        rows = np.array([self.setup.frames_needed(y) for y in labels])
        long = (frames > LONG_FRAMES) | (frames * rows > LONG_GRID_CELLS)
        results: list[dict] = [{} for _ in features]
        short = np.flatnonzero(~long)
        # Infeasible targets go through as a 1-symbol stand-in (the batcher rejects L > T); their path is -1.
        batched = [labels[i] if feasible[i] else labels[i][:1] for i in short]
        for j, out in self._per_example([features[i] for i in short], batched, shapes):
            i = int(short[j])
            results[i] = {"hypothesis": self.setup.hypothesis(out)}
            if "log_probs" in out:  # a setup without per-frame outputs (one_to_many) has none
                results[i]["log_probs"] = out["log_probs"]
            if given and "positions" in out:
                results[i]["positions"] = (
                    out["positions"].astype(np.int32) if feasible[i] else np.full(len(features[i]), -1, np.int32)
                )
        for i in np.flatnonzero(long):
            results[i] = self._long_outputs(int(i), features[i], labels[i] if given and feasible[i] else None)
            if given and "positions" not in results[i] and self.setup.aligns:
                results[i]["positions"] = np.full(len(features[i]), -1, np.int32)
        return results

    def batch_shapes(self, frame_lengths, label_lengths) -> tuple[list[int], int]:
        """(bucket bounds, label length) that fit these sequences, in the run's number of buckets:
        for `outputs` calls that should share compiled shapes (the chunks of one corpus)."""
        bounds = bucket_bounds(
            np.asarray(frame_lengths), self.config.trainer.num_buckets, self.config.trainer.batch_size
        )
        return bounds, max(max(label_lengths, default=1), 1)

    def _per_example(self, features, labels, shapes=None):
        """`per_example` of the run's eval function over sequences, in the run's length buckets
        (`shapes`: given ones, from `batch_shapes`)."""
        if not features:
            return iter(())
        bounds, label_len = shapes or (None, None)
        batcher = Batcher(
            SequenceData.like(self.data_info, features, labels),
            self.config.trainer.batch_size,
            num_buckets=self.config.trainer.num_buckets,
            bounds=bounds,
            label_len=label_len,
        )
        return per_example(functools.partial(self.evaluate, self.params), batcher)

    def chunked_log_probs(self, features_TxF, chunk: int = CHUNK_FRAMES, overlap: int = CHUNK_OVERLAP) -> np.ndarray:
        """(T, C') log-probs of one long sequence, the net run over windows of `chunk` frames plus
        `overlap` frames of context each side, each window's middle kept (a bidirectional net's
        context is what the overlap preserves; `experiments/bench_long.py` measures the difference
        from one pass over the whole input)."""
        starts = range(0, len(features_TxF), chunk)
        windows = [(max(0, s - overlap), min(len(features_TxF), s + chunk + overlap)) for s in starts]
        pieces = [features_TxF[a:b] for a, b in windows]
        out = [None] * len(pieces)
        for j, example in self._per_example(pieces, [np.zeros(1, np.int32)] * len(pieces)):
            out[j] = example["log_probs"]
        return np.concatenate([lp[s - a : s - a + chunk] for lp, s, (a, _) in zip(out, starts, windows)])

    def _long_outputs(self, index: int, features_TxF, labels_L) -> dict:
        """`outputs` of one long sequence: chunked log-probs, the per-frame most likely symbol with
        repeats merged as its hypothesis, and with labels a banded forced alignment (`Setup.align_long`)."""
        from jaxalign.training.record import console

        log_probs = self.chunked_log_probs(features_TxF)
        frame_symbols = self.setup.symbol_log_posteriors(log_probs).argmax(axis=1)
        result = {
            "log_probs": log_probs,
            "hypothesis": [int(s) for j, s in enumerate(frame_symbols) if j == 0 or s != frame_symbols[j - 1]],
        }
        if labels_L is None:
            return result
        console(
            f"sequence {index}: {len(features_TxF)} frames, a target of {len(labels_L)} symbols: aligned in a band "
            "around a first pass (a long recording)"
        )
        found = self.setup.align_long(log_probs, labels_L)
        if found is None:
            return result
        if found.touched_edge:
            console(
                f"WARNING: sequence {index}: the path touched its band's edge at {found.width} rows; parts may be misaligned"
            )
        result["positions"] = found.positions
        result["band_width"] = found.width
        return result

    def log_probs(self, features) -> list[np.ndarray]:
        """Per sequence (T_i, C') float32 log-probabilities of the head's outputs (see `outputs`)."""
        results = self.outputs(features)
        if results and "log_probs" not in results[0]:
            raise RunError(
                f"{self.run_dir} was trained with setup={self.config.setup.name}, which has no per-frame outputs"
            )
        return [r["log_probs"] for r in results]

    def decode(self, features) -> list[list[int]]:
        """Per sequence the decoded symbol ids (the setup's decode, as in evaluation)."""
        return [r["hypothesis"] for r in self.outputs(features)]

    def align(self, features, labels) -> list[np.ndarray]:
        """Per sequence (T_i,) int32 forced alignment: the row of `labels[i]` each frame is on (-1
        everywhere where the target is too long for the input). Only for aligning setups (order_sync, seq2seq)."""
        self.require_alignments()
        if labels is None:
            raise RunError("Run.align needs the labels to align: align(features, labels)")
        return [r["positions"] for r in self.outputs(features, labels)]

    def require_alignments(self) -> None:
        if not self.setup.aligns:
            raise RunError(
                f"{self.run_dir} was trained with setup={self.config.setup.name}, which gives no alignments; use a setup=order_sync or setup=seq2seq run"
            )

    def _check_features(self, features) -> None:
        for i, x in enumerate(features):
            if x.ndim != 2 or x.shape[0] < 1:
                raise RunError(
                    f"features: sequence {i} has shape {x.shape}; expected (frames >= 1, {self.feature_dim})"
                )
            if x.shape[1] != self.feature_dim:
                raise RunError(
                    f"features: sequence {i} has {x.shape[1]} features per frame but the model of {self.run_dir} takes {self.feature_dim}"
                )
            if not np.isfinite(x).all():
                raise RunError(f"features: sequence {i} has a NaN or infinite value")

    def _checked_labels(self, labels, count: int) -> list[np.ndarray]:
        """`labels` as (L_i,) int32 arrays, or RunError naming the first bad sequence."""
        if labels is None or isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__"):
            raise RunError(
                f"labels: expected a list of {count} label sequences (1-D arrays of symbol ids), got {labels!r:.60}"
            )
        if len(labels) != count:
            raise RunError(f"{count} feature sequences but {len(labels)} label sequences")
        out = []
        for i, y in enumerate(labels):
            y = np.asarray(y)
            if y.ndim != 1 or y.size < 1:
                raise RunError(
                    f"labels: sequence {i} has shape {y.shape}; expected a non-empty 1-D array of symbol ids"
                )
            if not np.issubdtype(y.dtype, np.integer):
                raise RunError(f"labels: sequence {i} has dtype {y.dtype}; symbol ids must be integers")
            bad = (y < 0) | (y >= self.num_classes)
            if bad.any():
                raise RunError(f"labels: sequence {i} has id {y[bad][0]}, outside the run's {self.num_classes} classes")
            out.append(y.astype(np.int32))
        return out


def load_run(run_dir, step: int | None = None) -> Run:
    """The run in `run_dir` (a `jaxalign-train` output directory) at checkpoint `step` (default: the
    latest). Raises RunError, ConfigError or CheckpointError with one line naming the problem."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"no run directory {run_dir}")
    if step is not None:
        if not (isinstance(step, int) or (isinstance(step, str) and step.strip().isdigit())):
            raise RunError(f"step={step!r} is not a checkpoint step (an int; default: the latest)")
        step = int(step)
    config = load_config(run_dir / ".hydra" / "config.yaml")
    training = holder(run_dir)
    if training is not None and step is None:
        raise RunError(
            f"{run_dir} is still training ({training}): its latest checkpoint is not its last; wait for it to finish, "
            "or ask for a checkpoint step (--step N, load_run(run_dir, step=N))"
        )
    checkpoints = Checkpoints(run_dir / "checkpoints", max_to_keep=config.trainer.keep_checkpoints, create=False)
    try:
        if checkpoints.latest_step() is None:
            raise CheckpointError(f"no checkpoint under {run_dir / 'checkpoints'}")
        meta = checkpoints.restore_meta(step)
        info = meta["data"]
        setup = setup_for_data(config, info, aligning=True)
        graphdef, _, template = init_train_state(config, setup, info["feature_dim"])
        state, meta = checkpoints.restore_state(template, step)
    finally:
        checkpoints.close()
    return Run(run_dir, config, setup, state.params, int(meta["step"]), info, make_eval_fn(graphdef, setup))


def require_aligning_setup(run_dir) -> None:
    """RunError unless the run's setup gives alignments (read from its config: no checkpoint restored)."""
    name = load_config(Path(run_dir) / ".hydra" / "config.yaml").setup.name
    if not SETUPS[name].aligns:
        raise RunError(
            f"{run_dir} was trained with setup={name}, which gives no alignments; use a setup=order_sync or setup=seq2seq run"
        )


def plot_run_alignment(run_dir, out_path, step: int | None = None, split: str = "test", examples=None) -> list[Path]:
    """The alignment figures of a finished run, rebuilt from its directory (config + checkpoint `step`,
    default the latest) without training. `out_path` ending in `.png` gives `<stem>_<i>.png` beside
    it; otherwise it is a folder that gets `alignment_<split>_<i>.png`, the names training writes.
    With the latest checkpoint the files equal the ones written at the end of training."""
    from jaxalign.data.load import load_splits

    run = load_run(run_dir, step=step)
    data = getattr(load_splits(run.config.data), split)
    if not len(data):
        raise RunError(f"the run's {split} split is empty")
    trainer = run.config.trainer
    batcher = Batcher(data, trainer.batch_size, num_buckets=trainer.num_buckets)  # the Trainer's shapes
    out_path = Path(out_path)
    stem = out_path.with_suffix("") if out_path.suffix == ".png" else out_path / f"alignment_{split}"
    evaluate = functools.partial(run.evaluate, run.params)
    return alignment_figures(evaluate, data, batcher, run.setup, stem, examples, to_host=jax.device_get)
