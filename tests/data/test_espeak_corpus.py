"""The espeak-ng corpus in MFA layout with its true intervals, and `boundary_agreement` on intervals."""

import csv
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
from praatio import textgrid

from jaxalign.data.espeak_corpus import EspeakCorpusError, write_espeak_corpus
from jaxalign.data.textgrid import write_textgrid
from jaxalign.decoding import boundary_agreement

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _script(name):
    spec = importlib.util.spec_from_file_location(f"_experiments_{name}", EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WORDS = ["station", "hello", "all", "film", "water", "basket", "time", "button", "garden", "piano"]


def _dictionary(path) -> dict[str, list[list[str]]]:
    prons = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        word, phones = line.split("\t")
        prons.setdefault(word, []).append(phones.split(" "))
    assert [line.split("\t")[0] for line in lines] == sorted(line.split("\t")[0] for line in lines)
    return prons


def _tiers(path) -> dict[str, list]:
    grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    return {name: [tuple(e) for e in grid.getTier(name).entries] for name in grid.tierNames}


@pytest.fixture(scope="module", params=[16000, 22050])
def corpus(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"corpus{request.param}")
    summary = write_espeak_corpus(
        out, speakers=2, utterances_per_speaker=2, max_words=4, sample_rate=request.param, seed=1, words=WORDS
    )
    return out, summary


def test_layout_audio_transcripts_and_truth(corpus):
    out, summary = corpus
    rate = summary["sample_rate"]
    assert summary["recordings"] == 4 and summary["speakers"] == ["en-us", "en-us_m3"]
    wavs = sorted(p.relative_to(out / "corpus").as_posix() for p in (out / "corpus").rglob("*.wav"))
    assert wavs == [f"{s}/{s}_{u:04d}.wav" for s in ("en-us", "en-us_m3") for u in range(2)]
    prons = _dictionary(out / "dictionary.txt")
    assert set(prons) <= set(WORDS) and len(prons) == summary["dictionary_words"]
    with open(out / "truth.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["recording", "tier", "begin", "end", "label"]
    seconds = 0.0
    for wav in wavs:
        audio, sr = soundfile.read(out / "corpus" / wav)
        info = soundfile.info(out / "corpus" / wav)
        assert sr == rate and info.subtype == "PCM_16" and audio.ndim == 1 and np.abs(audio).max() > 0.05
        duration = len(audio) / rate
        seconds += duration
        words = (out / "corpus" / wav).with_suffix(".lab").read_text().split()
        tiers = _tiers((out / "truth" / wav).with_suffix(".TextGrid"))
        assert set(tiers) == {"words", "phones"}
        assert [w for *_, w in tiers["words"]] == words and 1 <= len(words) <= 4
        grid = textgrid.openTextgrid(str((out / "truth" / wav).with_suffix(".TextGrid")), includeEmptyIntervals=True)
        assert math.isclose(grid.maxTimestamp, duration)
        assert grid.getTier("words").entries[0].label == grid.getTier("words").entries[-1].label == ""  # padding
        phones = tiers["phones"]
        for name in ("words", "phones"):
            ivs = tiers[name]
            assert all(0 < b < e < duration for b, e, _ in ivs)
            assert all(e1 <= b2 for (_, e1, _), (b2, _, _) in zip(ivs, ivs[1:]))
        # every phone inside its word; the words' phones, word by word, are dictionary pronunciations
        used = 0
        for begin, end, word in tiers["words"]:
            inside = [p for b, e, p in phones if begin - 1e-9 <= b and e <= end + 1e-9]
            assert phones[used][0] == pytest.approx(begin) and phones[used + len(inside) - 1][1] == pytest.approx(end)
            assert inside in prons[word], (word, inside, prons[word])
            used += len(inside)
        assert used == len(phones)
        rec = wav.removesuffix(".wav")
        mine = [(r["tier"], float(r["begin"]), float(r["end"]), r["label"]) for r in rows if r["recording"] == rec]
        expect = [(n, round(b, 4), round(e, 4), lab) for n in ("words", "phones") for b, e, lab in tiers[n]]
        assert len(mine) == len(expect)
        assert all(a[0] == b[0] and a[3] == b[3] and abs(a[1] - b[1]) < 2e-4 for a, b in zip(mine, expect))
    assert summary["seconds"] == pytest.approx(seconds, abs=1e-2)


def test_same_seed_same_transcripts_and_refuses_to_overwrite(corpus, tmp_path):
    out, summary = corpus
    again = write_espeak_corpus(
        tmp_path, speakers=2, utterances_per_speaker=2, max_words=4, sample_rate=summary["sample_rate"], seed=1,
        words=WORDS,
    )  # fmt: skip
    assert (tmp_path / "dictionary.txt").read_text() == (out / "dictionary.txt").read_text()
    for lab in (out / "corpus").rglob("*.lab"):
        assert (tmp_path / "corpus" / lab.relative_to(out / "corpus")).read_text() == lab.read_text()
    assert again["recordings"] == 4
    with pytest.raises(EspeakCorpusError, match="not empty"):
        write_espeak_corpus(tmp_path, speakers=1, utterances_per_speaker=1, words=WORDS)


def test_scripts_write_a_corpus_and_score_the_truth_against_itself(tmp_path, capsys):
    _script("espeak_corpus").main(["--out", str(tmp_path), "--speakers", "2", "--utterances-per-speaker", "2"])
    printed = capsys.readouterr().out
    assert (
        "4 recordings" in printed and f"data.root={tmp_path / 'corpus'}" in printed and "jaxalign-align RUN" in printed
    )
    report = _script("corpus_report")
    report.main([str(tmp_path / "truth"), str(tmp_path / "truth"), "--json", str(tmp_path / "report.json")])
    result = json.loads((tmp_path / "report.json").read_text())
    for name in ("words", "phones"):
        scores = result["tiers"][name]
        assert scores["within_tolerance"] == 1.0 and scores["mean_error_ms"] == 0.0 and scores["boundaries"] > 0
        assert scores["recordings"] == 4 and scores["label_mismatches"] == scores["missing"] == 0
    # one recording missing, one with a word shifted by 30 ms
    aligned = tmp_path / "aligned"
    grids = sorted((tmp_path / "truth").rglob("*.TextGrid"))
    for path in grids[1:]:
        (aligned / path.parent.name).mkdir(parents=True, exist_ok=True)
        (aligned / path.parent.name / path.name).write_text(path.read_text())
    tiers = {name: [(b + 0.03, e + 0.03, lab) for b, e, lab in ivs] for name, ivs in _tiers(grids[1]).items()}
    duration = textgrid.openTextgrid(str(grids[1]), includeEmptyIntervals=False).maxTimestamp
    write_textgrid(aligned / grids[1].parent.name / grids[1].name, tiers, duration)
    result = report.report(aligned, tmp_path / "truth")
    for name in ("words", "phones"):
        scores = result["tiers"][name]
        assert scores["missing"] == 1 and scores["recordings"] == 3
        assert 0 < scores["within_tolerance"] < 1 and scores["mean_error_ms"] > 0


def _brute_force(predicted, truth, tolerance):
    errors, compared = [], 0
    for pred, true in zip(predicted, truth):
        if [p[2] for p in pred] != [t[2] for t in true]:
            continue
        compared += 1
        for p, t in zip(pred, true):
            errors += [abs(p[0] - t[0]), abs(p[1] - t[1])]
    n = len(errors)
    within = sum(1 for e in errors if e <= tolerance + 1e-9)
    ordered = sorted(errors)
    median = None if not n else (ordered[(n - 1) // 2] + ordered[n // 2]) / 2
    return {
        "boundaries": n,
        "within_tolerance": within / n if n else None,
        "mean_error_ms": 1000 * sum(errors) / n if n else None,
        "median_error_ms": None if median is None else 1000 * median,
        "recordings": compared,
        "label_mismatches": len(truth) - compared,
    }


def _random_intervals(rng, count):
    edges = np.cumsum(rng.uniform(0.01, 0.2, 2 * count))
    labels = [str(x) for x in rng.choice(["a", "b", "c"], count)]
    return [(float(edges[2 * i]), float(edges[2 * i + 1]), labels[i]) for i in range(count)]


@pytest.mark.parametrize("seed", range(5))
def test_boundary_agreement_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    truth = [_random_intervals(rng, int(rng.integers(1, 6))) for _ in range(6)]
    predicted = [[(b + rng.normal(0, 0.02), e + rng.normal(0, 0.02), lab) for b, e, lab in ivs] for ivs in truth]
    predicted[1] = predicted[1][:-1] if len(predicted[1]) > 1 else [*predicted[1], (9.0, 9.1, "a")]  # mismatch
    predicted[2] = [(b, e, lab + "x") for b, e, lab in predicted[2]]  # same count, other labels
    got, expect = boundary_agreement(predicted, truth, tolerance=0.02), _brute_force(predicted, truth, 0.02)
    assert got["label_mismatches"] == 2 and got["recordings"] == 4
    assert got.keys() == expect.keys()
    for key, value in expect.items():
        assert got[key] == pytest.approx(value), key


def test_boundary_agreement_tolerance_edge_and_shifts():
    truth = [[(0.1, 0.5, "a"), (0.5, 0.9, "b")], [(0.2, 0.4, "c")]]
    on_edge = [[(0.12, 0.52, "a"), (0.5, 0.88, "b")], [(0.2, 0.4, "c")]]  # |0.52 - 0.5| > 0.02 in floats
    got = boundary_agreement(on_edge, truth, tolerance=0.02)
    assert got["boundaries"] == 6 and got["within_tolerance"] == 1.0 and got["label_mismatches"] == 0
    assert got["mean_error_ms"] == pytest.approx(1000 * 0.06 / 6) and got["median_error_ms"] == pytest.approx(10.0)
    beyond = [[(0.1205, 0.5, "a"), (0.5, 0.9, "b")], [(0.2, 0.4, "c")]]
    assert boundary_agreement(beyond, truth)["within_tolerance"] == pytest.approx(5 / 6)
    assert boundary_agreement(truth, truth) == {"boundaries": 6, "within_tolerance": 1.0, "mean_error_ms": 0.0,
                                                "median_error_ms": 0.0, "recordings": 2, "label_mismatches": 0}  # fmt: skip
    nothing = boundary_agreement([[(0.1, 0.5, "x")]], [[(0.1, 0.5, "a")]])
    assert nothing["boundaries"] == 0 and nothing["within_tolerance"] is None and nothing["label_mismatches"] == 1
    with pytest.raises(ValueError, match="recordings"):
        boundary_agreement([[]], [])
