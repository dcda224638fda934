"""The jitted train step and evaluation forward pass.

`train_step(state, batch, key) -> (state, metrics)` is one pure function: forward scan ->
log-softmax -> the setup's divergence (for order_sync with per-step realignment: Viterbi on the
stop-gradient log-probs, inside the same program) -> gradients -> optax update. It compiles once
per bucket shape; the peak learning rate lives in the optimizer state (optax.inject_hyperparams),
so it is traced and a sweep over it reuses the compiled step.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxalign.models import SequenceModel
from jaxalign.models.local import LocalAligner, WithLocalAligner
from jaxalign.setups import Setup


class TrainState(NamedTuple):
    params: nnx.State
    opt_state: optax.OptState
    step: jax.Array  # int32 scalar


def lr_multiplier(schedule: str, total_steps: int):
    """step -> factor on the peak learning rate: constant 1, or cosine decay to 5% over total_steps."""
    if schedule == "cosine":
        return optax.cosine_decay_schedule(1.0, max(total_steps, 1), alpha=0.05)
    return optax.constant_schedule(1.0)


def make_optimizer(optim, total_steps: int) -> optax.GradientTransformation:
    """optax chain for an `OptimConfig`, whose peak learning rate is a traced hyperparameter (the
    last link, `scale`), so a sweep over it reuses the compiled step."""
    links = [optax.clip_by_global_norm(optim.clip_norm)] if optim.clip_norm > 0 else []
    links += {
        "adam": [optax.scale_by_adam()],
        "adamw": [optax.scale_by_adam(), optax.add_decayed_weights(optim.weight_decay)],
        "sgd": [optax.trace(decay=optim.momentum)],
    }[optim.name]
    links.append(optax.scale_by_schedule(lr_multiplier(optim.schedule, total_steps)))
    links.append(optax.inject_hyperparams(optax.scale)(step_size=-optim.learning_rate))
    return optax.chain(*links)


def init_train_state(config, setup: Setup, feature_dim: int):
    """(graphdef, optimizer, TrainState at step 0) of the model and optimizer a config describes: the
    Trainer starts from it, and `jaxalign.load_run` uses it as the template a checkpoint restores into."""
    m = config.model
    rngs = nnx.Rngs(config.seed)
    model = SequenceModel(
        feature_dim,
        setup.num_outputs,
        kind=m.kind,
        hidden=m.hidden,
        num_layers=m.num_layers,
        bidirectional=m.bidirectional,
        dropout=m.dropout,
        unroll=m.unroll,
        compute_dtype=m.compute_dtype,
        rngs=rngs,
    )
    if setup.aligner_context is not None:
        aligner = LocalAligner(
            feature_dim, setup.num_outputs, context=setup.aligner_context, hidden=m.hidden, rngs=rngs
        )
        model = WithLocalAligner(model, aligner)
    graphdef, params = nnx.split(model)
    optimizer = make_optimizer(config.optim, config.trainer.steps)
    return graphdef, optimizer, TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))


def peak_learning_rate(opt_state) -> jax.Array:
    return -opt_state[-1].hyperparams["step_size"]


def set_learning_rate(opt_state, learning_rate: float):
    """The same optimizer state with a new peak learning rate; no recompilation follows."""
    *rest, injected = opt_state
    hyper = dict(injected.hyperparams, step_size=jnp.asarray(-learning_rate, jnp.float32))
    return (*rest, injected._replace(hyperparams=hyper))


def forward(graphdef, params, batch, dropout_key=None):
    """(B, T, C') float32 logits of the model for a batch."""
    model = nnx.merge(graphdef, params)
    return model(batch["features"], batch["logit_paddings"], dropout_key=dropout_key).astype(jnp.float32)


def loss_and_metrics(params, graphdef, batch, key, setup: Setup, step):
    """Scalar training loss and a dict of per-batch metrics."""
    model = nnx.merge(graphdef, params)
    logits = model(batch["features"], batch["logit_paddings"], dropout_key=key).astype(jnp.float32)
    aligner_log_probs = None
    if isinstance(model, WithLocalAligner):
        aligner_logits = model.aligner_logits(batch["features"], batch["logit_paddings"]).astype(jnp.float32)
        aligner_log_probs = jax.nn.log_softmax(aligner_logits, axis=-1)
    return setup.loss(jax.nn.log_softmax(logits, axis=-1), logits, batch, step, aligner_log_probs=aligner_log_probs)


def make_train_step(graphdef, optimizer, setup: Setup, lr_schedule):
    """The jitted `train_step(state, batch, key) -> (state, metrics)` (state is donated).

    `lr_schedule(step)` is the factor on the peak rate, so the logged `learning_rate` is the value
    the update used at that step.
    """

    def train_step(state: TrainState, batch, key):
        step_key = jax.random.fold_in(key, state.step)
        grad_fn = jax.value_and_grad(loss_and_metrics, has_aux=True)
        (loss, metrics), grads = grad_fn(state.params, graphdef, batch, step_key, setup, state.step)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        learning_rate = peak_learning_rate(state.opt_state) * lr_schedule(state.step)
        metrics = {**metrics, "loss": loss, "grad_norm": optax.tree.norm(grads), "learning_rate": learning_rate}
        return TrainState(params, opt_state, state.step + 1), metrics

    return jax.jit(train_step, donate_argnames=("state",))


def make_eval_fn(graphdef, setup: Setup):
    """The jitted `evaluate(params, batch) -> dict` of decoded outputs (keys: `Setup.decode`)."""

    def evaluate(params, batch):
        return setup.decode(forward(graphdef, params, batch), batch)

    return jax.jit(evaluate)
