"""Data sources and the batcher: invariants, malformed files, TIMIT on synthesised fixtures."""

import numpy as np
import pytest

from jaxalign.data import (
    Batcher,
    DataFileError,
    DigitStripsSpec,
    SyntheticSpec,
    TimitError,
    TimitSpec,
    digit_strips,
    load_arrays,
    load_digit_strips,
    load_synthetic,
    load_timit,
    timit,
    write_arrays,
)
from jaxalign.data.dataset import seeded_split

SMALL_STRIPS = DigitStripsSpec(num_train=200, num_valid=30, num_test=50, seed=3)


def assert_segmentations_consistent(data):
    for x, y, a in zip(data.features, data.labels, data.alignments):
        assert len(a) == len(x) and len(y) <= len(x)
        assert a[0] == 0 and a[-1] == len(y) - 1
        assert set(np.diff(a).tolist()) <= {0, 1}


def test_digit_strips_invariants_and_determinism():
    splits = load_digit_strips(SMALL_STRIPS)
    assert splits.sizes() == {"train": 200, "valid": 30, "test": 50}
    for part in (splits.train, splits.valid, splits.test):
        assert_segmentations_consistent(part)
        assert part.feature_dim == 8 and part.num_classes == 10
        lens = part.label_lengths()
        assert lens.min() >= 1 and lens.max() <= 5
    again = load_digit_strips(SMALL_STRIPS)
    np.testing.assert_array_equal(np.concatenate(again.test.features), np.concatenate(splits.test.features))
    # repeats such as "3 3" occur naturally
    assert any(np.any(y[1:] == y[:-1]) for y in splits.train.labels)
    # time-synchronous targets follow the segmentation
    np.testing.assert_array_equal(splits.train.frame_labels(0), splits.train.labels[0][splits.train.alignments[0]])


def test_digit_strips_train_and_test_use_disjoint_source_images():
    spec = DigitStripsSpec(num_train=100, num_valid=0, num_test=100, min_width=8, max_width=8, noise=0.0, seed=5)
    splits = load_digit_strips(spec)
    images = digit_strips.load_digits().images / 16.0
    train_pool, _, held_pool = seeded_split(len(images), (0.0, spec.test_image_fraction), spec.seed)
    flat = images.reshape(len(images), -1)

    def sources(data):
        found = set()
        for x, a in zip(data.features, data.alignments):
            for row in np.unique(a):
                block = x[a == row].T.reshape(-1)  # width 8 resampling is the identity
                found |= set(np.flatnonzero(np.all(np.isclose(flat, block, atol=1e-6), axis=1)).tolist())
        return found

    train_src, test_src = sources(splits.train), sources(splits.test)
    assert train_src and test_src
    # no held-out image is used by a training strip, and vice versa
    identical = {i for i in test_src if any(np.array_equal(flat[i], flat[j]) for j in train_pool)}
    assert (test_src - identical) <= set(held_pool.tolist())
    assert not (train_src - identical) & set(held_pool.tolist())


def test_digit_strips_bad_spec_is_named():
    with pytest.raises(ValueError, match="min_digits"):
        load_digit_strips(DigitStripsSpec(min_digits=3, max_digits=2))


def test_synthetic_known_answer():
    splits = load_synthetic(SyntheticSpec(num_train=50, num_valid=5, num_test=5, noise=0.0, seed=1))
    assert_segmentations_consistent(splits.train)
    # with no noise, frames of equal symbols are identical
    x, y, a = splits.train.features[0], splits.train.labels[0], splits.train.alignments[0]
    for row in range(len(y)):
        assert np.allclose(x[a == row], x[a == row][0])


def small_arrays(tmp_path, **overrides):
    rng = np.random.default_rng(0)
    features = [rng.normal(size=(t, 3)).astype(np.float32) for t in (5, 7, 4, 6)]
    labels = [np.array(y) for y in ([1, 2], [0, 0, 1], [2], [1, 1])]
    alignments = [np.array(a) for a in ([0, 0, 1, 1, 1], [0, 1, 1, 2, 2, 2, 2], [0, 0, 0, 0], [0, 0, 0, 1, 1, 1])]
    path = write_arrays(tmp_path / "data.npz", features, labels, alignments=alignments, split=[0, 0, 1, 2], vocab=["a", "b", "c"])
    if overrides:
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        for k, v in overrides.items():
            if v is None:
                arrays.pop(k)
            else:
                arrays[k] = v(arrays[k]) if callable(v) else v
        np.savez(path, **arrays)
    return path, features, labels, alignments


def test_arrays_round_trip(tmp_path):
    path, features, labels, alignments = small_arrays(tmp_path)
    splits = load_arrays(path)
    assert splits.sizes() == {"train": 2, "valid": 1, "test": 1}
    np.testing.assert_array_equal(splits.train.features[1], features[1])
    np.testing.assert_array_equal(splits.train.labels[1], labels[1])
    np.testing.assert_array_equal(splits.test.alignments[0], alignments[3])
    assert splits.train.vocab == ["a", "b", "c"]


def test_arrays_without_split_gets_seeded_split(tmp_path):
    path, *_ = small_arrays(tmp_path, split=None)
    a, b = load_arrays(path, seed=1), load_arrays(path, seed=1)
    assert sum(a.sizes().values()) == 4
    np.testing.assert_array_equal(a.train.features[0], b.train.features[0])


def _nan_in_third(f):
    f = f.copy()
    f[13, 1] = np.nan  # frame 13 is in example 2 (lengths 5, 7, 4, 6)
    return f


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"labels": None}, "labels: missing key"),
        ({"feature_lengths": lambda x: x + np.array([0, 1, 0, 0])}, "feature_lengths: add up to 23"),
        ({"label_lengths": lambda x: x + np.array([0, 0, 0, 1])}, "label_lengths: add up to 9"),
        ({"labels": lambda x: np.where(np.arange(len(x)) == 2, 5, x)}, r"labels: example 1 has id 5, outside \[0, 3\)"),
        ({"features": _nan_in_third}, "features: example 2 has a NaN"),
        ({"label_lengths": np.array([2, 3, 1, 2]), "feature_lengths": np.array([5, 2, 9, 6])}, "labels: example 1 has a target of 3 symbols but only 2 frames"),
        ({"labels": lambda x: x.astype(np.float32)}, "labels: must have an integer dtype"),
        ({"features": lambda x: x.astype(np.int32)}, "features: must have a float dtype"),
        ({"feature_lengths": np.zeros(0, np.int64), "label_lengths": np.zeros(0, np.int64), "features": np.zeros((0, 3), np.float32), "labels": np.zeros(0, np.int64), "alignments": None, "split": None}, "no examples"),
        ({"alignments": lambda a: np.where(np.arange(len(a)) == 8, 0, a)}, "alignments: example 1 is not a monotone path"),
        ({"split": np.array([0, 0, 3, 1])}, "split: example 2 has value 3"),
        ({"feature_lengths": np.array([5, 0, 11, 6])}, "feature_lengths: example 1 has length 0"),
    ],
)
def test_arrays_malformed_files_are_named(tmp_path, overrides, message):
    path, *_ = small_arrays(tmp_path, **overrides)
    with pytest.raises(DataFileError, match=message):
        load_arrays(path)


def test_arrays_unreadable_and_missing_and_pickled(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.path"):
        load_arrays(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFileError, match="not a readable"):
        load_arrays(tmp_path / "junk.npz")
    np.savez(tmp_path / "obj.npz", features=np.array([np.zeros(2), np.zeros(3)], dtype=object))
    with pytest.raises(DataFileError, match="pickle"):
        load_arrays(tmp_path / "obj.npz")


# --- TIMIT on a synthesised corpus in the exact file formats ---------------------------------------

PHONES = [("h#", 0, 2400), ("q", 2400, 3200), ("s", 3200, 5600), ("pcl", 5600, 6400), ("p", 6400, 8000), ("ix", 8000, 9600), ("ih", 9600, 11200), ("h#", 11200, 12800)]


def make_timit(root, speakers):
    rng = np.random.default_rng(0)
    for part, dr, spk, utt in speakers:
        folder = root / part / dr / spk
        folder.mkdir(parents=True, exist_ok=True)
        timit.write_sphere(folder / f"{utt}.WAV", (rng.normal(size=12800) * 3000).astype(np.int16))
        (folder / f"{utt}.PHN").write_text("".join(f"{s} {e} {p}\n" for p, s, e in PHONES))
    return root


def test_timit_reader_on_fixture(tmp_path):
    root = make_timit(tmp_path / "TIMIT", [
        ("TRAIN", "DR1", "FCJF0", "SI1027"), ("TRAIN", "DR1", "FCJF0", "SA1"), ("TRAIN", "DR2", "MABC0", "SX10"),
        ("TEST", "DR1", "MDAB0", "SI1039"), ("TEST", "DR1", "FAKE9", "SI1"),
    ])  # fmt: skip
    splits = load_timit(TimitSpec(root=str(root), valid_speaker_fraction=0.5))
    assert sum(splits.sizes().values()) == 3  # SA skipped, non-core test speaker skipped
    assert len(splits.test) == 1
    data = splits.test
    x, y, a = data.features[0], data.labels[0], data.alignments[0]
    assert x.shape == (1 + (12800 - 400) // 160, 40) and np.isfinite(x).all()
    # h# q -> sil (q joins it), s, pcl p -> sil p, ix ih -> ih (merged), h# -> sil
    assert [data.vocab[i] for i in y] == ["sil", "s", "sil", "p", "ih", "sil"]
    assert_segmentations_consistent(data)
    centre = 200 + 160 * np.arange(len(x))
    assert np.all(y[a][centre < 3200] == data.vocab.index("sil"))


def test_sphere_round_trip(tmp_path):
    samples = np.array([0, 1, -1, 32767, -32768], np.int16)
    timit.write_sphere(tmp_path / "a.wav", samples, 8000)
    audio, rate = timit.read_sphere(tmp_path / "a.wav")
    assert rate == 8000
    np.testing.assert_allclose(audio * 32768, samples)


def test_timit_missing_or_incomplete_corpus_is_explained(tmp_path):
    with pytest.raises(TimitError, match="data.root"):
        load_timit(TimitSpec(root=str(tmp_path / "none")))
    (tmp_path / "T" / "TRAIN").mkdir(parents=True)
    with pytest.raises(TimitError, match="no TEST folder"):
        load_timit(TimitSpec(root=str(tmp_path / "T")))
    make_timit(tmp_path / "U", [("TRAIN", "DR1", "FCJF0", "SI1"), ("TEST", "DR1", "MDAB0", "SI2")])
    (tmp_path / "U" / "TEST" / "DR1" / "MDAB0" / "SI2.PHN").unlink()
    with pytest.raises(TimitError, match="no matching .PHN"):
        load_timit(TimitSpec(root=str(tmp_path / "U")))


# --- batching ------------------------------------------------------------------------------------------


def test_batcher_buckets_shapes_and_validation():
    data = load_synthetic(SyntheticSpec(num_train=300, num_valid=10, num_test=10, seed=2)).train
    batcher = Batcher(data, 16, num_buckets=3, seed=0)
    assert len(batcher.bounds) <= 3
    shapes = set()
    for batch in (batcher.next_batch() for _ in range(40)):
        shapes.add(batch["features"].shape)
        lens = (batch["logit_paddings"] == 0).sum(1)
        assert np.all(lens == data.frame_lengths()[batch["index"]])
        assert np.all(batch["labels"][batch["label_paddings"] > 0] == -1)
        assert np.all(batch["frame_labels"][batch["logit_paddings"] > 0] == -1)
    assert len(shapes) <= 3 and all(s[1] in batcher.bounds for s in shapes)


def test_batcher_resumes_mid_epoch_exactly():
    data = load_synthetic(SyntheticSpec(num_train=120, num_valid=5, num_test=5, seed=2)).train
    full = Batcher(data, 8, seed=4)
    reference = [full.next_batch()["index"] for _ in range(25)]
    first = Batcher(data, 8, seed=4)
    head = [first.next_batch()["index"] for _ in range(11)]
    resumed = Batcher(data, 8, seed=4)
    resumed.state = first.state
    tail = [resumed.next_batch()["index"] for _ in range(14)]
    for want, got in zip(reference, head + tail):
        np.testing.assert_array_equal(want, got)


def test_eval_batches_cover_every_example_once():
    data = load_synthetic(SyntheticSpec(num_train=37, num_valid=5, num_test=5, seed=2)).train
    seen = []
    for batch in Batcher(data, 8, num_buckets=2).eval_batches():
        seen += batch["index"][batch["weights"] > 0].tolist()
    assert sorted(seen) == list(range(37))
