"""Configs for tests: the shipped defaults (composed by Hydra from jaxalign.conf) plus explicit
overrides, so every test runs what a user gets except what it names. Also what only tests use of the
data code: a SPHERE writer for TIMIT fixtures and the spoken-words cache's metadata."""

import dataclasses
import json
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_module

from jaxalign.config import Config, register_configs, to_config
from jaxalign.data.spoken_words import SpokenWordsSpec, cache_path

register_configs()

# Seconds-long runs on a 2-core CPU: small synthetic data and a small net.
TINY = {
    "data": "synthetic",
    "data.num_train": 64, "data.num_valid": 16, "data.num_test": 16, "data.num_classes": 4, "data.feature_dim": 6,
    "data.max_symbols": 3, "data.min_duration": 2, "data.max_duration": 4, "data.noise": 0.3,
    "model": "gru", "model.hidden": 16,
    "trainer.steps": 12, "trainer.batch_size": 8, "trainer.eval_every": 6, "trainer.num_buckets": 1,
    "trainer.checkpoint_every": 6, "trainer.progress": False,
    "align.warmup_steps": 4,
}  # fmt: skip
SETUP_MODEL = {
    "one_to_one": "mlp",
    "time_sync": "bigru",
    "many_to_one": "gru",
    "order_sync": "gru",
    "seq2seq": "gru",
    "one_to_many": "mlp",
}


def compose_config(overrides: dict | None = None) -> Config:
    """The shipped config with Hydra overrides given as {key: value} (values in JSON)."""
    args = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in (overrides or {}).items()]
    with initialize_config_module("jaxalign.conf", version_base=None):
        return to_config(compose(config_name="config", overrides=args))


def tiny_config(setup="order_sync", model=None, data=None, align=None, trainer=None, optim=None, seed=0) -> Config:
    """TINY plus per-section overrides, e.g. tiny_config(align={"schedule": "ctc"})."""
    overrides = {**TINY, "setup": setup, "model": SETUP_MODEL[setup], "seed": seed}
    if setup == "many_to_one":
        overrides["data.max_symbols"] = 1
    for section, values in (("model", model), ("data", data), ("align", align), ("trainer", trainer), ("optim", optim)):
        overrides.update({f"{section}.{k}": v for k, v in (values or {}).items()})
    return compose_config(overrides)


def replace(config: Config, **sections) -> Config:
    """config with some fields of its sections replaced, e.g. replace(c, trainer={"steps": 5})."""
    return dataclasses.replace(config, **{k: dataclasses.replace(getattr(config, k), **v) for k, v in sections.items()})


def write_sphere(path, samples_int16: np.ndarray, sample_rate: int = 16000) -> None:
    """Writes 16-bit little-endian PCM in NIST SPHERE format, as `timit.read_sphere` reads it (fixtures)."""
    fields = (
        f"database_id -s5 TIMIT\nsample_count -i {len(samples_int16)}\nsample_rate -i {sample_rate}\n"
        f"channel_count -i 1\nsample_n_bytes -i 2\nsample_byte_format -s2 01\nsample_coding -s3 pcm\nend_head\n"
    )
    header = f"NIST_1A\n   1024\n{fields}".encode("ascii").ljust(1024, b" ")
    Path(path).write_bytes(header + np.asarray(samples_int16, "<i2").tobytes())


def metadata_for(spec: SpokenWordsSpec) -> dict:
    """The cached `.json` of `spec`: per-utterance split, word, voice, rate and pitch, in file order."""
    return json.loads(cache_path(spec).with_suffix(".json").read_text())
