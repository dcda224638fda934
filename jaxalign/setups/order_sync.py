"""Order-synchronous (time-asynchronous): a shorter symbol sequence with no timing. The frame
targets come from an alignment over the target-ordered grid (or CTC), following the schedule and
initial alignment chosen in `align` (strategies in `jaxalign.setups.schedules`).

With `align.states_per_symbol` = k each symbol s owns k ordered sub-state rows s*k .. s*k+k-1 of
the head, so "3 3" decodes apart from "3"; a CTC blank, when used, is the last column C*k.

A data set may name an *optional symbol* (`SequenceData.optional_symbol`: a corpus' silence, which
its targets put between words): each of its occurrences is a block of `align.pause_states` rows that
the path enters whole or skips whole, so the Viterbi decides where the pauses are and a pause lasts
at least that many frames (`substate_grid`); entering costs log p, skipping log(1 - p) with
p = `align.pause_probability`. Such a grid is searched as a graph (`Grid.graph`, `graph_viterbi`,
`graph_forward`).
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign.align import (
    forward_score,
    forward_score_pallas,
    graph_forward,
    graph_viterbi,
    masked_align,
    uniform_align,
    viterbi_align,
    viterbi_align_pallas,
)
from jaxalign.align.ctc import ctc_grid, label_rows
from jaxalign.align.grid import Grid, substate_grid, target_grid
from jaxalign.align.pallas_grid import use_interpreter
from jaxalign.align.types import Alignment, is_feasible, lengths, valid_mask
from jaxalign.errors import ConfigError
from jaxalign.models.local import LocalAligner, WithLocalAligner
from jaxalign.setups.base import Setup
from jaxalign.setups.divergences import ctc_divergence, frame_cross_entropy
from jaxalign.setups.schedules import INITS, SCHEDULES


class GridKernels(NamedTuple):
    """One implementation of the target-ordered grid's two recursions (`align.kernel`)."""

    viterbi: Callable  # viterbi_align's signature -> Alignment
    forward_score: Callable  # forward_score's signature -> (B,) log-likelihoods


KERNELS = {
    "scan": GridKernels(viterbi_align, forward_score),  # XLA scans, every backend
    "pallas": GridKernels(viterbi_align_pallas, forward_score_pallas),  # Pallas kernels: GPUs; interpreted elsewhere
}
TOPOLOGIES = (
    "grid",  # the notes' target-ordered grid: every row visited
    "ctc",  # CTC's: optional blank rows between the rows (mandatory between repeats); the head gets a blank
)
# align.method -> the path search that finds the training targets, given the kernels.
METHODS = {
    "viterbi": lambda kernels: kernels.viterbi,  # the best monotone path through the grid
    "masked": lambda kernels: masked_align,  # the notes' method 1: per-frame MAP among the target's symbols
}


class OrderSync(Setup):
    name = "order_sync"
    aligns = True

    def __init__(self, config, num_classes: int, optional_symbol: int | None = None):
        super().__init__(config, num_classes)
        align = config.align
        self.optional_symbol = optional_symbol  # the symbol whose target rows the path may skip, or None
        self.schedule = SCHEDULES[align.schedule].from_config(config)
        self.init = INITS[align.init]()
        self.kernel = align.kernel
        kernels = KERNELS[align.kernel]
        self.viterbi = kernels.viterbi  # evaluation's forced alignment
        self.forward_score = kernels.forward_score  # full-sum schedules
        self.path_search = METHODS[align.method](kernels)  # training targets
        self.states_per_symbol = align.states_per_symbol
        self.pause_states = align.pause_states  # rows of each optional symbol's block
        self.pause_columns = align.pause_states  # the block length whose sub-state columns the net learns
        self.pause_probability = align.pause_probability
        self.prior_scale = align.prior_scale
        self.prior_steps = align.prior_steps
        self.warmup_steps = align.warmup_steps if self.schedule.warms_up else 0
        self.init_name, self.schedule_name = align.init, align.schedule
        local = align.aligner_context >= 0 and self.schedule.local_aligner and self.init.local_aligner
        self.aligner_context = align.aligner_context if local else None  # frames each side the local aligner sees
        self.topology = align.topology
        # How outputs decode: on CTC's grid as CTC does (best path, prefix beam search), else the schedule's way.
        self.decoder = SCHEDULES["ctc"].from_config(config) if self.topology == "ctc" else self.schedule
        uses_ctc = self.schedule.uses_ctc or (self.init.uses_ctc and self.warmup_steps > 0) or self.topology == "ctc"
        self.blank_id = num_classes * self.states_per_symbol if uses_ctc else None  # the head's CTC blank column
        if optional_symbol is not None:
            self.check_optional(align)

    def check_optional(self, align) -> None:
        """Optional blocks run on the graph kernels' Viterbi and full sum; CTC's own grid, optax's CTC,
        the masked alignment and the Pallas kernels have no optional blocks."""
        if self.blank_id is not None or align.kernel != "scan" or align.method != "viterbi":
            raise ConfigError(
                "this data set's targets have optional pauses (data.silence): they need align.method=viterbi, "
                f"align.kernel=scan and no CTC (got align.schedule={align.schedule}, align.init={align.init}, "
                f"align.topology={align.topology}, align.method={align.method}, align.kernel={align.kernel})"
            )

    @classmethod
    def check_config(cls, config) -> None:
        SCHEDULES[config.align.schedule].check_config(config.align)
        if config.align.topology == "ctc" and not SCHEDULES[config.align.schedule].local_aligner:
            raise ConfigError(
                f"align.topology=ctc trains on the best path through CTC's grid in each step: it needs "
                f"align.schedule=per_step, not {config.align.schedule} (align.schedule=ctc sums over CTC's paths instead)"
            )
        if config.align.topology == "ctc" and (config.align.method != "viterbi" or config.align.kernel != "scan"):
            raise ConfigError(
                "align.topology=ctc needs align.method=viterbi and align.kernel=scan (the kernels with optional rows)"
            )
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
        if k > 1 and not np.any(self.feasible(splits.train.frame_lengths(), splits.train.label_lengths())):
            raise ConfigError(
                f"align.states_per_symbol={k}: every training target is longer than its input once expanded"
            )

    def check_devices(self, num_devices: int) -> list[str]:
        if self.kernel != "pallas":
            return []
        if num_devices > 1:  # XLA cannot split a Triton call over devices: it would gather the batch onto every one
            raise ConfigError(
                f"align.kernel=pallas runs on one device, but the batch is split over {num_devices}: "
                "use align.kernel=scan, or one device (e.g. CUDA_VISIBLE_DEVICES=0)"
            )
        how = (
            "in Pallas' interpreter (exact, slower than the scan; compiled on NVIDIA GPUs only)"
            if use_interpreter(None)
            else "compiled by Triton"
        )
        return [f"align.kernel=pallas on {jax.default_backend()}: the Viterbi and full-sum kernels run {how}"]

    def warnings(self, total_steps: int) -> list[str]:
        if self.warmup_steps < total_steps:
            return []
        return [
            f"align.warmup_steps={self.warmup_steps} >= trainer.steps={total_steps}: this run never leaves its "
            f"initial alignment (align.init={self.init_name}), so align.schedule={self.schedule_name} never realigns"
        ]

    @property
    def num_outputs(self) -> int:
        return self.num_classes * self.states_per_symbol + (self.blank_id is not None)

    def make_model(self, config, feature_dim, rngs):
        model = super().make_model(config, feature_dim, rngs)
        if self.aligner_context is None:
            return model
        aligner = LocalAligner(
            feature_dim, self.num_outputs, context=self.aligner_context, hidden=config.model.hidden, rngs=rngs
        )
        return WithLocalAligner(model, aligner)

    @property
    def stores_alignments(self) -> bool:
        return self.schedule.stored

    def grid(self, batch) -> Grid:
        """The rows of the batch's target-ordered grid (`substate_grid`)."""
        return substate_grid(
            batch["labels"],
            batch["label_paddings"],
            self.states_per_symbol,
            self.optional_symbol,
            self.pause_states,
            self.pause_columns,
        )

    def grid_viterbi(self, log_probs_BxTxC, logit_paddings, grid: Grid) -> Alignment:
        """The best path through the grid: `self.viterbi` on the rows, or with optional blocks
        `graph_viterbi` on `Grid.graph` (its states are the rows)."""
        if grid.optional is None:
            return self.viterbi(log_probs_BxTxC, logit_paddings, *grid.kernel_args())
        found = graph_viterbi(log_probs_BxTxC, logit_paddings, grid.graph(self.pause_probability))
        return Alignment(found.states, grid.columns_of(found.states), found.score, found.feasible)

    def grid_forward(self, log_probs_BxTxC, logit_paddings, grid: Grid):
        """(B,) full-sum log-likelihood over the grid: `self.forward_score`, or `graph_forward` with
        optional blocks."""
        if grid.optional is None:
            return self.forward_score(log_probs_BxTxC, logit_paddings, *grid.kernel_args())
        return graph_forward(log_probs_BxTxC, logit_paddings, grid.graph(self.pause_probability))

    def full_sum_score(self, log_probs_BxTxC, batch):
        """(B,) full-sum log-likelihood of the batch: over its pronunciation graphs where it carries
        them (`batch["graph"]`, a `Graph` per example: `jaxalign.training.pronunciations.
        PronunciationGraphs`, every listed pronunciation of a word a branch), else over its grid."""
        if "graph" in batch:
            return graph_forward(log_probs_BxTxC, batch["logit_paddings"], batch["graph"])
        return self.grid_forward(log_probs_BxTxC, batch["logit_paddings"], self.grid(batch))

    def feasible(self, frame_lengths, label_lengths, skippable=None):
        """(N,) bool, NumPy or JAX alike: the grid's shortest path fits the input. skippable: (N,)
        optional symbols of each target, whose blocks the shortest path leaves out (a target of one
        optional symbol alone takes its block's frames)."""
        if skippable is None or self.optional_symbol is None:
            return super().feasible(frame_lengths, label_lengths)
        needed = (label_lengths - skippable) * self.states_per_symbol
        needed = needed + ((label_lengths > 0) & (needed == 0)) * self.pause_states
        return is_feasible(frame_lengths, needed)

    def skippable(self, labels_L) -> int:
        """How many symbols of one target the path may skip (its optional symbols)."""
        return 0 if self.optional_symbol is None else int(np.sum(np.asarray(labels_L) == self.optional_symbol))

    def frames_needed(self, labels_L):
        needed = (len(labels_L) - self.skippable(labels_L)) * self.states_per_symbol
        return needed if needed > 0 or len(labels_L) == 0 else self.pause_states

    def feasible_targets(self, frame_lengths, labels):
        label_lengths = np.array([len(y) for y in labels], np.int64)
        skippable = np.array([self.skippable(y) for y in labels], np.int64)
        return np.asarray(self.feasible(np.asarray(frame_lengths), label_lengths, skippable))

    def batch_feasible(self, batch):
        """(B,) bool `feasible` of a batch's targets (their optional-symbol rows counted as skippable)."""
        labels, pads = batch["labels"], batch["label_paddings"]
        skippable = None
        if self.optional_symbol is not None:
            skippable = jnp.sum(valid_mask(pads) & (labels == self.optional_symbol), axis=1)
        return self.feasible(lengths(batch["logit_paddings"]), lengths(pads), skippable)

    def flat_start(self, batch) -> Alignment:
        """The uniform initial alignment: equal shares of each sequence's frames for its grid rows.
        With optional blocks only the first and last of them take part (a recording's leading and
        trailing pause); the pauses between words are left for the realignment to find, so the
        silence is not first trained on the middle of words."""
        grid = self.grid(batch)
        if grid.optional is None:
            return uniform_align(batch["logit_paddings"], grid.paddings, grid.rows)
        r_R = jnp.arange(grid.rows.shape[1])
        used_B = lengths(grid.paddings)
        last_label_B = jnp.take_along_axis(grid.label_of, jnp.maximum(used_B - 1, 0)[:, None], axis=1)
        keep_BxR = (r_R[None, :] < used_B[:, None]) & (
            (grid.optional == 0) | (grid.label_of == 0) | (grid.label_of == last_label_B)
        )
        order_BxR = jnp.argsort((~keep_BxR).astype(jnp.int32), axis=1, stable=True)  # kept rows first, in order
        kept_pad = (r_R[None, :] >= jnp.sum(keep_BxR, axis=1)[:, None]).astype(jnp.float32)
        ali = uniform_align(batch["logit_paddings"], kept_pad, jnp.take_along_axis(grid.rows, order_BxR, axis=1))
        positions = jnp.take_along_axis(order_BxR, jnp.maximum(ali.positions, 0), axis=1)
        return ali._replace(positions=jnp.where(ali.positions >= 0, positions, -1).astype(jnp.int32))

    def prior_scale_at(self, step):
        """align.prior_scale at a training step: constant, or with align.prior_steps = n > 0 fading
        linearly to 0 over the n steps after the warm-up; step None: the full scale."""
        if step is None or not self.prior_steps:
            return self.prior_scale
        return self.prior_scale * jnp.clip(1.0 - (step - self.warmup_steps) / self.prior_steps, 0.0, 1.0)

    def align(self, log_probs_BxTxC, batch):
        """The `Alignment` of the batch's grid that realignment trains on. With align.prior_scale = s > 0
        the path search scores log p(c|x) - s log p(c), the batch's mean posterior standing in for the
        prior p(c) (the hybrid HMM's scaled likelihood), so frequent classes do not swallow frames; s is
        `prior_scale_at(batch["step"])` where the batch carries the training step."""
        grid = self.grid(batch)
        if self.prior_scale > 0:
            scale = self.prior_scale_at(batch.get("step"))
            valid_BxT = self.valid_frames(batch)
            mean_C = jnp.sum(jnp.where(valid_BxT[..., None], jnp.exp(log_probs_BxTxC), 0.0), axis=(0, 1)) / jnp.maximum(
                jnp.sum(valid_BxT), 1
            )
            log_probs_BxTxC = log_probs_BxTxC - scale * jnp.log(jnp.maximum(mean_C, 1e-8))
        if self.topology == "ctc":
            rows, row_pad, optional = ctc_grid(grid.rows, grid.paddings, self.blank_id)
            return self.path_search(log_probs_BxTxC, batch["logit_paddings"], rows, row_pad, optional)
        if grid.optional is not None:
            return self.grid_viterbi(log_probs_BxTxC, batch["logit_paddings"], grid)
        return self.path_search(log_probs_BxTxC, batch["logit_paddings"], *grid.kernel_args())

    def path_targets(self, ali):
        """An `align` result -> (grid row of each frame (B, T) for the alignment accuracy, frame
        target (B, T) or None to read the targets off the rows). On CTC's grid the target is the
        path's token (a label or the blank) and a blank frame counts for the label before it."""
        if self.topology == "ctc":
            return label_rows(ali.positions), ali.symbols
        return ali.positions, None

    def valid_frames(self, batch):
        """(B, T) bool: real frames of real (weight > 0) examples."""
        return (batch["logit_paddings"] == 0) & (batch["weights"][:, None] > 0)

    def frame_loss(
        self,
        log_probs_BxTxC,
        batch,
        positions_BxT,
        feasible_B,
        aligner_log_probs=None,
        symbols_BxT=None,
        aligner_graph=None,
    ):
        """Frame cross-entropy on the grid rows `positions` (-1 = no target), or on `symbols_BxT`
        where given (the head's outputs, e.g. a CTC path's blanks), mean over frames; with a local
        aligner, plus its own cross-entropy on the same targets, or with `aligner_graph` (the
        batch's pronunciation graphs) its full-sum loss over them."""
        grid = self.grid(batch)
        if symbols_BxT is None:
            symbols_BxT = grid.columns_of(positions_BxT)
        valid_BxT = self.valid_frames(batch)
        weights_BxT = (valid_BxT & feasible_B[:, None]).astype(jnp.float32)
        total, count = frame_cross_entropy(log_probs_BxTxC, symbols_BxT, weights_BxT)
        if aligner_log_probs is not None and aligner_graph is not None:
            score_B = graph_forward(aligner_log_probs, batch["logit_paddings"], aligner_graph)
            use_B = feasible_B & (batch["weights"] > 0) & jnp.isfinite(score_B)
            total -= jnp.sum(jnp.where(use_B, score_B * batch["weights"], 0.0))
        elif aligner_log_probs is not None:
            total += frame_cross_entropy(aligner_log_probs, symbols_BxT, weights_BxT)[0]
        truth_BxT = batch["alignments"]
        known_BxT = valid_BxT & (truth_BxT >= 0) & feasible_B[:, None]
        hits = jnp.sum(known_BxT & (grid.labels_of(positions_BxT) == truth_BxT))
        metrics = {
            "infeasible": jnp.sum(~feasible_B & (batch["weights"] > 0)),
            "train_alignment_accuracy": hits / jnp.maximum(jnp.sum(known_BxT), 1),
        }
        return total / jnp.maximum(count, 1.0), metrics

    def sequence_loss(self, log_likelihood_B, batch):
        """-sum of per-sequence log-likelihoods (CTC, full-sum) over real feasible sequences, divided
        by their frames: the same scale as the frame loss. The alignment accuracy does not apply
        (NaN: left out of the log)."""
        feasible_B = self.batch_feasible(batch)
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
        grid = self.grid(batch)
        per_seq_B = ctc_divergence(logits_BxTxC, batch["logit_paddings"], grid.rows, grid.paddings, self.blank_id)
        return self.sequence_loss(-per_seq_B, batch)

    def loss(self, model, batch, step, dropout_key):
        """With a local aligner, its log-probs (B, T, C') go to the schedule beside the model's."""
        logits = model(batch["features"], batch["logit_paddings"], dropout_key=dropout_key).astype(jnp.float32)
        aligner_log_probs = None
        if self.aligner_context is not None:
            aligner_logits = model.aligner_logits(batch["features"], batch["logit_paddings"]).astype(jnp.float32)
            aligner_log_probs = jax.nn.log_softmax(aligner_logits, axis=-1)
        return self.divergence(jax.nn.log_softmax(logits, axis=-1), logits, batch, step, aligner_log_probs)

    def divergence(self, log_probs_BxTxC, logits_BxTxC, batch, step, aligner_log_probs=None):
        batch = {**batch, "step": step}  # for `align`'s prior scale

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
        out.update(self.decoder.decode_labels(self, log_probs, pad))
        grid = self.grid(batch)
        symbol_log_probs = jax.nn.log_softmax(symbol_logits, axis=-1)
        ali = self.grid_viterbi(symbol_log_probs, pad, grid)
        out["positions"] = grid.labels_of(ali.positions)
        if self.blank_id is not None:  # a CTC head: its own best path too, through CTC's grid with the blank
            rows, row_pad, optional = ctc_grid(grid.rows, grid.paddings, self.blank_id)
            path = viterbi_align(log_probs, pad, rows, row_pad, optional)  # = ctc_forced_align, with its rows
            rows_BxT = label_rows(path.positions)
            out["ctc_positions"] = jnp.where(rows_BxT >= 0, rows_BxT // k, -1)
        return out

    def symbol_log_posteriors(self, log_probs_TxC):
        """Sub-state columns summed per symbol, the CTC blank left out, renormalised over symbols."""
        n, k, c = len(log_probs_TxC), self.states_per_symbol, self.num_classes
        lp = np.asarray(log_probs_TxC, np.float64)[:, : c * k].reshape(n, c, k)
        per_symbol = np.logaddexp.reduce(lp, axis=2)
        return per_symbol - np.logaddexp.reduce(per_symbol, axis=1, keepdims=True)

    def align_long(self, log_probs_TxC, labels_L):
        """`long_viterbi` over this target's grid (its sub-state rows and optional blocks), on the
        sub-state columns renormalised (the blank left out, as in `decode`)."""
        from jaxalign.align.long import long_viterbi

        k, c = self.states_per_symbol, self.num_classes
        symbol_lp = np.asarray(log_probs_TxC, np.float32)[:, : c * k]
        symbol_lp = symbol_lp - np.logaddexp.reduce(symbol_lp, axis=1, keepdims=True)
        labels_L = np.asarray(labels_L)
        rows, label_of, optional = target_grid(
            labels_L, k, self.optional_symbol, pause_states=self.pause_states, pause_columns=self.pause_columns
        )
        found = long_viterbi(
            symbol_lp,
            rows,
            labels_L,
            k,
            label_of_L=label_of,
            optional_L=optional,
            pause_probability=self.pause_probability,
        )
        return found._replace(positions=label_of[found.positions].astype(np.int32))

    def beam_decode(self, log_probs_TxC, beam_width):
        return self.decoder.beam_decode(self, log_probs_TxC, beam_width)

    def class_probabilities(self, log_probs_TxC, vocab):
        """Sub-states summed per symbol; the CTC blank, where there is one, as a last row."""
        probs_TxC = np.exp(np.asarray(log_probs_TxC, np.float64))
        n, k, c = len(probs_TxC), self.states_per_symbol, self.num_classes
        table = probs_TxC[:, : c * k].reshape(n, c, k).sum(axis=2)
        if self.blank_id is None:
            return table, list(vocab)
        return np.concatenate([table, probs_TxC[:, self.blank_id : self.blank_id + 1]], axis=1), [*vocab, "blank"]
