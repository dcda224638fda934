"""The optimizer a config's `optim` section describes: optax chains, whose peak learning rate is a
traced hyperparameter, so a sweep over it reuses the compiled train step."""

import optax

# optim.name -> the optax links between gradient clipping and the learning rate.
OPTIMIZERS = {
    "adam": lambda optim: [optax.scale_by_adam()],
    "adamw": lambda optim: [optax.scale_by_adam(), optax.add_decayed_weights(optim.weight_decay)],
    "sgd": lambda optim: [optax.trace(decay=optim.momentum)],
}
# optim.schedule -> step -> factor on the peak learning rate, over `total_steps`.
LR_SCHEDULES = {
    "constant": lambda total_steps: optax.constant_schedule(1.0),
    "cosine": lambda total_steps: optax.cosine_decay_schedule(
        1.0, max(total_steps, 1), alpha=0.05
    ),  # to 5% of the peak
}


def lr_multiplier(schedule: str, total_steps: int):
    """step -> factor on the peak learning rate (`LR_SCHEDULES`)."""
    return LR_SCHEDULES[schedule](total_steps)


def make_optimizer(optim, total_steps: int) -> optax.GradientTransformation:
    """optax chain for an `OptimConfig`; the peak learning rate is the last link's traced `step_size`."""
    links = [optax.clip_by_global_norm(optim.clip_norm)] if optim.clip_norm > 0 else []
    links += OPTIMIZERS[optim.name](optim)
    links.append(optax.scale_by_schedule(lr_multiplier(optim.schedule, total_steps)))
    links.append(optax.inject_hyperparams(optax.scale)(step_size=-optim.learning_rate))
    return optax.chain(*links)


def peak_learning_rate(opt_state):
    """The peak learning rate an optimizer state of `make_optimizer` holds."""
    return -opt_state[-1].hyperparams["step_size"]
