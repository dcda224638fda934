"""Bring-your-own data: one `.npz` file with ragged sequences stored flat (see README).

Keys: `features` float (sum T_i, F), `feature_lengths` int (N,), `labels` int (sum L_i,),
`label_lengths` int (N,); optional `alignments` int (sum T_i,) true row per frame, `split` int (N,)
0 train / 1 valid / 2 test, `vocab` unicode (C,).
"""

import zipfile
from pathlib import Path

import numpy as np

from jaxalign.data.dataset import DataSplits, SequenceData, seeded_split
from jaxalign.errors import DataFileError, DataFileNotFoundError

REQUIRED = ("features", "feature_lengths", "labels", "label_lengths")
OPTIONAL = ("alignments", "split", "vocab")


def write_arrays(path, features, labels, *, alignments=None, split=None, vocab=None) -> Path:
    """Saves lists of per-example arrays in the `data=arrays` format.

    features: list of (T_i, F) float arrays. labels: list of (L_i,) int arrays. alignments: optional
    list of (T_i,) int true rows. split: optional (N,) ints 0/1/2. vocab: optional class names.
    """
    arrays = {
        "features": np.concatenate([np.asarray(f, np.float32) for f in features]),
        "feature_lengths": np.array([len(f) for f in features], np.int64),
        "labels": np.concatenate([np.asarray(y, np.int64) for y in labels]),
        "label_lengths": np.array([len(y) for y in labels], np.int64),
    }
    if alignments is not None:
        arrays["alignments"] = np.concatenate([np.asarray(a, np.int64) for a in alignments])
    if split is not None:
        arrays["split"] = np.asarray(split, np.int64)
    if vocab is not None:
        arrays["vocab"] = np.asarray(vocab, dtype=np.str_)
    path = Path(path)
    np.savez(path, **arrays)
    return path if path.suffix == ".npz" else path.with_suffix(path.suffix + ".npz")


def _first(bad) -> int | None:
    idx = np.flatnonzero(bad)
    return int(idx[0]) if idx.size else None


def _fail(key: str, message: str):
    raise DataFileError(f"{key}: {message}")


def _read(path) -> dict[str, np.ndarray]:
    path = Path(path)
    if path.is_dir():
        raise DataFileNotFoundError(
            f"data.path: {path} is a folder, not an .npz file; a corpus folder (SPEAKER/NAME.wav + NAME.lab) "
            f"is read with data=corpus data.root={path} data.dictionary=FILE"
        )
    if not path.is_file():
        raise DataFileNotFoundError(f"data.path: no such file {path}")
    with open(path, "rb") as f:
        if f.read(2) != b"PK":
            raise DataFileError(f"data.path: {path} is not a readable .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DataFileError(f"data.path: {path} is not a readable .npz file ({err})") from None
    except ValueError as err:  # object arrays need pickle, which we never allow
        raise DataFileError(
            f"data.path: {path} holds an array that needs pickle; store plain numeric arrays ({err})"
        ) from None


def _check_dtypes(arrays):
    kinds = {
        "features": "f",
        "feature_lengths": "iu",
        "labels": "iu",
        "label_lengths": "iu",
        "alignments": "iu",
        "split": "iu",
        "vocab": "U",
    }
    ranks = {"features": 2, "vocab": 1}
    for key, kind in kinds.items():
        if key not in arrays:
            continue
        a = arrays[key]
        if a.dtype.kind not in kind:
            want = {"f": "a float dtype", "iu": "an integer dtype", "U": "a unicode string dtype"}[kind]
            _fail(key, f"must have {want}, got {a.dtype}")
        if a.ndim != ranks.get(key, 1):
            _fail(key, f"must have rank {ranks.get(key, 1)}, got shape {a.shape}")


def validate_arrays(arrays: dict[str, np.ndarray], *, long_targets: bool = False) -> dict[str, np.ndarray]:
    """Checks every rule of the format; returns the arrays with lengths as int64.

    long_targets: accept examples whose target is longer than their input (the caller skips them,
    as `jaxalign-align` does); their `alignments` entries are not checked.
    """
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        _fail(missing[0], f"missing key (the file has {sorted(arrays)}; required: {list(REQUIRED)})")
    _check_dtypes(arrays)
    t_len = arrays["feature_lengths"].astype(np.int64)
    l_len = arrays["label_lengths"].astype(np.int64)
    if t_len.size == 0:
        _fail("feature_lengths", "the file holds no examples")
    if l_len.size != t_len.size:
        _fail("label_lengths", f"has {l_len.size} entries but feature_lengths has {t_len.size}")
    for key, lens in (("feature_lengths", t_len), ("label_lengths", l_len)):
        b = _first(lens < 1)
        if b is not None:
            _fail(key, f"example {b} has length {lens[b]}; every example needs at least one")
    if t_len.sum() != arrays["features"].shape[0]:
        _fail("feature_lengths", f"add up to {t_len.sum()} but features has {arrays['features'].shape[0]} rows")
    if l_len.sum() != arrays["labels"].shape[0]:
        _fail("label_lengths", f"add up to {l_len.sum()} but labels has {arrays['labels'].shape[0]} entries")
    b = None if long_targets else _first(l_len > t_len)
    if b is not None:
        _fail("labels", f"example {b} has a target of {l_len[b]} symbols but only {t_len[b]} frames")
    example_of_frame = np.repeat(np.arange(t_len.size), t_len)
    bad_frames = ~np.isfinite(arrays["features"]).all(axis=1)
    if bad_frames.any():
        _fail("features", f"example {example_of_frame[_first(bad_frames)]} has a NaN or infinite value")
    labels = arrays["labels"]
    num_classes = len(arrays["vocab"]) if "vocab" in arrays else int(labels.max()) + 1
    example_of_label = np.repeat(np.arange(l_len.size), l_len)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        i = _first(bad)
        _fail("labels", f"example {example_of_label[i]} has id {labels[i]}, outside [0, {num_classes})")
    if "alignments" in arrays:
        ali = arrays["alignments"].astype(np.int64)
        if ali.size != t_len.sum():
            _fail("alignments", f"has {ali.size} entries but feature_lengths add up to {t_len.sum()}")
        starts = np.concatenate([[0], np.cumsum(t_len)[:-1]])
        ends = np.cumsum(t_len) - 1
        step = np.diff(ali, prepend=0)
        step[starts] = ali[starts]  # each example must start on row 0
        bad_step = (step != 0) & (step != 1)
        bad_example = np.zeros(t_len.size, bool)
        np.logical_or.at(bad_example, example_of_frame, bad_step)
        bad_example |= ali[ends] != l_len - 1
        bad_example &= l_len <= t_len
        b = _first(bad_example)
        if b is not None:
            _fail(
                "alignments", f"example {b} is not a monotone path from row 0 to row {l_len[b] - 1} (steps of 0 or 1)"
            )
    if "split" in arrays:
        split = arrays["split"]
        if split.size != t_len.size:
            _fail("split", f"has {split.size} entries for {t_len.size} examples")
        b = _first((split < 0) | (split > 2))
        if b is not None:
            _fail("split", f"example {b} has value {split[b]}; use 0 train, 1 valid, 2 test")
    return {**arrays, "feature_lengths": t_len, "label_lengths": l_len}


def read_arrays(path, *, long_targets: bool = False) -> dict[str, np.ndarray]:
    """Reads and validates a `.npz` file (see `validate_arrays`); returns its flat arrays."""
    return validate_arrays(_read(path), long_targets=long_targets)


def to_sequences(arrays: dict[str, np.ndarray]) -> SequenceData:
    """Validated flat arrays -> every example in file order (vocab: the file's, else the class ids)."""
    t_off = np.concatenate([[0], np.cumsum(arrays["feature_lengths"])])
    l_off = np.concatenate([[0], np.cumsum(arrays["label_lengths"])])
    n = len(arrays["feature_lengths"])
    features = [arrays["features"][t_off[i] : t_off[i + 1]].astype(np.float32) for i in range(n)]
    labels = [arrays["labels"][l_off[i] : l_off[i + 1]].astype(np.int32) for i in range(n)]
    alignments = None
    if "alignments" in arrays:
        alignments = [arrays["alignments"][t_off[i] : t_off[i + 1]].astype(np.int32) for i in range(n)]
    num_classes = len(arrays["vocab"]) if "vocab" in arrays else int(arrays["labels"].max()) + 1
    vocab = [str(v) for v in arrays["vocab"]] if "vocab" in arrays else [str(c) for c in range(num_classes)]
    return SequenceData(features, labels, alignments, vocab)


def load_arrays(path, *, valid_fraction: float, test_fraction: float, seed: int) -> DataSplits:
    """Reads and validates a `.npz` file (`data=arrays`); without a `split` key makes a seeded split
    with the given fractions."""
    arrays = read_arrays(path)
    data = to_sequences(arrays)
    if "split" in arrays:
        return _splits(data, arrays["split"])
    return _splits_of(data, seeded_split(len(data), (valid_fraction, test_fraction), seed))


def load_presplit_arrays(path) -> DataSplits:
    """Reads and validates a `.npz` file that carries its own `split` key (the built-in caches)."""
    arrays = read_arrays(path)
    if "split" not in arrays:
        _fail("split", "missing: this file must carry its own train/valid/test split")
    return _splits(to_sequences(arrays), arrays["split"])


def _splits(data: SequenceData, split: np.ndarray) -> DataSplits:
    return _splits_of(data, [np.flatnonzero(split == s) for s in (0, 1, 2)])


def _splits_of(data: SequenceData, parts) -> DataSplits:
    if len(parts[0]) == 0:
        _fail("split", "no training examples")
    return DataSplits(*(data.subset(p) for p in parts))
