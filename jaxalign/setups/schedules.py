"""order_sync's strategies, chosen once from the config: the alignment *schedule* (where the frame
targets come from after the warm-up) and the *initial alignment* trained on during the warm-up.

A schedule is built once with its own parameters (`Schedule.from_config`); each call is handed the
`OrderSync` setup, which owns the grid, the path search and the divergences. Adding a schedule means
one class here, one entry in `SCHEDULES` and, if it needs keys, its yaml.
"""

import jax

from jaxalign.decoding import ctc_prefix_beam_search, substate_greedy_decode, substate_viterbi_decode
from jaxalign.errors import ConfigError


class Schedule:
    uses_ctc: bool = False  # the head needs a CTC blank column
    warms_up: bool = True  # trains on the initial alignment for align.warmup_steps first
    stored: bool = False  # targets come from a host-side store of whole-training-set alignments
    local_aligner: bool = False  # can align with (and train) a frame-local aligner (align.aligner_context)

    @classmethod
    def check_config(cls, align) -> None:
        """Raises ConfigError when the align keys do not fit this schedule."""

    @classmethod
    def from_config(cls, config) -> "Schedule":
        """The schedule with the parameters it takes from a checked `Config`."""
        return cls()

    def loss(self, setup, log_probs_BxTxC, logits_BxTxC, batch, aligner_log_probs=None):
        raise NotImplementedError

    def decode_labels(self, setup, log_probs_BxTxC, paddings_BxT) -> dict:
        """Symbol sequences from the sub-state topology: Viterbi decode, and the greedy one beside it."""
        k, num_symbols = setup.states_per_symbol, setup.num_classes
        labels, label_pad = substate_viterbi_decode(log_probs_BxTxC, paddings_BxT, k=k, num_symbols=num_symbols)
        greedy, greedy_pad = substate_greedy_decode(log_probs_BxTxC, paddings_BxT, k=k, blank_id=setup.blank_id)
        return {
            "labels": labels,
            "label_paddings": label_pad,
            "greedy_labels": greedy,
            "greedy_label_paddings": greedy_pad,
        }

    def beam_decode(self, setup, log_probs_TxC, beam_width: int):
        return None

    def realign_due(self, setup, step: int, epoch: int, epoch_start: bool, done: set) -> int | None:
        """Stored schedules: a mark for the realignment due before this step, else None."""
        return None


class PerStep(Schedule):
    """The notes' option 2: align each minibatch in the forward pass (on stop-gradient log-probs) and
    train on that path in the backward pass."""

    local_aligner = True

    def __init__(self, aligner_mix: float):
        self.aligner_mix = aligner_mix  # with a local aligner: paths score log p_local + aligner_mix * log p_model

    @classmethod
    def from_config(cls, config):
        return cls(aligner_mix=config.align.aligner_mix)

    def loss(self, setup, log_probs_BxTxC, logits_BxTxC, batch, aligner_log_probs=None):
        scores = log_probs_BxTxC
        if aligner_log_probs is not None:
            scores = aligner_log_probs + self.aligner_mix * log_probs_BxTxC
        ali = setup.align(jax.lax.stop_gradient(scores), batch)
        rows_BxT, symbols_BxT = setup.path_targets(ali)
        return setup.frame_loss(
            log_probs_BxTxC, batch, rows_BxT, ali.feasible, aligner_log_probs, symbols_BxT, batch.get("graph")
        )


class PerEpoch(Schedule):
    """The notes' option 1: realign the whole training set at each epoch start after the warm-up;
    the batch carries its rows as `fixed_positions` (B, T) from the host store."""

    stored = True

    def loss(self, setup, log_probs_BxTxC, logits_BxTxC, batch, aligner_log_probs=None):
        return setup.frame_loss(log_probs_BxTxC, batch, batch["fixed_positions"], setup.batch_feasible(batch))

    def realign_due(self, setup, step, epoch, epoch_start, done):
        due = epoch_start and step >= setup.warmup_steps
        return epoch if due and epoch not in done else None


class RealignList(PerEpoch):
    """Realign at listed points (Kaldi monophone style): `align.realign_at` holds epochs (>= 1) or
    fractions of training (< 1)."""

    def __init__(self, realign_at: tuple[float, ...], total_steps: int):
        self.realign_at, self.total_steps = realign_at, total_steps

    @classmethod
    def check_config(cls, align) -> None:
        if not align.realign_at:
            raise ConfigError("align.realign_at must list epochs or fractions when align.schedule=realign_list")

    @classmethod
    def from_config(cls, config):
        return cls(realign_at=tuple(config.align.realign_at), total_steps=config.trainer.steps)

    def realign_due(self, setup, step, epoch, epoch_start, done):
        """Marks are the epoch for epoch points and -(step + 1) for fractions, so each point fires
        once, also across a resume."""
        for at in self.realign_at:
            if at >= 1 and epoch_start and epoch == int(at) and epoch not in done:
                return epoch
            if at < 1 and step == int(round(at * self.total_steps)) and -(step + 1) not in done:
                return -(step + 1)
        return None


class FullSum(Schedule):
    """HMM-style full-sum training on the same grid ("CTC without a blank"): the loss sums over all
    monotone paths (`forward_score`) instead of training on the best one, so no hard alignment is
    ever committed to; its gradient is the frame-by-row occupancy. Where the batch carries its
    examples' pronunciation graphs, the sum runs over every listed pronunciation too
    (`OrderSync.full_sum_score`)."""

    def loss(self, setup, log_probs_BxTxC, logits_BxTxC, batch, aligner_log_probs=None):
        return setup.sequence_loss(setup.full_sum_score(log_probs_BxTxC, batch), batch)


class Ctc(Schedule):
    """optax's CTC over the sub-state rows plus a blank; decodes by best path."""

    uses_ctc = True
    warms_up = False

    def loss(self, setup, log_probs_BxTxC, logits_BxTxC, batch, aligner_log_probs=None):
        return setup.ctc_loss(logits_BxTxC, batch)

    def decode_labels(self, setup, log_probs_BxTxC, paddings_BxT):
        labels, label_pad = substate_greedy_decode(
            log_probs_BxTxC, paddings_BxT, k=setup.states_per_symbol, blank_id=setup.blank_id
        )
        return {"labels": labels, "label_paddings": label_pad}

    def beam_decode(self, setup, log_probs_TxC, beam_width):
        k = setup.states_per_symbol
        return [s // k for s in ctc_prefix_beam_search(log_probs_TxC, setup.blank_id, beam_width) if s % k == 0]


class FlatStart:
    """Initial alignment `uniform`: equal segmentation of each sequence over its rows."""

    uses_ctc = False
    local_aligner = True

    def loss(self, setup, log_probs_BxTxC, logits_BxTxC, batch, aligner_log_probs=None):
        ali = setup.flat_start(batch)
        return setup.frame_loss(log_probs_BxTxC, batch, ali.positions, ali.feasible, aligner_log_probs)


class CtcWarmup:
    """Initial alignment `ctc_warmup`: train with CTC during the warm-up (no frame targets)."""

    uses_ctc = True
    local_aligner = False

    def loss(self, setup, log_probs_BxTxC, logits_BxTxC, batch, aligner_log_probs=None):
        return setup.ctc_loss(logits_BxTxC, batch)


class FullSumWarmup:
    """Initial alignment `full_sum_warmup`: full-sum training during the warm-up, so the first
    realignment comes from a net that never committed to the flat start's boundaries."""

    uses_ctc = False
    local_aligner = False

    def loss(self, setup, log_probs_BxTxC, logits_BxTxC, batch, aligner_log_probs=None):
        return FullSum().loss(setup, log_probs_BxTxC, logits_BxTxC, batch, aligner_log_probs)


SCHEDULES = {"per_step": PerStep, "per_epoch": PerEpoch, "realign_list": RealignList, "full_sum": FullSum, "ctc": Ctc}
INITS = {"uniform": FlatStart, "ctc_warmup": CtcWarmup, "full_sum_warmup": FullSumWarmup}
