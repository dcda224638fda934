"""Chooses the data source named by the `data` config group."""

import dataclasses

import numpy as np

from jaxalign.data.arrays import load_arrays
from jaxalign.data.corpus import CorpusSpec, load_corpus_splits
from jaxalign.data.dataset import DataSplits, SequenceData
from jaxalign.data.digit_strips import DigitStripsSpec, load_digit_strips
from jaxalign.data.spoken_words import SpokenWordsSpec, load_spoken_words
from jaxalign.data.synthetic import SyntheticSpec, load_synthetic
from jaxalign.data.timit import TimitSpec, load_timit


def spec_from_config(cls, cfg):
    """The data source's spec dataclass `cls` filled from its `data=` config (extra keys such as name left out)."""
    return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)})


TARGET_ORDERS = ("as_written", "reversed")  # data.target_order


def reverse_targets(data: SequenceData) -> SequenceData:
    """Each target last symbol first; a true alignment's row r of an L-symbol target becomes L-1-r,
    so it still names the frame's symbol within the (reversed) target."""
    labels = [y[::-1].copy() for y in data.labels]
    alignments = None
    if data.alignments is not None:
        alignments = [
            np.where(a >= 0, len(y) - 1 - a, a).astype(np.int32) for a, y in zip(data.alignments, data.labels)
        ]
    return SequenceData(data.features, labels, alignments, data.vocab, data.optional_symbol, data.front_end, data.names)


def load_splits(data_cfg) -> DataSplits:
    """data_cfg: one of the `data=` configs (its `name` picks the loader; `target_order`, where
    given, `reversed`: every split's targets in reverse order)."""
    splits = _load(data_cfg)
    if getattr(data_cfg, "target_order", "as_written") == "reversed":
        splits = DataSplits(*(reverse_targets(d) for d in (splits.train, splits.valid, splits.test)), splits.record)
    return splits


def _load(data_cfg) -> DataSplits:
    name = data_cfg.name
    if name == "digit_strips":
        return load_digit_strips(spec_from_config(DigitStripsSpec, data_cfg))
    if name == "synthetic":
        return load_synthetic(spec_from_config(SyntheticSpec, data_cfg))
    if name == "timit":
        return load_timit(spec_from_config(TimitSpec, data_cfg))
    if name == "spoken_words":
        return load_spoken_words(spec_from_config(SpokenWordsSpec, data_cfg))
    if name == "corpus":
        return load_corpus_splits(spec_from_config(CorpusSpec, data_cfg))
    if name == "arrays":
        return load_arrays(
            data_cfg.path,
            valid_fraction=data_cfg.valid_fraction,
            test_fraction=data_cfg.test_fraction,
            seed=data_cfg.seed,
        )
    raise ValueError(f"data.name={name!r} is not a known data source")
