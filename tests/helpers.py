"""Tiny configs for end-to-end tests (seconds each on a 2-core CPU)."""

import dataclasses

from jaxalign.config import AlignConfig, Config, ModelConfig, OptimConfig, SetupConfig, SyntheticConfig, TrainerConfig


def tiny_config(setup="order_sync", model=None, data=None, align=None, trainer=None, optim=None, seed=0) -> Config:
    data_kw = dict(num_train=64, num_valid=16, num_test=16, num_classes=4, feature_dim=6, max_symbols=3, min_duration=2, max_duration=4, noise=0.3)
    if setup == "many_to_one":
        data_kw.update(max_symbols=1)
    data_kw.update(data or {})
    model_kw = dict(kind="mlp" if setup == "one_to_one" else "gru", hidden=16, bidirectional=setup == "time_sync")
    model_kw.update(model or {})
    trainer_kw = dict(steps=12, batch_size=8, eval_every=6, num_buckets=1, checkpoint_every=6, progress=False)
    trainer_kw.update(trainer or {})
    align_kw = dict(warmup_steps=4)
    align_kw.update(align or {})
    return Config(
        setup=SetupConfig(name=setup),
        model=ModelConfig(**model_kw),
        data=SyntheticConfig(**data_kw),
        optim=OptimConfig(**(optim or {})),
        align=AlignConfig(**align_kw),
        trainer=TrainerConfig(**trainer_kw),
        seed=seed,
    )


def replace(config: Config, **sections) -> Config:
    """config with some fields of its sections replaced, e.g. replace(c, trainer={"steps": 5})."""
    return dataclasses.replace(config, **{k: dataclasses.replace(getattr(config, k), **v) for k, v in sections.items()})
