"""Synthetic sequences with a known answer and a difficulty knob.

Each of C symbols has a random prototype vector; a target is a random symbol sequence (repeats
allowed), each symbol lasts a random number of frames and every frame is its prototype plus
Gaussian noise. `noise` sets the difficulty; sizes range from tiny (tests) to large (scaling).
"""

import dataclasses

import numpy as np

from jaxalign.data.dataset import DataSplits, SequenceData, segments_to_alignment


@dataclasses.dataclass
class SyntheticSpec:
    num_train: int = 2000
    num_valid: int = 200
    num_test: int = 200
    num_classes: int = 8
    feature_dim: int = 16
    min_symbols: int = 1
    max_symbols: int = 6
    min_duration: int = 2
    max_duration: int = 8
    noise: float = 0.5
    seed: int = 0


def _make(count, prototypes, spec: SyntheticSpec, rng) -> SequenceData:
    features, labels, alignments = [], [], []
    for _ in range(count):
        n = int(rng.integers(spec.min_symbols, spec.max_symbols + 1))
        symbols = rng.integers(0, spec.num_classes, size=n).astype(np.int32)
        durations = rng.integers(spec.min_duration, spec.max_duration + 1, size=n)
        rows = segments_to_alignment(durations)
        x = prototypes[symbols[rows]] + spec.noise * rng.normal(size=(len(rows), spec.feature_dim))
        features.append(x.astype(np.float32))
        labels.append(symbols)
        alignments.append(rows)
    return SequenceData(features, labels, alignments, vocab=[f"s{c}" for c in range(spec.num_classes)])


def load_synthetic(spec: SyntheticSpec | None = None) -> DataSplits:
    spec = spec or SyntheticSpec()
    if not 1 <= spec.min_symbols <= spec.max_symbols:
        raise ValueError(
            f"data.min_symbols/max_symbols must satisfy 1 <= min <= max, got {spec.min_symbols}, {spec.max_symbols}"
        )
    if not 1 <= spec.min_duration <= spec.max_duration:
        raise ValueError(
            f"data.min_duration/max_duration must satisfy 1 <= min <= max, got {spec.min_duration}, {spec.max_duration}"
        )
    rng = np.random.default_rng(spec.seed)
    prototypes = rng.normal(size=(spec.num_classes, spec.feature_dim))
    return DataSplits(
        _make(spec.num_train, prototypes, spec, rng),
        _make(spec.num_valid, prototypes, spec, rng),
        _make(spec.num_test, prototypes, spec, rng),
    )
