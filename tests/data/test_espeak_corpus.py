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


PHRASE_WORDS = ["garden", "water", "cabin", "hello"]  # "garden": en-us `g A@ d @ n`, en-gb-scotland `g A@ r d @ n`
PHRASE_SPEC = dict(utterances_per_speaker=3, min_words=3, max_words=5, comma_probability=0.5, seed=2)


def _spoken(path) -> dict[str, list[tuple[str, str]]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for row in rows:
        out.setdefault(row["recording"], []).append((int(row["index"]), row["word"], row["pronunciation"]))
    assert all([i for i, *_ in said] == list(range(len(said))) for said in out.values())
    return {rec: [(w, p) for _, w, p in said] for rec, said in out.items()}


@pytest.fixture(scope="module")
def phrases(tmp_path_factory):
    out = tmp_path_factory.mktemp("phrases")
    summary = write_espeak_corpus(
        out, continuous=True, voices=["en-us", "en-gb-scotland"], words=PHRASE_WORDS, **PHRASE_SPEC
    )
    return out, summary


def test_word_events_give_each_phoneme_its_word():
    from jaxalign.data.espeak import get_espeak

    espeak = get_espeak()
    espeak.set_voice("en-us")
    audio, events = espeak.synth_events("hello, garden water")
    words = [(e.text_position, e.length, e.number) for e in events if e.kind == "word"]
    assert words == [(1, 5, 1), (8, 6, 2), (15, 5, 3)]
    phonemes = [e for e in events if e.kind == "phoneme"]
    assert {e.text_position for e in phonemes if not e.name.startswith("_")} == {1, 8, 15}
    assert [e.sample for e in phonemes] == sorted(e.sample for e in phonemes) and phonemes[-1].sample <= len(audio)
    assert any(e.kind == "end" for e in events)
    _, plain = espeak.synth("hello, garden water")
    assert [m for _, m in plain] == [e.name for e in phonemes]


def test_continuous_words_tile_the_speech_with_pauses_at_commas(phrases):
    from jaxalign.data.espeak_corpus import sentence_pool

    out, summary = phrases
    assert summary["speakers"] == ["en-us", "en-gb-scotland"] and summary["recordings"] == 6
    pool = sentence_pool(sorted(PHRASE_WORDS), 3, 3, 5, 0.5, 2)
    assert any(any(commas) for _, commas in pool) and any(not all(commas) for _, commas in pool)
    spoken = _spoken(out / "pronunciations.csv")
    for speaker in summary["speakers"]:
        for u, (said, commas) in enumerate(pool):
            rec = f"{speaker}/{speaker}_{u:04d}"
            assert (out / "corpus" / f"{rec}.lab").read_text() == " ".join(said) + "\n"  # same sentences, no commas
            duration = soundfile.info(out / "corpus" / f"{rec}.wav").duration
            tiers = _tiers(out / "truth" / f"{rec}.TextGrid")
            words, phones = tiers["words"], tiers["phones"]
            assert [w for *_, w in words] == said == [w for w, _ in spoken[rec]]
            assert 0 < words[0][0] and words[-1][1] < duration
            for k in range(len(words) - 1):
                gap = words[k + 1][0] - words[k][1]
                assert gap >= 0 and (gap > 1e-3) == commas[k], (rec, k, gap, commas)  # a pause only at a comma
            used = 0
            for (begin, end, _), (_, pron) in zip(words, spoken[rec]):
                inside = [(b, e, p) for b, e, p in phones if begin - 1e-9 <= b and e <= end + 1e-9]
                assert inside == phones[used : used + len(inside)] and inside  # in order, each phone in one word
                assert inside[0][0] == pytest.approx(begin) and inside[-1][1] == pytest.approx(end)
                assert all(e == pytest.approx(b) for (_, e, _), (b, _, _) in zip(inside, inside[1:]))  # they tile it
                assert " ".join(p for *_, p in inside) == pron  # the truth's pronunciation is the phones tier's
                used += len(inside)
            assert used == len(phones)


def test_continuous_dictionary_lists_every_voices_pronunciation_en_us_first(phrases):
    from jaxalign.data.espeak import get_espeak
    from jaxalign.data.espeak_corpus import speak_word

    out, summary = phrases
    prons = _dictionary(out / "dictionary.txt")
    spoken = _spoken(out / "pronunciations.csv")
    assert all(p.split() in prons[w] for said in spoken.values() for w, p in said)  # the spoken ones are listed
    assert all(len({tuple(p) for p in ps}) == len(ps) for ps in prons.values())  # distinct
    citation = {}
    for voice in ("en-gb-scotland", "en-us"):
        get_espeak().set_voice(voice)
        citation[voice] = [p for *_, p in speak_word("garden", 175, 50)[1]]
    assert citation["en-us"] != citation["en-gb-scotland"]
    assert prons["garden"][0] == citation["en-us"] and citation["en-gb-scotland"] in prons["garden"]
    by_voice = {v: {p for rec, said in spoken.items() if rec.startswith(v + "/") for w, p in said if w == "garden"}
                for v in summary["speakers"]}  # fmt: skip
    assert by_voice["en-us"] and by_voice["en-gb-scotland"] and not by_voice["en-us"] & by_voice["en-gb-scotland"]
    ambiguous = [(w, p) for said in spoken.values() for w, p in said if len(prons[w]) > 1]
    assert summary["ambiguous_tokens"] == len(ambiguous) > 0
    assert summary["tokens_not_first"] == sum(p.split() != prons[w][0] for w, p in ambiguous) > 0


def test_continuous_script_and_pronunciation_report(tmp_path, capsys):
    (tmp_path / "words.txt").write_text("\n".join(PHRASE_WORDS) + "\n")
    args = ["--out", str(tmp_path), "--continuous", "--voices", "en-us,en-gb-scotland", "--words"]
    _script("espeak_corpus").main([*args, str(tmp_path / "words.txt"), "--utterances-per-speaker", "2"])
    printed = capsys.readouterr().out
    assert "4 recordings" in printed and "spoken otherwise than the first listed" in printed
    report = _script("corpus_report")
    truth = tmp_path / "truth"
    report.main([str(truth), str(truth), "--json", str(tmp_path / "report.json")])
    result = json.loads((tmp_path / "report.json").read_text())
    assert result["pauses"]["pause_inserted"] == 0 and result["pauses"]["boundaries_within_tolerance"] == 1
    prons = result["pronunciations"]
    assert prons["occurrences"] > 0 and prons["aligned_is_spoken"] == 1.0 and prons["recordings_skipped"] == 0
    dictionary = report.read_dictionary(tmp_path / "dictionary.txt")
    spoken = report.read_spoken(tmp_path / "pronunciations.csv")
    ambiguous = [(w, p) for said in spoken.values() for w, p in said if len(dictionary[w]) > 1]
    assert prons["occurrences"] == len(ambiguous)
    assert prons["first_listed_is_spoken"] == pytest.approx(
        sum(dictionary[w][0] == p for w, p in ambiguous) / len(ambiguous)
    )
    # an aligner that always chose the first-listed pronunciation scores the baseline
    first = tmp_path / "first"
    for path in truth.rglob("*.TextGrid"):
        rel = path.relative_to(truth)
        tiers = _tiers(path)
        phones = []
        for begin, end, word in tiers["words"]:
            chosen = dictionary[word][0].split()
            edges = np.linspace(begin, end, len(chosen) + 1)
            phones += [(float(a), float(b), p) for a, b, p in zip(edges, edges[1:], chosen)]
        duration = textgrid.openTextgrid(str(path), includeEmptyIntervals=False).maxTimestamp
        write_textgrid(first / rel, {"words": tiers["words"], "phones": phones}, duration)
    got = report.pronunciation_report(first, truth, spoken, dictionary, ignore=frozenset({"_"}))
    assert got["aligned_is_spoken"] == pytest.approx(prons["first_listed_is_spoken"]) and got["aligned_is_spoken"] < 1


def test_the_pause_report_counts_pauses_put_where_the_truth_has_none(tmp_path):
    """Two junctions without a pause in the truth: the aligner pauses 100 ms in one and moves both of
    its boundaries by 50 ms; the other it places exactly. A true pause is not a junction counted."""
    truth = [(0.0, 0.5, "a"), (0.5, 1.0, "b"), (1.0, 1.4, "c"), (1.6, 2.0, "d")]
    aligned = [(0.0, 0.45, "a"), (0.55, 1.0, "b"), (1.0, 1.3, "c"), (1.7, 2.0, "d")]
    for folder, words in (("truth", truth), ("aligned", aligned)):
        write_textgrid(tmp_path / folder / "s" / "u.TextGrid", {"words": words}, 2.0)
    got = _script("corpus_report").pause_report(tmp_path / "aligned", tmp_path / "truth", tolerance=0.02)
    assert got["junctions_without_pause"] == 2 and got["pause_inserted"] == 0.5
    assert got["inserted_median_ms"] == pytest.approx(100) and got["boundaries_within_tolerance"] == 0.5
    assert got["true_pauses"] == 1 and got["pause_missed"] == 0  # the aligner pauses between c and d too


def test_the_pause_edge_report_signs_the_errors_at_true_pauses(tmp_path):
    """Pauses before "a" (leading silence), between "b" and "c", after "c" (trailing silence): starts after
    a pause at +30 ms ("a") and +10 ms ("c"), ends before one at -40 ms ("b") and 0 ms ("c"); the
    junction a|b is no pause edge."""
    truth = [(0.1, 0.5, "a"), (0.5, 1.0, "b"), (1.2, 1.8, "c")]
    aligned = [(0.13, 0.52, "a"), (0.52, 0.96, "b"), (1.21, 1.8, "c")]
    for folder, words in (("truth", truth), ("aligned", aligned)):
        write_textgrid(tmp_path / folder / "s" / "u.TextGrid", {"words": words}, 2.0)
    got = _script("corpus_report").pause_edge_report(tmp_path / "aligned", tmp_path / "truth", tolerance=0.02)
    starts, ends = got["start_after_pause"], got["end_before_pause"]
    assert starts["boundaries"] == 2 and starts["median_signed_ms"] == pytest.approx(20)
    assert starts["within_tolerance"] == 0.5
    assert ends["boundaries"] == 2 and ends["median_signed_ms"] == pytest.approx(-20)
    assert ends["within_tolerance"] == 0.5 and got["recordings_skipped"] == 0
