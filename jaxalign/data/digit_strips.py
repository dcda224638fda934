"""Handwritten digit strips from scikit-learn's bundled 8x8 digits (no download).

A strip is 1..K digit images laid side by side, each resampled horizontally to a random width, with
optional blank gap columns and pixel noise. A frame is one column (8 features). The true
segmentation is kept: frame t belongs to target row `alignment[t]` (gap columns go to the nearer
digit: the first half to the digit before, the rest to the digit after).
"""

import dataclasses

import numpy as np
from sklearn.datasets import load_digits

from jaxalign.data.dataset import DataSplits, SequenceData, seeded_split


@dataclasses.dataclass
class DigitStripsSpec:
    num_train: int = 3000
    num_valid: int = 300
    num_test: int = 500
    min_digits: int = 1
    max_digits: int = 5
    min_width: int = 4  # columns per digit after resampling
    max_width: int = 12
    max_gap: int = 0  # blank columns between digits: 0..max_gap
    noise: float = 0.05  # std of Gaussian pixel noise (pixels are in [0, 1])
    test_image_fraction: float = 0.25  # source images reserved for valid/test strips
    seed: int = 0


def resample_columns(image_8x8: np.ndarray, width: int) -> np.ndarray:
    """(8, 8) image -> (width, 8) frames: linear interpolation along the horizontal axis."""
    src = np.linspace(0.0, 7.0, width)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, 7)
    frac = (src - lo)[:, None]
    cols = image_8x8.T  # (8 columns, 8 rows)
    return (1 - frac) * cols[lo] + frac * cols[hi]


def make_strips(images, targets, count, spec: DigitStripsSpec, rng) -> SequenceData:
    features, labels, alignments = [], [], []
    for _ in range(count):
        k = int(rng.integers(spec.min_digits, spec.max_digits + 1))
        picks = rng.integers(0, len(images), size=k)
        widths = rng.integers(spec.min_width, spec.max_width + 1, size=k)
        gaps = rng.integers(0, spec.max_gap + 1, size=k - 1) if spec.max_gap else np.zeros(k - 1, int)
        frames, rows = [], []
        for j, (p, w) in enumerate(zip(picks, widths)):
            if j > 0 and gaps[j - 1]:
                g = int(gaps[j - 1])
                frames.append(np.zeros((g, 8)))
                rows += [j - 1] * (g - g // 2) + [j] * (g // 2)
            frames.append(resample_columns(images[p], int(w)))
            rows += [j] * int(w)
        x = np.concatenate(frames) + spec.noise * rng.normal(size=(len(rows), 8))
        features.append(x.astype(np.float32))
        labels.append(targets[picks].astype(np.int32))
        alignments.append(np.asarray(rows, np.int32))
    return SequenceData(features, labels, alignments, vocab=[str(d) for d in range(10)])


def load_digit_strips(spec: DigitStripsSpec | None = None) -> DataSplits:
    """Train strips and valid/test strips are built from disjoint source images."""
    spec = spec or DigitStripsSpec()
    if not 1 <= spec.min_digits <= spec.max_digits:
        raise ValueError(
            f"data.min_digits/max_digits must satisfy 1 <= min <= max, got {spec.min_digits}, {spec.max_digits}"
        )
    if not 1 <= spec.min_width <= spec.max_width:
        raise ValueError(
            f"data.min_width/max_width must satisfy 1 <= min <= max, got {spec.min_width}, {spec.max_width}"
        )
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    train_idx, _, held_idx = seeded_split(len(images), (0.0, spec.test_image_fraction), spec.seed)
    rng = np.random.default_rng(spec.seed + 1)
    train = make_strips(images[train_idx], digits.target[train_idx], spec.num_train, spec, rng)
    valid = make_strips(images[held_idx], digits.target[held_idx], spec.num_valid, spec, rng)
    test = make_strips(images[held_idx], digits.target[held_idx], spec.num_test, spec, rng)
    return DataSplits(train, valid, test)
