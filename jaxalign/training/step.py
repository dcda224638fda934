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

from jaxalign.optim import make_optimizer, peak_learning_rate
from jaxalign.setups import Setup


class TrainState(NamedTuple):
    params: nnx.State
    opt_state: optax.OptState
    step: jax.Array  # int32 scalar


def init_train_state(config, setup: Setup, feature_dim: int):
    """(graphdef, optimizer, TrainState at step 0) of the model and optimizer a config describes: the
    Trainer starts from it, and `jaxalign.load_run` uses it as the template a checkpoint restores into."""
    model = setup.make_model(config, feature_dim, nnx.Rngs(config.seed))
    graphdef, params = nnx.split(model)
    optimizer = make_optimizer(config.optim, config.trainer.steps)
    return graphdef, optimizer, TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))


def forward(graphdef, params, batch, dropout_key=None):
    """(B, T, C') float32 logits of the model for a batch."""
    model = nnx.merge(graphdef, params)
    return model(batch["features"], batch["logit_paddings"], dropout_key=dropout_key).astype(jnp.float32)


def loss_and_metrics(params, graphdef, batch, key, setup: Setup, step):
    """Scalar training loss and a dict of per-batch metrics."""
    return setup.loss(nnx.merge(graphdef, params), batch, step, key)


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
    """The jitted `evaluate(params, batch) -> dict` of decoded outputs: `Setup.predict` of the model
    (by default `Setup.decode` of its logits)."""

    def evaluate(params, batch):
        return setup.predict(nnx.merge(graphdef, params), batch)

    return jax.jit(evaluate)
