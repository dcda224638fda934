"""The interface every setup of the notes implements, and the parts most setups share.

A setup decides the head's output size, the divergence of a batch, how outputs decode, and which
metrics apply. It is built once from the config (`jaxalign.setups.make_setup`); the train step, the
evaluation, the figures and the config checks call it and never look at its name.
"""

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign.align import greedy_decode
from jaxalign.errors import ConfigError
from jaxalign.setups.schedules import INITS, SCHEDULES


def merge_repeats(seq) -> list[int]:
    return [int(s) for i, s in enumerate(seq) if i == 0 or s != seq[i - 1]]


def check_no_ctc(setup_name: str, align) -> None:
    """Only order_sync trains with CTC (the head gets a blank column)."""
    if SCHEDULES[align.schedule].uses_ctc or INITS[align.init].uses_ctc:
        raise ConfigError(
            f"align.schedule={align.schedule} and align.init={align.init}: CTC needs setup=order_sync, not {setup_name}"
        )


class Setup:
    """Base class. Batches are the dicts of `jaxalign.data.Batcher` (shapes there)."""

    name: ClassVar[str]
    states_per_symbol: int = 1  # output rows per symbol
    blank_id: int | None = None  # CTC blank column of the head, if any
    aligns: bool = False  # evaluation yields forced alignments (alignment metrics, churn, the figure's path)
    frame_metrics: bool = True  # frame accuracy against the true per-frame labels applies
    stored_alignments: bool = False  # the host keeps one alignment per training example (the notes' option 1)
    warmup_steps: int = 0  # steps trained on an initial alignment before realigning
    aligner_context: int | None = None  # frames each side seen by a separate local aligner, if any

    def __init__(self, config, num_classes: int):
        self.config = config
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

    @property
    def num_outputs(self) -> int:
        return self.num_classes

    def loss(self, log_probs_BxTxC, logits_BxTxC, batch, step, aligner_log_probs=None) -> tuple[jax.Array, dict]:
        """(scalar divergence, per-batch metrics). Runs inside the jitted train step; `step` is traced.
        `aligner_log_probs` (B, T, C'): the local aligner's, where `aligner_context` asks for one."""
        raise NotImplementedError

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

    def hypothesis(self, out: dict, row: int, num_frames: int) -> list[int]:
        """The decoded symbol sequence of batch row `row` (host arrays from `decode`)."""
        return out["labels"][row][out["label_paddings"][row] == 0].tolist()

    def beam_decode(self, log_probs_TxC: np.ndarray, beam_width: int) -> list[int] | None:
        """A beam-search decode of one sequence, where the setup has one."""
        return None

    def summary_metrics(self, hyps: list, refs: list) -> dict:
        """Metrics beyond the label error rate, from all hypotheses and references of a split."""
        return {}

    def realign_due(self, step: int, epoch: int, epoch_start: bool, done: set) -> int | None:
        """With stored alignments: a mark for the realignment due before this step, else None."""
        return None
