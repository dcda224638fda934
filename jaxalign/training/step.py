"""The jitted train step and evaluation forward pass.

`train_step(state, batch, key) -> (state, metrics)` is one pure function: forward scan ->
log-softmax -> alignment (per_step: Viterbi on the stop-gradient log-probs, inside the same program)
-> weighted frame cross-entropy -> gradients -> optax update. It compiles once per bucket shape;
the learning rate lives in the optimizer state (optax.inject_hyperparams), so it is traced.
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxalign.align import greedy_decode, masked_align, uniform_align, viterbi_align
from jaxalign.align.types import is_feasible, lengths
from jaxalign.decoding import substate_greedy_decode, substate_viterbi_decode
from jaxalign.setups import ctc_divergence, frame_cross_entropy, many_to_one_weights, substate_labels


@dataclasses.dataclass(frozen=True)
class StepSpec:
    """Everything that decides the step's structure (static under jit)."""

    setup: str  # one_to_one | time_sync | many_to_one | order_sync
    num_classes: int  # symbol classes C
    schedule: str = "per_step"  # per_step | per_epoch | realign_list | ctc
    init: str = "uniform"  # uniform | ctc_warmup
    method: str = "viterbi"  # viterbi | masked
    states_per_symbol: int = 1
    warmup_steps: int = 0
    weighting: str = "uniform"
    decay: float = 0.2

    @property
    def uses_ctc(self) -> bool:
        return self.setup == "order_sync" and (self.schedule == "ctc" or self.init == "ctc_warmup")

    @property
    def blank_id(self) -> int | None:
        return self.num_classes * self.states_per_symbol if self.uses_ctc else None

    @property
    def num_outputs(self) -> int:
        k = self.states_per_symbol if self.setup == "order_sync" else 1
        return self.num_classes * k + (1 if self.uses_ctc else 0)

    @property
    def fixed_alignments(self) -> bool:
        """per_epoch / realign_list: the batch carries `fixed_positions` from the host store."""
        return self.setup == "order_sync" and self.schedule in ("per_epoch", "realign_list")


class TrainState(NamedTuple):
    params: nnx.State
    opt_state: optax.OptState
    step: jax.Array  # int32 scalar


def make_optimizer(name: str, learning_rate: float, *, total_steps: int = 1, schedule: str = "constant",
                   weight_decay=0.0, momentum=0.9, clip_norm=1.0):
    """optax chain whose learning rate is a traced hyperparameter (the last link, `scale`), so a sweep
    over it reuses the compiled step; `schedule` = constant | cosine (decay to 5% over total_steps)."""
    links = [optax.clip_by_global_norm(clip_norm)] if clip_norm > 0 else []
    links += {
        "adam": [optax.scale_by_adam()],
        "adamw": [optax.scale_by_adam(), optax.add_decayed_weights(weight_decay)],
        "sgd": [optax.trace(decay=momentum)],
    }[name]
    if schedule == "cosine":
        links.append(optax.scale_by_schedule(optax.cosine_decay_schedule(1.0, max(total_steps, 1), alpha=0.05)))
    links.append(optax.inject_hyperparams(optax.scale)(step_size=-learning_rate))
    return optax.chain(*links)


def set_learning_rate(opt_state, learning_rate: float):
    """The same optimizer state with a new (peak) learning rate; no recompilation follows."""
    *rest, injected = opt_state
    hyper = dict(injected.hyperparams, step_size=jnp.asarray(-learning_rate, jnp.float32))
    return (*rest, injected._replace(hyperparams=hyper))


def _grid(batch, spec: StepSpec):
    return substate_labels(batch["labels"], batch["label_paddings"], spec.states_per_symbol)


def _order_sync_targets(log_probs, batch, spec: StepSpec, step):
    """(positions (B, T), symbols (B, T), feasible (B,)) of the current alignment."""
    labels, label_pad = _grid(batch, spec)
    pad = batch["logit_paddings"]
    if spec.fixed_alignments:
        positions = batch["fixed_positions"]
        symbols = jnp.where(positions >= 0, jnp.take_along_axis(labels, jnp.maximum(positions, 0), axis=1), -1)
        return positions, symbols, is_feasible(lengths(pad), lengths(label_pad))
    aligner = viterbi_align if spec.method == "viterbi" else masked_align

    def realigned():
        ali = aligner(jax.lax.stop_gradient(log_probs), pad, labels, label_pad)
        return ali.positions, ali.symbols, ali.feasible

    def flat_start():
        ali = uniform_align(pad, label_pad, labels)
        return ali.positions, ali.symbols, ali.feasible

    if spec.init == "uniform" and spec.warmup_steps > 0:
        return jax.lax.cond(step < spec.warmup_steps, flat_start, realigned)
    return realigned()


def loss_and_metrics(params, graphdef, batch, key, spec: StepSpec, step, *, train: bool):
    """Scalar loss and a dict of per-batch metrics."""
    model = nnx.merge(graphdef, params)
    logits = model(batch["features"], batch["logit_paddings"], dropout_key=key if train else None)
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    valid = (batch["logit_paddings"] == 0) & (batch["weights"][:, None] > 0)
    metrics = {}
    if spec.setup in ("one_to_one", "time_sync"):
        total, count = frame_cross_entropy(log_probs, batch["frame_labels"], valid.astype(jnp.float32))
        return total / jnp.maximum(count, 1.0), metrics
    if spec.setup == "many_to_one":
        w = many_to_one_weights(batch["logit_paddings"], spec.weighting, spec.decay) * batch["weights"][:, None]
        targets = jnp.broadcast_to(batch["labels"][:, :1], valid.shape)
        total, _ = frame_cross_entropy(log_probs, targets, w)
        return total / jnp.maximum(jnp.sum(batch["weights"]), 1.0), metrics

    frames_B = jnp.sum(valid, axis=1).astype(jnp.float32)

    def ctc_loss():
        labels, label_pad = _grid(batch, spec)
        per_seq = ctc_divergence(logits, batch["logit_paddings"], labels, label_pad, spec.blank_id)
        return jnp.sum(per_seq * batch["weights"]) / jnp.maximum(jnp.sum(frames_B), 1.0)

    if spec.schedule == "ctc":
        return ctc_loss(), metrics
    positions, symbols, feasible = _order_sync_targets(log_probs, batch, spec, step)
    weights = (valid & feasible[:, None]).astype(jnp.float32)
    total, count = frame_cross_entropy(log_probs, symbols, weights)
    metrics["infeasible"] = jnp.sum((~feasible) & (batch["weights"] > 0))
    truth = batch["alignments"]
    known = valid & (truth >= 0) & feasible[:, None]
    metrics["train_alignment_accuracy"] = jnp.sum(known & (positions // spec.states_per_symbol == truth)) / jnp.maximum(jnp.sum(known), 1)
    ce = total / jnp.maximum(count, 1.0)
    if spec.init == "ctc_warmup" and spec.warmup_steps > 0:
        return jax.lax.cond(step < spec.warmup_steps, ctc_loss, lambda: ce), metrics
    return ce, metrics


def make_train_step(graphdef, optimizer, spec: StepSpec):
    """Returns the jitted `train_step(state, batch, key) -> (state, metrics)` (state is donated)."""

    def train_step(state: TrainState, batch, key):
        step_key = jax.random.fold_in(key, state.step)
        grad_fn = jax.value_and_grad(loss_and_metrics, has_aux=True)
        (loss, metrics), grads = grad_fn(state.params, graphdef, batch, step_key, spec, state.step, train=True)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {**metrics, "loss": loss, "grad_norm": optax.tree.norm(grads), "learning_rate": -opt_state[-1].hyperparams["step_size"]}
        return TrainState(params, opt_state, state.step + 1), metrics

    return jax.jit(train_step, donate_argnames=("state",))


def make_eval_fn(graphdef, spec: StepSpec):
    """Returns jitted `evaluate(params, batch) -> dict` of decoded outputs for host-side metrics.

    Keys: `log_probs` (B, T, C'); `labels`/`label_paddings` decoded symbol sequences (CTC: best
    path; otherwise the sub-state Viterbi decode, with the sub-state greedy one in `greedy_labels`);
    `frame_symbols`
    (B, T) argmax symbol per frame; for order_sync `positions` (B, T) the forced Viterbi alignment of
    the true labels in symbol rows (for CTC nets: over the non-blank classes, renormalised).
    """
    k = spec.states_per_symbol if spec.setup == "order_sync" else 1

    def evaluate(params, batch):
        model = nnx.merge(graphdef, params)
        logits = model(batch["features"], batch["logit_paddings"]).astype(jnp.float32)
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        pad = batch["logit_paddings"]
        out = {"log_probs": log_probs}
        symbol_logits = logits[..., : spec.num_classes * k]
        out["frame_symbols"] = jnp.argmax(symbol_logits, axis=-1) // k
        if spec.schedule == "ctc" and spec.setup == "order_sync":
            out["labels"], out["label_paddings"] = greedy_decode(log_probs, pad, blank_id=spec.blank_id)
        else:
            out["labels"], out["label_paddings"] = substate_viterbi_decode(log_probs, pad, k=k, num_symbols=spec.num_classes)
            out["greedy_labels"], out["greedy_label_paddings"] = substate_greedy_decode(log_probs, pad, k=k, blank_id=spec.blank_id)
        if spec.setup == "order_sync":
            labels, label_pad = _grid(batch, spec)
            ali = viterbi_align(jax.nn.log_softmax(symbol_logits, axis=-1), pad, labels, label_pad)
            out["positions"] = jnp.where(ali.positions >= 0, ali.positions // k, -1)
        return out

    return jax.jit(evaluate)
