"""Training augmentation (data.augment): deterministic under a seed, the noise's SNR and the gain as asked,
the speed change, and training-only: the recordings themselves (and what the aligner reads) unchanged."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from jaxalign.data.augment import AUGMENT_COLOURS, SPEEDS, augment_audio, parse_augment
from jaxalign.data.corpus import CorpusSpec, check_corpus_spec, load_corpus, load_corpus_splits
from jaxalign.data.espeak_corpus import write_espeak_corpus
from jaxalign.errors import CorpusError
from tests.corpora import WORDS

SPEC = SimpleNamespace(augment_min_snr_db=10.0, augment_max_snr_db=30.0, augment_gain_db=10.0, augment_drift_db=6.0)


def _speech(n=16000, seed=0):
    rng = np.random.default_rng(seed)
    return 0.1 * np.sin(np.arange(n) * 0.05) * (1 + rng.random(n))


def test_the_same_seed_gives_the_same_copy_and_another_seed_another():
    x = _speech()
    kinds = parse_augment("noise,gain,speed")
    a, drawn_a = augment_audio(x, 16000, kinds, np.random.default_rng([1, 2]), SPEC)
    b, drawn_b = augment_audio(x, 16000, kinds, np.random.default_rng([1, 2]), SPEC)
    c, _ = augment_audio(x, 16000, kinds, np.random.default_rng([1, 3]), SPEC)
    assert np.array_equal(a, b) and drawn_a == drawn_b
    assert len(a) != len(c) or not np.allclose(a, c)


@pytest.mark.parametrize("seed", range(6))
def test_the_noise_is_at_the_snr_drawn_within_1_db_and_in_range(seed):
    x = _speech(seed=seed)
    y, drawn = augment_audio(x, 16000, ("noise",), np.random.default_rng(seed), SPEC)
    measured = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
    assert 10 <= drawn["snr_db"] <= 30 and abs(measured - drawn["snr_db"]) < 1.0
    assert drawn["colour"] in AUGMENT_COLOURS


@pytest.mark.parametrize("seed", range(6))
def test_the_gain_is_a_level_in_range_and_a_drift_within_the_copy(seed):
    x = _speech(seed=seed)
    y, drawn = augment_audio(x, 16000, ("gain",), np.random.default_rng(seed), SPEC)
    gain_db = 20 * np.log10(np.abs(y[1:-1]) / np.abs(x[1:-1]))
    assert -10 <= drawn["level_db"] <= 10 and 0 <= drawn["drift_db"] <= 6
    assert gain_db.mean() == pytest.approx(drawn["level_db"], abs=0.05)  # a half cosine averages to 0
    assert abs(gain_db[-1] - gain_db[0]) == pytest.approx(drawn["drift_db"], abs=0.05)


def test_speed_changes_the_length_by_its_factor():
    x = _speech(n=32000)
    seen = set()
    for seed in range(12):
        y, drawn = augment_audio(x, 16000, ("speed",), np.random.default_rng(seed), SPEC)
        assert drawn["speed"] in SPEEDS and len(y) == pytest.approx(len(x) / drawn["speed"], abs=2)
        seen.add(drawn["speed"])
    assert seen == set(SPEEDS)


def test_unknown_augmentations_and_bad_ranges_are_named(tmp_path):
    assert parse_augment("none") == () and parse_augment("speed, noise") == parse_augment("noise+speed") == (
        "noise",
        "speed",
    )
    spec = CorpusSpec(root=str(tmp_path), dictionary="d.txt")
    for change, key in [({"augment": "reverb"}, "data.augment"), ({"augment_copies": -1}, "augment_copies"),
                        ({"augment_min_snr_db": 40.0}, "augment_min_snr_db"), ({"augment_gain_db": -1.0}, "gain")]:  # fmt: skip
        with pytest.raises(CorpusError, match=key):
            check_corpus_spec(dataclasses.replace(spec, **change))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("augment")
    write_espeak_corpus(out, speakers=2, utterances_per_speaker=2, sample_rate=16000, seed=0, words=WORDS)
    return CorpusSpec(root=str(out / "corpus"), dictionary=str(out / "dictionary.txt"), cache_dir=str(out / "cache"))


def test_augmentation_adds_training_copies_and_leaves_the_recordings_as_they_were(small):
    plain = load_corpus_splits(small)
    spec = dataclasses.replace(small, augment="noise+gain+speed", augment_copies=2)
    augmented = load_corpus_splits(spec)
    n = len(plain.train)
    assert len(augmented.train) == 3 * n and len(augmented.valid) == len(plain.valid) == 0
    for i in range(n):  # the recordings' own features: identical, normalised with their own statistics
        assert np.array_equal(augmented.train.features[i], plain.train.features[i])
        assert augmented.train.names[i] == plain.train.names[i]
    for c in (1, 2):
        for i in range(n):
            j = c * n + i
            assert augmented.train.names[j] == f"{plain.train.names[i]}+augment{c}"
            assert np.array_equal(augmented.train.labels[j], plain.train.labels[i])
            assert not np.array_equal(augmented.train.features[j][:5], plain.train.features[i][:5])
    again = load_corpus_splits(spec)
    assert all(np.array_equal(a, b) for a, b in zip(again.train.features, augmented.train.features))
    aligner_view = [u.features for u in load_corpus(spec, say=lambda line: None).utterances]
    assert all(np.array_equal(a, b) for a, b in zip(aligner_view, plain.train.features))
