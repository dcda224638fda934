"""Order-synchronous (time-asynchronous): a shorter symbol sequence with no timing. The frame
targets come from an alignment over the target-ordered grid (or CTC), following the schedule and
initial alignment chosen in `align` (strategies in `jaxalign.setups.schedules`).

With `align.states_per_symbol` = k each symbol s owns k ordered sub-state rows s*k .. s*k+k-1 of
the head, so "3 3" decodes apart from "3"; a CTC blank, when used, is the last column C*k.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign.align import forward_score, forward_score_pallas, masked_align, viterbi_align, viterbi_align_pallas
from jaxalign.align.types import is_feasible, lengths
from jaxalign.errors import ConfigError
from jaxalign.setups.base import Setup
from jaxalign.setups.divergences import ctc_divergence, frame_cross_entropy, substate_labels
from jaxalign.setups.schedules import INITS, SCHEDULES

ALIGNERS = {"viterbi": viterbi_align, "masked": masked_align}
KERNELS = ("scan", "pallas")  # how the grid recursions run: XLA scans (every backend) or Pallas kernels (GPUs)


class OrderSync(Setup):
    name = "order_sync"
    aligns = True

    def __init__(self, config, num_classes: int):
        super().__init__(config, num_classes)
        align = config.align
        self.schedule = SCHEDULES[align.schedule]()
        self.init = INITS[align.init]()
        pallas = align.kernel == "pallas"
        self.viterbi = viterbi_align_pallas if pallas else viterbi_align  # evaluation's forced alignment
        self.aligner = self.viterbi if align.method == "viterbi" else ALIGNERS[align.method]  # training targets
        self.forward_score = forward_score_pallas if pallas else forward_score  # full-sum schedules
        self.states_per_symbol = align.states_per_symbol
        self.warmup_steps = align.warmup_steps if self.schedule.warms_up else 0
        self.stored_alignments = self.schedule.stored
        local = align.aligner_context >= 0 and self.schedule.local_aligner and self.init.local_aligner
        self.aligner_context = align.aligner_context if local else None
        uses_ctc = self.schedule.uses_ctc or (self.init.uses_ctc and self.warmup_steps > 0)
        self.blank_id = num_classes * self.states_per_symbol if uses_ctc else None

    @classmethod
    def check_config(cls, config) -> None:
        SCHEDULES[config.align.schedule].check_config(config.align)
        if config.align.kernel == "pallas" and config.align.method != "viterbi":
            raise ConfigError(
                f"align.kernel=pallas has kernels for align.method=viterbi and the full-sum score, not for "
                f"align.method={config.align.method}: use align.kernel=scan, or align.method=viterbi"
            )
        if config.model.kind == "mlp":
            raise ConfigError(
                "setup=order_sync with model.kind=mlp: only one_to_one uses the MLP; pick a recurrent model"
            )

    def check_data(self, splits) -> None:
        k = self.states_per_symbol
        if k > 1 and np.all(splits.train.label_lengths() * k > splits.train.frame_lengths()):
            raise ConfigError(
                f"align.states_per_symbol={k}: every training target is longer than its input once expanded"
            )

    @property
    def num_outputs(self) -> int:
        return self.num_classes * self.states_per_symbol + (self.blank_id is not None)

    def grid(self, batch):
        """(labels (B, L*k), label_paddings (B, L*k)): the rows of the target-ordered grid."""
        return substate_labels(batch["labels"], batch["label_paddings"], self.states_per_symbol)

    def align(self, log_probs_BxTxC, batch):
        """The `Alignment` of the batch's grid that realignment trains on. With align.prior_scale = s > 0
        the aligner scores log p(c|x) - s log p(c), the batch's mean posterior standing in for the
        prior p(c) (the hybrid HMM's scaled likelihood), so frequent classes do not swallow frames."""
        labels, label_pad = self.grid(batch)
        scale = self.config.align.prior_scale
        if scale > 0:
            valid_BxT = self.valid_frames(batch)
            mean_C = jnp.sum(jnp.where(valid_BxT[..., None], jnp.exp(log_probs_BxTxC), 0.0), axis=(0, 1)) / jnp.maximum(
                jnp.sum(valid_BxT), 1
            )
            log_probs_BxTxC = log_probs_BxTxC - scale * jnp.log(jnp.maximum(mean_C, 1e-8))
        return self.aligner(log_probs_BxTxC, batch["logit_paddings"], labels, label_pad)

    def valid_frames(self, batch):
        """(B, T) bool: real frames of real (weight > 0) examples."""
        return (batch["logit_paddings"] == 0) & (batch["weights"][:, None] > 0)

    def frame_loss(self, log_probs_BxTxC, batch, positions_BxT, feasible_B, aligner_log_probs=None):
        """Frame cross-entropy on the grid rows `positions` (-1 = no target), mean over frames; with
        a local aligner, plus its own cross-entropy on the same targets."""
        labels_BxL, _ = self.grid(batch)
        symbols_BxT = jnp.where(
            positions_BxT >= 0, jnp.take_along_axis(labels_BxL, jnp.maximum(positions_BxT, 0), axis=1), -1
        )
        valid_BxT = self.valid_frames(batch)
        weights_BxT = (valid_BxT & feasible_B[:, None]).astype(jnp.float32)
        total, count = frame_cross_entropy(log_probs_BxTxC, symbols_BxT, weights_BxT)
        if aligner_log_probs is not None:
            total += frame_cross_entropy(aligner_log_probs, symbols_BxT, weights_BxT)[0]
        truth_BxT = batch["alignments"]
        known_BxT = valid_BxT & (truth_BxT >= 0) & feasible_B[:, None]
        hits = jnp.sum(known_BxT & (positions_BxT // self.states_per_symbol == truth_BxT))
        metrics = {
            "infeasible": jnp.sum(~feasible_B & (batch["weights"] > 0)),
            "train_alignment_accuracy": hits / jnp.maximum(jnp.sum(known_BxT), 1),
        }
        return total / jnp.maximum(count, 1.0), metrics

    def sequence_loss(self, log_likelihood_B, batch):
        """-sum of per-sequence log-likelihoods (CTC, full-sum) over real feasible sequences, divided
        by their frames: the same scale as the frame loss. The alignment accuracy does not apply
        (NaN: left out of the log)."""
        _, label_pad_BxL = self.grid(batch)
        feasible_B = is_feasible(lengths(batch["logit_paddings"]), lengths(label_pad_BxL))
        use_B = feasible_B & (batch["weights"] > 0)
        frames = jnp.sum(self.valid_frames(batch) & use_B[:, None])
        total = -jnp.sum(jnp.where(use_B, log_likelihood_B * batch["weights"], 0.0))
        metrics = {
            "infeasible": jnp.sum(~feasible_B & (batch["weights"] > 0)),
            "train_alignment_accuracy": jnp.float32(jnp.nan),
        }
        return total / jnp.maximum(frames, 1), metrics

    def ctc_loss(self, logits_BxTxC, batch):
        """optax CTC over the grid rows plus the blank."""
        labels_BxL, label_pad_BxL = self.grid(batch)
        per_seq_B = ctc_divergence(logits_BxTxC, batch["logit_paddings"], labels_BxL, label_pad_BxL, self.blank_id)
        return self.sequence_loss(-per_seq_B, batch)

    def loss(self, log_probs_BxTxC, logits_BxTxC, batch, step, aligner_log_probs=None):
        def trained():
            return self.schedule.loss(self, log_probs_BxTxC, logits_BxTxC, batch, aligner_log_probs)

        if self.warmup_steps == 0:
            return trained()

        def warm_up():  # inside the cond, so nothing of the trained branch runs during warm-up
            return self.init.loss(self, log_probs_BxTxC, logits_BxTxC, batch, aligner_log_probs)

        return jax.lax.cond(step < self.warmup_steps, warm_up, trained)

    def decode(self, logits_BxTxC, batch) -> dict:
        """Also `positions` (B, T): the forced Viterbi alignment of the true labels in symbol rows,
        over the symbol columns renormalised (a CTC net's blank is left out)."""
        k, pad = self.states_per_symbol, batch["logit_paddings"]
        symbol_logits = logits_BxTxC[..., : self.num_classes * k]
        log_probs = jax.nn.log_softmax(logits_BxTxC, axis=-1)
        out = {"log_probs": log_probs, "frame_symbols": jnp.argmax(symbol_logits, axis=-1) // k}
        out.update(self.schedule.decode_labels(self, log_probs, pad))
        labels, label_pad = self.grid(batch)
        ali = self.viterbi(jax.nn.log_softmax(symbol_logits, axis=-1), pad, labels, label_pad)
        out["positions"] = jnp.where(ali.positions >= 0, ali.positions // k, -1)
        return out

    def beam_decode(self, log_probs_TxC, beam_width):
        return self.schedule.beam_decode(self, log_probs_TxC, beam_width)

    def realign_due(self, step: int, epoch: int, epoch_start: bool, done: set) -> int | None:
        return self.schedule.realign_due(self, step, epoch, epoch_start, done)
