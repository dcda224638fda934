"""The interface every setup of the notes implements, and the parts most setups share.

A setup decides the model, the head's output size, the divergence of a batch, how outputs decode,
and which metrics apply. It is built once from the config (`jaxalign.setups.make_setup`); the train
step, the evaluation, the figures and the config checks call it and never look at its name.
"""

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxalign.align import greedy_decode
from jaxalign.align.types import is_feasible
from jaxalign.errors import ConfigError
from jaxalign.models import SequenceModel
from jaxalign.setups.schedules import INITS, SCHEDULES


def merge_repeats(seq) -> list[int]:
    return [int(s) for i, s in enumerate(seq) if i == 0 or s != seq[i - 1]]


def check_no_ctc(setup_name: str, align) -> None:
    """Only order_sync trains with CTC (the head gets a blank column)."""
    if SCHEDULES[align.schedule].uses_ctc or INITS[align.init].uses_ctc or align.topology != "grid":
        raise ConfigError(
            f"align.schedule={align.schedule}, align.init={align.init} and align.topology={align.topology}: "
            f"CTC needs setup=order_sync, not {setup_name}"
        )


def sequence_model(model_config, feature_dim: int, num_outputs: int, rngs: nnx.Rngs) -> SequenceModel:
    """The `SequenceModel` a `ModelConfig` describes."""
    m = model_config
    return SequenceModel(
        feature_dim,
        num_outputs,
        kind=m.kind,
        hidden=m.hidden,
        num_layers=m.num_layers,
        bidirectional=m.bidirectional,
        dropout=m.dropout,
        unroll=m.unroll,
        compute_dtype=m.compute_dtype,
        rngs=rngs,
    )


class Setup:
    """Base class. Batches are the dicts of `jaxalign.data.Batcher` (shapes there); an *example* is
    one row of a decoded batch sliced to its own length (`jaxalign.training.outputs.per_example`)."""

    name: ClassVar[str]
    states_per_symbol: int = 1  # grid rows per target symbol (order_sync's sub-states)
    optional_symbol: int | None = None  # a class whose target rows the path may skip (order_sync: a corpus' pause)
    aligns: bool = False  # evaluation yields forced alignments (alignment metrics, churn, the figure's path)
    frame_metrics: bool = True  # frame accuracy against the true per-frame labels applies
    stores_alignments: bool = False  # trains on a stored alignment of the training set, realigned by the trainer
    warmup_steps: int = 0  # steps trained on an initial alignment before the model's own (order_sync's warm-up)

    def __init__(self, config, num_classes: int):
        self.num_classes = num_classes

    @classmethod
    def check_config(cls, config) -> None:
        """Raises ConfigError for keys that do not fit this setup (before any data is loaded)."""
        check_no_ctc(cls.name, config.align)
        if config.model.kind == "mlp":
            raise ConfigError(
                f"setup={cls.name} with model.kind=mlp: only one_to_one uses the MLP; pick a recurrent model"
            )

    def check_data(self, splits) -> None:
        """Raises ConfigError when the loaded data cannot serve this setup."""

    def check_devices(self, num_devices: int) -> list[str]:
        """Raises ConfigError when the setup cannot run on `num_devices` data-parallel devices;
        returns console lines about how it will run there."""
        return []

    def warnings(self, total_steps: int) -> list[str]:
        """Things about this configuration worth a WARNING line at the start of a run."""
        return []

    @property
    def num_outputs(self) -> int:
        return self.num_classes

    def feasible(self, frame_lengths, label_lengths):
        """(N,) bool, NumPy or JAX alike: the target's grid fits its input (1 <= L * k <= T)."""
        return is_feasible(frame_lengths, label_lengths * self.states_per_symbol)

    def frames_needed(self, labels_L) -> int:
        """Frames the shortest path through the grid of one target (L,) takes (for messages)."""
        return len(labels_L) * self.states_per_symbol

    def feasible_targets(self, frame_lengths, labels) -> np.ndarray:
        """(N,) bool on the host: `feasible` of ragged targets `labels` (list of (L_i,) int arrays)."""
        label_lengths = np.array([len(y) for y in labels], np.int64)
        return np.asarray(self.feasible(np.asarray(frame_lengths), label_lengths))

    def symbol_log_posteriors(self, log_probs_TxC) -> np.ndarray:
        """(T, num_classes) float64 log p(symbol | frame) of one example's head outputs (`decode`'s
        `log_probs`), normalised over the symbols."""
        lp = np.asarray(log_probs_TxC, np.float64)[:, : self.num_classes]
        return lp - np.logaddexp.reduce(lp, axis=1, keepdims=True)

    def align_long(self, log_probs_TxC, labels_L):
        """The forced alignment of one sequence too long for the batched kernels, from its head
        outputs (T, num_outputs): a `jaxalign.align.long.LongAlignment` whose positions are indices
        into `labels_L`; None where this setup has no such alignment."""
        return None

    def make_model(self, config, feature_dim: int, rngs: nnx.Rngs) -> nnx.Module:
        """The model this setup trains: called with features (B, T, F) and paddings (B, T), it gives
        logits (B, T, `num_outputs`)."""
        return sequence_model(config.model, feature_dim, self.num_outputs, rngs)

    def loss(self, model, batch, step, dropout_key) -> tuple[jax.Array, dict]:
        """(scalar divergence, per-batch metrics) of the model on a batch. Runs inside the jitted
        train step; `step` is traced."""
        logits = model(batch["features"], batch["logit_paddings"], dropout_key=dropout_key).astype(jnp.float32)
        return self.divergence(jax.nn.log_softmax(logits, axis=-1), logits, batch, step)

    def divergence(self, log_probs_BxTxC, logits_BxTxC, batch, step) -> tuple[jax.Array, dict]:
        raise NotImplementedError

    def predict(self, model, batch) -> dict:
        """The jitted evaluation outputs of `model` on a batch (`make_eval_fn`): by default `decode`
        of its logits; a setup whose model decodes step by step (seq2seq) overrides it."""
        logits = model(batch["features"], batch["logit_paddings"]).astype(jnp.float32)
        return self.decode(logits, batch)

    def decode(self, logits_BxTxC, batch) -> dict:
        """Jitted evaluation outputs: `log_probs`, `frame_symbols` (B, T) and decoded `labels` /
        `label_paddings` (B, T), plus setup-specific keys (e.g. `positions`)."""
        log_probs = jax.nn.log_softmax(logits_BxTxC, axis=-1)
        labels, label_pad = greedy_decode(log_probs, batch["logit_paddings"])
        return {
            "log_probs": log_probs,
            "frame_symbols": jnp.argmax(logits_BxTxC, axis=-1),
            "labels": labels,
            "label_paddings": label_pad,
        }

    def reference(self, data, i: int) -> list[int]:
        """The symbol sequence that the decode of example `i` is scored against."""
        return data.labels[i].tolist()

    def hypothesis(self, example: dict) -> list[int]:
        """The decoded symbol sequence of one example (host arrays from `decode`)."""
        return example["labels"][example["label_paddings"] == 0].tolist()

    def beam_decode(self, log_probs_TxC: np.ndarray, beam_width: int) -> list[int] | None:
        """A beam-search decode of one sequence, where the setup has one."""
        return None

    def summary_metrics(self, hyps: list, refs: list) -> dict:
        """Metrics beyond the label error rate, from all hypotheses and references of a split."""
        return {}

    def plot_example(self, path, out, data, example: int, title: str):
        """Draws the figure of one example from its outputs (`per_example`) into `path` and returns
        it (None: this setup draws none). By default `plot_alignment` of `class_probabilities`."""
        from jaxalign.plots import plot_alignment

        table, row_names = self.class_probabilities(out["log_probs"], data.vocab)
        return plot_alignment(
            path,
            table,
            row_names,
            data.labels[example],
            num_classes=data.num_classes,
            title=title,
            positions=out.get("positions"),
            truth=None if data.alignments is None else data.alignments[example],
        )

    def class_probabilities(self, log_probs_TxC: np.ndarray, vocab: list[str]) -> tuple[np.ndarray, list[str]]:
        """One example's head outputs as (T, R) probabilities of the classes, in vocab order, and
        then any outputs that are not classes (e.g. a CTC blank), with the R row names."""
        return np.exp(np.asarray(log_probs_TxC, np.float64)), list(vocab)
