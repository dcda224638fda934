"""Data sources and the batcher: invariants, malformed files, TIMIT on synthesised fixtures."""

import itertools
import shutil
import subprocess
import wave

import numpy as np
import pytest

from jaxalign.data import (
    Batcher,
    DataFileError,
    DigitStripsSpec,
    SyntheticSpec,
    TimitError,
    TimitSpec,
    bucket_bounds,
    digit_strips,
    load_arrays,
    load_digit_strips,
    load_synthetic,
    load_timit,
    timit,
    write_arrays,
)
from jaxalign.data.dataset import seeded_split
from tests.helpers import write_sphere

SEEDED_SPLIT = {"valid_fraction": 0.1, "test_fraction": 0.1}  # data=arrays files without a split key

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
    path = write_arrays(
        tmp_path / "data.npz", features, labels, alignments=alignments, split=[0, 0, 1, 2], vocab=["a", "b", "c"]
    )
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
    splits = load_arrays(path, **SEEDED_SPLIT, seed=0)
    assert splits.sizes() == {"train": 2, "valid": 1, "test": 1}
    np.testing.assert_array_equal(splits.train.features[1], features[1])
    np.testing.assert_array_equal(splits.train.labels[1], labels[1])
    np.testing.assert_array_equal(splits.test.alignments[0], alignments[3])
    assert splits.train.vocab == ["a", "b", "c"]


def test_arrays_without_split_gets_seeded_split(tmp_path):
    path, *_ = small_arrays(tmp_path, split=None)
    a, b = load_arrays(path, **SEEDED_SPLIT, seed=1), load_arrays(path, **SEEDED_SPLIT, seed=1)
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
        (
            {"label_lengths": np.array([2, 3, 1, 2]), "feature_lengths": np.array([5, 2, 9, 6])},
            "labels: example 1 has a target of 3 symbols but only 2 frames",
        ),
        ({"labels": lambda x: x.astype(np.float32)}, "labels: must have an integer dtype"),
        ({"features": lambda x: x.astype(np.int32)}, "features: must have a float dtype"),
        (
            {
                "feature_lengths": np.zeros(0, np.int64),
                "label_lengths": np.zeros(0, np.int64),
                "features": np.zeros((0, 3), np.float32),
                "labels": np.zeros(0, np.int64),
                "alignments": None,
                "split": None,
            },
            "no examples",
        ),
        (
            {"alignments": lambda a: np.where(np.arange(len(a)) == 8, 0, a)},
            "alignments: example 1 is not a monotone path",
        ),
        ({"split": np.array([0, 0, 3, 1])}, "split: example 2 has value 3"),
        ({"feature_lengths": np.array([5, 0, 11, 6])}, "feature_lengths: example 1 has length 0"),
    ],
)
def test_arrays_malformed_files_are_named(tmp_path, overrides, message):
    path, *_ = small_arrays(tmp_path, **overrides)
    with pytest.raises(DataFileError, match=message):
        load_arrays(path, **SEEDED_SPLIT, seed=0)


def test_arrays_unreadable_and_missing_and_pickled(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.path"):
        load_arrays(tmp_path / "nope.npz", **SEEDED_SPLIT, seed=0)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFileError, match="not a readable"):
        load_arrays(tmp_path / "junk.npz", **SEEDED_SPLIT, seed=0)
    np.savez(tmp_path / "obj.npz", features=np.array([np.zeros(2), np.zeros(3)], dtype=object))
    with pytest.raises(DataFileError, match="pickle"):
        load_arrays(tmp_path / "obj.npz", **SEEDED_SPLIT, seed=0)


# --- TIMIT on a synthesised corpus in the exact file formats ---------------------------------------

PHONES = [
    ("h#", 0, 2400),
    ("q", 2400, 3200),
    ("s", 3200, 5600),
    ("pcl", 5600, 6400),
    ("p", 6400, 8000),
    ("ix", 8000, 9600),
    ("ih", 9600, 11200),
    ("h#", 11200, 12800),
]


TIMIT_LAYOUTS = ("sphere", "sphere+riff", "riff", "riff-lower")


def write_riff(path, samples_int16, sample_rate=16000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.asarray(samples_int16, "<i2").tobytes())


def sox(*args):
    subprocess.run(["sox", "-R", "-D", *map(str, args)], check=True, capture_output=True)


def make_timit(root, speakers, layout="sphere", tool="numpy"):
    """A tiny TIMIT tree, audio 12800 samples at 16 kHz per utterance, the same samples in every layout.

    layout: "sphere"      UTT.WAV is NIST SPHERE (the LDC original);
            "sphere+riff" UTT.WAV SPHERE plus a RIFF UTT.WAV.wav of the same samples beside it (the common copy);
            "riff"        UTT.WAV is RIFF (only the magic bytes say so);
            "riff-lower"  RIFF, and every folder and file name in lower case (utt.wav, utt.phn).
    tool:   "numpy" writes the audio here (write_sphere / the `wave` module, random samples);
            "sox"   has the outside tool make it: a RIFF sweep from `sox synth`, SPHERE converted from it by sox.
    """
    rng = np.random.default_rng(0)
    name = str.lower if layout == "riff-lower" else str
    for i, (part, dr, spk, utt) in enumerate(speakers):
        folder = root / name(part) / name(dr) / name(spk)
        folder.mkdir(parents=True, exist_ok=True)
        main = folder / name(f"{utt}.WAV")
        sphere = None if layout.startswith("riff") else main
        riff = {"sphere": main.with_name(main.name + ".tmp"), "sphere+riff": main.with_name(main.name + ".wav")}.get(
            layout, main
        )
        if tool == "sox":
            sweep = f"{200 + 50 * i}-{3000 + 50 * i}"
            sox(
                "-r",
                16000,
                "-n",
                "-r",
                16000,
                "-b",
                16,
                "-c",
                1,
                "-t",
                "wav",
                riff,
                "synth",
                "12800s",
                "sine",
                sweep,
                "vol",
                0.5,
            )
            if sphere:
                sox("-t", "wav", riff, "-t", "sph", sphere)
            if layout == "sphere":
                riff.unlink()
        else:
            samples = (rng.normal(size=12800) * 3000).astype(np.int16)
            if sphere:
                write_sphere(sphere, samples)
            if layout != "sphere":
                write_riff(riff, samples)
        (folder / name(f"{utt}.PHN")).write_text("".join(f"{s} {e} {p}\n" for p, s, e in PHONES))
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
    write_sphere(tmp_path / "a.wav", samples, 8000)
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


LAYOUT_UTTERANCES = [
    ("TRAIN", "DR1", "FCJF0", "SI1027"), ("TRAIN", "DR1", "FCJF0", "SX37"), ("TRAIN", "DR2", "MABC0", "SX10"),
    ("TEST", "DR1", "MDAB0", "SI1039"), ("TEST", "DR3", "FELC0", "SX16"),
]  # fmt: skip


def check_timit_layouts(tmp_path, tool):
    """Every layout loads one utterance per .PHN file, and RIFF and SPHERE copies of the same samples
    give identical features, labels and alignments."""
    loaded = {}
    for layout in TIMIT_LAYOUTS:
        root = make_timit(tmp_path / layout, LAYOUT_UTTERANCES, layout=layout, tool=tool)
        phn_files = [f for f in root.rglob("*") if f.suffix.upper() == ".PHN"]
        splits = load_timit(TimitSpec(root=str(root), valid_speaker_fraction=0.5))
        assert sum(splits.sizes().values()) == len(phn_files) == len(LAYOUT_UTTERANCES), layout
        loaded[layout] = splits
    # The formats really are what the layout says, whatever the names: read by magic bytes.
    sph = tmp_path / "sphere+riff" / "TRAIN" / "DR1" / "FCJF0" / "SI1027.WAV"
    riff = sph.with_name("SI1027.WAV.wav")
    assert sph.read_bytes()[:7] == b"NIST_1A" and riff.read_bytes()[:4] == b"RIFF"
    assert (tmp_path / "riff" / "TRAIN" / "DR1" / "FCJF0" / "SI1027.WAV").read_bytes()[:4] == b"RIFF"
    (a, rate_a), (b, rate_b) = timit.read_sphere_or_riff(sph), timit.read_sphere_or_riff(riff)
    assert rate_a == rate_b == 16000 and len(a) == 12800 and np.abs(a).max() > 0.05
    np.testing.assert_array_equal(a, b)
    for layout, splits in loaded.items():
        for split in ("train", "valid", "test"):
            ref, got = getattr(loaded["sphere"], split), getattr(splits, split)
            assert len(ref) == len(got) > 0, (layout, split)
            for field in ("features", "labels", "alignments"):
                for x, y in zip(getattr(ref, field), getattr(got, field)):
                    np.testing.assert_array_equal(x, y, err_msg=f"{layout} {split} {field}")


def test_timit_layouts_riff_and_sphere_agree(tmp_path):
    check_timit_layouts(tmp_path, "numpy")
    # A copy holding only the converted UTT.WAV.wav for an utterance still loads it, once.
    root = tmp_path / "sphere+riff"
    (root / "TEST" / "DR1" / "MDAB0" / "SI1039.WAV").unlink()
    assert sum(load_timit(TimitSpec(root=str(root), valid_speaker_fraction=0.5)).sizes().values()) == len(
        LAYOUT_UTTERANCES
    )


@pytest.mark.skipif(
    shutil.which("sox") is None,
    reason="sox is not on PATH (apt-get install sox); test_timit_layouts_riff_and_sphere_agree covers the same layouts with Python-written audio",
)
def test_timit_layouts_written_by_sox(tmp_path):
    check_timit_layouts(tmp_path, "sox")
    # What sox writes for formats the reader does not take is a one-line error naming the file.
    bad = tmp_path / "riff" / "TEST" / "DR1" / "MDAB0" / "SI1039.WAV"
    for bits, channels in ((24, 1), (16, 2)):
        sox(
            "-r",
            16000,
            "-n",
            "-r",
            16000,
            "-b",
            bits,
            "-c",
            channels,
            "-t",
            "wav",
            bad,
            "synth",
            "12800s",
            "sine",
            440,
            "vol",
            0.5,
        )
        with pytest.raises(TimitError, match=r"SI1039\.WAV: .*only 16-bit PCM mono is supported") as err:
            load_timit(TimitSpec(root=str(tmp_path / "riff")))
        assert "\n" not in str(err.value)


def test_timit_bad_audio_is_named(tmp_path):
    root = make_timit(
        tmp_path / "T", [("TRAIN", "DR1", "FCJF0", "SI1"), ("TEST", "DR1", "MDAB0", "SI2")], layout="riff"
    )
    bad = root / "TEST" / "DR1" / "MDAB0" / "SI2.WAV"
    spec = TimitSpec(root=str(root))
    for channels, width, message in ((2, 2, r"2 channel\(s\) of 16-bit"), (1, 1, r"1 channel\(s\) of 8-bit")):
        with wave.open(str(bad), "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(width)
            w.setframerate(16000)
            w.writeframes(bytes(channels * width * 1000))
        with pytest.raises(TimitError, match=rf"SI2\.WAV: RIFF WAV with {message} samples; only 16-bit PCM mono"):
            load_timit(spec)
    bad.write_bytes(b"RIFF\0\0\0\0WAVEjunk")
    with pytest.raises(TimitError, match=r"SI2\.WAV: unreadable RIFF WAV"):
        load_timit(spec)
    bad.write_bytes(b"OggS" + bytes(100))
    with pytest.raises(TimitError, match=r"SI2\.WAV: neither NIST SPHERE .* nor RIFF WAV"):
        load_timit(spec)
    bad.unlink()
    with pytest.raises(TimitError, match=r"SI2\.PHN: no audio next to it"):
        load_timit(spec)


# --- batching ------------------------------------------------------------------------------------------


def epoch_frames(bounds, lengths, batch_size, multiple=8):
    """Frames one epoch computes with these bounds (filler rows included); None if a bucket is empty."""
    bucket = np.searchsorted(bounds, np.ceil(np.asarray(lengths) / multiple) * multiple)
    counts = np.bincount(bucket, minlength=len(bounds))
    if bucket.max() >= len(bounds) or (counts == 0).any():
        return None
    return sum(-(-c // batch_size) * batch_size * b for c, b in zip(counts, bounds))


def test_bucket_bounds_minimise_the_frames_an_epoch_computes_as_brute_force_does():
    rng = np.random.default_rng(0)
    for _ in range(200):
        lengths = rng.integers(1, 120, int(rng.integers(1, 30)))
        if rng.random() < 0.3:
            lengths[: len(lengths) // 2] = lengths[0]  # repeated lengths
        num_buckets, batch_size = int(rng.integers(1, 5)), int(rng.integers(1, 9))
        bounds = bucket_bounds(lengths, num_buckets, batch_size)
        rounded = sorted({int(np.ceil(x / 8) * 8) for x in lengths})
        brute = min(
            frames
            for k in range(1, num_buckets + 1)
            for inner in itertools.combinations(rounded[:-1], k - 1)
            if (frames := epoch_frames([*inner, rounded[-1]], lengths, batch_size)) is not None
        )
        assert len(bounds) <= num_buckets and bounds[-1] == rounded[-1]
        assert epoch_frames(bounds, lengths, batch_size) == brute
    assert bucket_bounds([5] * 3, 4, 32) == [8]  # one length, one bucket
    assert bucket_bounds([10] * 31 + [400], 4, 32) == [400]  # a lone long example rides with the others


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


def test_batcher_takes_shapes_from_its_caller_and_refuses_ones_its_data_do_not_fit():
    data = load_synthetic(SyntheticSpec(num_train=40, num_valid=5, num_test=5, seed=2)).train
    longest, frames = data.longest_target(), int(data.frame_lengths().max())
    batcher = Batcher(data, 8, num_buckets=2, bounds=[frames, frames + 40], label_len=longest + 3)
    batch = batcher.next_batch()
    assert batch["labels"].shape[1] == longest + 3 and batch["features"].shape[1] in (frames, frames + 40)
    with pytest.raises(ValueError, match="label_len=.* shorter than the longest target"):
        Batcher(data, 8, num_buckets=2, label_len=longest - 1)
    with pytest.raises(ValueError, match="leave out sequences of"):
        Batcher(data, 8, num_buckets=2, bounds=[frames - 1])


def test_batcher_resumes_mid_epoch_exactly():
    data = load_synthetic(SyntheticSpec(num_train=120, num_valid=5, num_test=5, seed=2)).train
    full = Batcher(data, 8, num_buckets=4, seed=4)
    reference = [full.next_batch()["index"] for _ in range(25)]
    first = Batcher(data, 8, num_buckets=4, seed=4)
    head = [first.next_batch()["index"] for _ in range(11)]
    resumed = Batcher(data, 8, num_buckets=4, seed=4)
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


def _log_mel_before_audio_py(samples, sample_rate, frame_ms, hop_ms, num_mels):
    """The front end as `timit.log_mel` computed it before `jaxalign.data.audio` (verbatim)."""
    frame = int(sample_rate * frame_ms / 1000)
    hop = int(sample_rate * hop_ms / 1000)
    if len(samples) < frame:
        samples = np.pad(samples, (0, frame - len(samples)))
    n_frames = 1 + (len(samples) - frame) // hop
    n_fft = 1 << (frame - 1).bit_length()
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(mel(0.0), mel(sample_rate / 2), num_mels + 2))
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bank = np.maximum(0.0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    idx = np.arange(frame)[None, :] + hop * np.arange(n_frames)[:, None]
    power = np.abs(np.fft.rfft(samples[idx] * np.hamming(frame), n=n_fft)) ** 2
    return np.log(power @ bank.T + 1e-6).astype(np.float32)


@pytest.mark.parametrize("keys", [(16000, 25.0, 10.0, 40), (8000, 20.0, 5.0, 23), (22050, 25.0, 12.5, 80)])
def test_front_end_features_are_byte_identical_to_before(keys):
    """One front end (`jaxalign.data.audio`) for every speech source: the same bytes as the three
    copies it replaced, on noise, a chirp and audio shorter than one window; its record in a run is
    `dataclasses.asdict(FrontEnd)` and the aligner's clock is read from it."""
    import dataclasses
    from types import SimpleNamespace

    from jaxalign.aligner.export import Clock
    from jaxalign.data.audio import FrontEnd, front_end_of

    sample_rate, frame_ms, hop_ms, num_mels = keys
    front_end = front_end_of(
        SimpleNamespace(sample_rate=sample_rate, frame_ms=frame_ms, hop_ms=hop_ms, num_mels=num_mels)
    )
    t = np.arange(sample_rate) / sample_rate
    inputs = [
        np.random.default_rng(0).normal(0, 0.1, 12345).astype(np.float32),
        (0.5 * np.sin(2 * np.pi * (100 + 2000 * t) * t)).astype(np.float32),
        np.full(37, 0.25, np.float32),
    ]
    for samples in inputs:
        got = front_end.log_mel(samples)
        assert got.tobytes() == _log_mel_before_audio_py(samples, *keys).tobytes()
        assert len(got) == front_end.num_frames(len(samples))
    record = dataclasses.asdict(front_end)
    assert set(record) == {"sample_rate", "window", "hop", "mel_bins"}
    assert Clock.of_front_end(SimpleNamespace(**record)) == Clock.of_front_end(
        SimpleNamespace(hop_ms=hop_ms, frame_ms=frame_ms)
    )
    assert FrontEnd() == front_end_of(SimpleNamespace(sample_rate=16000, frame_ms=25.0, hop_ms=10.0, num_mels=40))


def test_speech_sources_record_their_front_end_for_the_run(tmp_path):
    """`SequenceData.info()` (what a checkpoint keeps of its data) names the front end of TIMIT."""
    root = make_timit(tmp_path / "t", LAYOUT_UTTERANCES, layout="sphere")
    splits = load_timit(TimitSpec(root=str(root), valid_speaker_fraction=0.5))
    for part in (splits.train, splits.valid, splits.test):
        assert part.info()["front_end"] == {"sample_rate": 16000, "window": 0.025, "hop": 0.01, "mel_bins": 40}
    assert "front_end" not in load_digit_strips(SMALL_STRIPS).train.info()
