"""Chooses the data source named by the `data` config group."""

import dataclasses

from jaxalign.data.arrays import load_arrays
from jaxalign.data.dataset import DataSplits
from jaxalign.data.digit_strips import DigitStripsSpec, load_digit_strips
from jaxalign.data.spoken_words import SpokenWordsSpec, load_spoken_words
from jaxalign.data.synthetic import SyntheticSpec, load_synthetic
from jaxalign.data.timit import TimitSpec, load_timit


def _spec(cls, cfg):
    return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)})


def load_splits(data_cfg) -> DataSplits:
    """data_cfg: one of the `data=` configs (its `name` picks the loader)."""
    name = data_cfg.name
    if name == "digit_strips":
        return load_digit_strips(_spec(DigitStripsSpec, data_cfg))
    if name == "synthetic":
        return load_synthetic(_spec(SyntheticSpec, data_cfg))
    if name == "timit":
        return load_timit(_spec(TimitSpec, data_cfg))
    if name == "spoken_words":
        return load_spoken_words(_spec(SpokenWordsSpec, data_cfg))
    if name == "arrays":
        return load_arrays(
            data_cfg.path,
            valid_fraction=data_cfg.valid_fraction,
            test_fraction=data_cfg.test_fraction,
            seed=data_cfg.seed,
        )
    raise ValueError(f"data.name={name!r} is not a known data source")
