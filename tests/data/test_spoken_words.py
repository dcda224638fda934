"""data=spoken_words: espeak-ng words with exact phone boundaries, split by word, cached by config."""

import dataclasses

import numpy as np
import pytest

from jaxalign.data import spoken_words as sw
from jaxalign.data.espeak import EspeakError, get_espeak
from tests.helpers import metadata_for

WORDS = [
    "station",
    "hello",
    "water",
    "money",
    "basket",
    "garden",
    "yellow",
    "number",
    "window",
    "kitchen",
    "rabbit",
    "pencil",
]


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    root = tmp_path_factory.mktemp("spoken_words")
    (root / "words.txt").write_text("\n".join(WORDS) + "\n")
    return sw.SpokenWordsSpec(num_train=16, num_valid=4, num_test=4, valid_word_fraction=0.25, test_word_fraction=0.25,
                              word_list=str(root / "words.txt"), cache_dir=str(root / "cache"))  # fmt: skip


@pytest.fixture(scope="module")
def splits(spec):
    return sw.load_spoken_words(spec)


def _check_alignment(alignment, num_rows):
    assert alignment[0] == 0 and alignment[-1] == num_rows - 1
    assert set(np.diff(alignment).tolist()) <= {0, 1}  # non-decreasing, no row skipped: every row has a frame


@pytest.mark.parametrize("voice, rate, pitch", [("en", 175, 50), ("en-us+f2", 250, 70), ("en+m3", 130, 30)])
def test_boundaries_are_monotone_and_every_row_has_frames(spec, voice, rate, pitch):
    utt = sw.synthesise("basket", voice, rate, pitch, spec, np.random.default_rng(0))
    assert utt.starts[0] == 0 and np.all(np.diff(utt.starts) > 0) and utt.starts[-1] < len(utt.audio)
    assert all(a != b for a, b in zip(utt.phones, utt.phones[1:]))
    assert utt.phones[0] == utt.phones[-1] == sw.SILENCE  # padding rows at both ends
    assert len(utt.features) == len(utt.alignment) == 1 + (len(utt.audio) - 400) // 160
    _check_alignment(utt.alignment, len(utt.labels))
    assert utt.labels[0] == utt.labels[-1] == sw.SILENCE
    it = iter(utt.phones)
    assert all(label in it for label in utt.labels)  # rows are the phones in order (short ones may vanish)


def test_same_word_gives_the_same_phones_across_voices(spec):
    rng = np.random.default_rng(0)
    phones = {v: sw.synthesise("station", v, 180, 50, spec, rng).labels for v in ("en", "en+f2", "en+m3", "en-us+m1")}
    assert set(map(tuple, phones.values())) == {("_", "s", "t", "eI", "S", "@", "n", "_")}, phones


def test_splits_sizes_alignments_and_vocab(spec, splits):
    assert splits.sizes() == {"train": 16, "valid": 4, "test": 4}
    for data in (splits.train, splits.valid, splits.test):
        assert data.vocab == splits.train.vocab and sw.SILENCE in data.vocab
        for x, y, a in zip(data.features, data.labels, data.alignments):
            assert x.shape == (len(a), spec.num_mels) and np.isfinite(x).all()
            assert 0 <= y.min() and y.max() < data.num_classes
            _check_alignment(a, len(y))


def test_splits_are_disjoint_by_word(spec, splits):
    utts = metadata_for(spec)["utterances"]
    words = [{u["word"] for u in utts if u["split"] == s} for s in (0, 1, 2)]
    assert all(words) and not (words[0] & words[1] or words[0] & words[2] or words[1] & words[2])
    assert set().union(*words) <= set(WORDS)
    assert len({u["voice"] for u in utts}) > 1


def test_cache_is_reused_and_keyed_by_config(spec, splits, monkeypatch, tmp_path):
    def no_synthesis(*args, **kwargs):
        raise AssertionError("synthesised again although the cache holds this config")

    monkeypatch.setattr(sw, "synthesise", no_synthesis)
    again = sw.load_spoken_words(spec)
    assert all(np.array_equal(a, b) for a, b in zip(again.train.features, splits.train.features))
    path = sw.cache_path(spec)
    assert path.is_file() and path.parent == sw.Path(spec.cache_dir) / "spoken_words"
    for change in ({"seed": 1}, {"snr_db": 10.0}, {"voices": ["en"]}, {"num_train": 17}):
        assert sw.cache_path(dataclasses.replace(spec, **change)) != path, change
    assert sw.cache_path(dataclasses.replace(spec, cache_dir=str(tmp_path))).name == path.name  # where, not what
    monkeypatch.setenv("JAXALIGN_CACHE_DIR", str(tmp_path))
    assert sw.cache_path(dataclasses.replace(spec, cache_dir="")).parent == tmp_path / "spoken_words"


@pytest.mark.parametrize(
    "change, key",
    [
        ({"voices": ["en", "xx-nosuch"]}, "data.voices"),
        ({"min_rate": 300, "max_rate": 200}, "data.min_rate/max_rate"),
        ({"max_pitch": 101}, "data.min_pitch/max_pitch"),
        ({"valid_word_fraction": 0.6, "test_word_fraction": 0.5}, "data.valid_word_fraction"),
        ({"valid_word_fraction": 0.01}, "data.valid_word_fraction"),
        ({"word_list": "/no/such/words.txt"}, "data.word_list"),
    ],
)
def test_bad_settings_fail_with_one_line_naming_the_key(spec, change, key, tmp_path):
    with pytest.raises(sw.SpokenWordsError) as err:
        sw.load_spoken_words(dataclasses.replace(spec, cache_dir=str(tmp_path), **change))
    assert key in str(err.value) and "\n" not in str(err.value)
    assert not any(tmp_path.rglob("*.npz"))


def test_espeak_reports_a_missing_voice():
    with pytest.raises(EspeakError, match="no voice 'xx-nosuch'"):
        get_espeak().set_voice("xx-nosuch")
