"""The robustness corpus: its truth, the noise's SNR and colour, the gain drift, weak sounds at pauses."""

import csv

import numpy as np
import pytest
import soundfile
from praatio import textgrid

from jaxalign.data.augment import coloured_noise, gain_curve_db
from jaxalign.data.robust_corpus import robust_parts, weak_edges, write_robust_corpus
from jaxalign.errors import EspeakCorpusError

WORDS = ["station", "hello", "fish", "house", "salt", "thin", "water", "garden", "face", "both"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("robust")
    summary = write_robust_corpus(
        out, voices=["en-us+klatt", "en+whisper"], utterances_per_speaker=1, min_words=3, max_words=5, seed=3,
        words=WORDS, sample_rate=16000, comma_probability=0.5,
    )  # fmt: skip
    return out, summary


def test_two_files_with_consistent_truth_and_their_conditions(corpus):
    out, summary = corpus
    assert summary["recordings"] == 2 and summary["speakers"] == ["en-us_klatt", "en_whisper"]
    with open(out / "conditions.csv", newline="") as f:
        conditions = {row["recording"]: row for row in csv.DictReader(f)}
    for path in sorted((out / "truth").rglob("*.TextGrid")):
        rel = path.relative_to(out / "truth").with_suffix("")
        audio, rate = soundfile.read(out / "corpus" / f"{rel}.wav")
        assert rate == 16000 and np.abs(audio).max() < 1.0
        grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
        words = [tuple(e) for e in grid.getTier("words").entries]
        phones = [tuple(e) for e in grid.getTier("phones").entries]
        said = (out / "corpus" / f"{rel}.lab").read_text().split()
        assert [w for *_, w in words] == said
        assert all(a < b for a, b, _ in words + phones) and words[-1][1] <= len(audio) / rate
        assert all(b1 <= a2 for (_, b1, _), (a2, _, _) in zip(words, words[1:]))
        for a, b, _ in phones:  # every phone inside one word
            assert sum(wa - 1e-6 <= a and b <= wb + 1e-6 for wa, wb, _ in words) == 1
        row = conditions[rel.as_posix()]
        assert 10 <= float(row["snr_db"]) <= 20 and row["colour"] in ("white", "pink", "brown")
        assert abs(float(row["drift_db"])) == 6.0


@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
def test_the_noise_is_at_the_snr_asked_within_1_db(colour):
    rng = np.random.default_rng(0)
    clean = np.zeros(16000)
    clean[4000:12000] = 0.1 * np.sin(np.arange(8000) * 0.3)
    words = [(4000, 7000), (9000, 12000)]
    for seed in range(5):
        parts = robust_parts(clean, words, np.random.default_rng(seed), snr_db=(10, 20), colours=(colour,))
        speech = np.concatenate([parts["speech"][a:b] for a, b in words])
        measured = 10 * np.log10(np.mean(speech**2) / np.mean(parts["noise"] ** 2))
        assert abs(measured - parts["snr_db"]) < 1.0 and 10 <= parts["snr_db"] <= 20
        assert np.allclose(parts["audio"], parts["speech"] + parts["noise"], atol=1e-6)
    noise = coloured_noise(1 << 14, colour, rng)
    power = np.abs(np.fft.rfft(noise)) ** 2
    low, high = power[10:200].mean(), power[4000:8000].mean()  # pink ~ 1/f, brown ~ 1/f^2: falls with f
    assert np.mean(noise**2) == pytest.approx(1.0)
    assert (low / high > 10) == (colour != "white")


def test_the_gain_drifts_within_a_file_and_the_level_varies_across_files():
    curve = gain_curve_db(1000, -6.0, 6.0, rising=True)
    assert curve[0] == pytest.approx(-9.0) and curve[-1] == pytest.approx(-3.0) and np.all(np.diff(curve) >= 0)
    assert gain_curve_db(1000, -6.0, 6.0, rising=False)[0] == pytest.approx(-3.0)
    clean = np.full(20000, 0.05)
    levels = []
    for seed in range(6):
        parts = robust_parts(clean, [(0, 20000)], np.random.default_rng(seed), level_db=(-18, 0), drift_db=6)
        ratio_db = 20 * np.log10(parts["speech"][-100:].mean() / parts["speech"][:100].mean())
        assert abs(ratio_db) == pytest.approx(6.0, abs=0.1) and np.sign(ratio_db) == np.sign(parts["drift_db"])
        levels.append(parts["level_db"])
    assert np.ptp(levels) > 3


def test_weak_words_stand_next_to_pauses_and_the_same_seed_gives_the_same_pool():
    pool = [(["water", "garden", "station", "water"], [False, True, False])] * 20
    got = weak_edges(pool, WORDS, 1.0, seed=0)
    for words, commas in got:
        assert commas == [False, True, False]
        assert words[0].startswith(("h", "f", "th", "s")) and words[2].startswith(("h", "f", "th", "s"))
        assert words[1].endswith(("f", "th", "s", "ce")) and words[3].endswith(("f", "th", "s", "ce"))
    assert weak_edges(pool, WORDS, 0.5, seed=1) == weak_edges(pool, WORDS, 0.5, seed=1)
    assert weak_edges(pool, WORDS, 0.0, seed=1) == pool
    with pytest.raises(EspeakCorpusError, match="weak"):
        weak_edges(pool, ["water"], 0.5, seed=0)


def test_the_script_writes_a_corpus(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "experiments" / "robust_corpus.py"
    spec = importlib.util.spec_from_file_location("_experiments_robust_corpus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--out", str(tmp_path), "--voices", "en-us+f3", "--utterances-per-speaker", "1", "--snr-db", "12,12"]
    module.main([*args, "--words", str(_word_file(tmp_path)), "--max-words", "4"])
    assert '"recordings": 1' in capsys.readouterr().out
    with open(tmp_path / "conditions.csv", newline="") as f:
        assert float(next(csv.DictReader(f))["snr_db"]) == 12.0


def _word_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS) + "\n")
    return path
