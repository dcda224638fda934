"""`jaxalign-align RUN CORPUS_DIR` end to end with the session's tiny corpus run (the `trained`
fixture of tests/conftest.py): the TextGrids, alignments.csv, unaligned.csv, --out rules, long
recordings, the run's front end, and the configurations refused in one line."""

import csv
import shutil

import numpy as np
import pytest
import soundfile
from praatio import textgrid

from jaxalign.config import ConfigError
from jaxalign.data.corpus import CorpusSpec, load_corpus
from jaxalign.data.dictionary import dictionary_text, read_dictionary
from jaxalign.training import train
from tests.corpora import BAD, TIGHT, UNKNOWN, align, train_cli, write_audio, write_textgrid_transcript
from tests.helpers import compose_config, tiny_config

pytestmark = pytest.mark.slow  # the session's tiny corpus run (`trained`) and jaxalign-align on it


@pytest.fixture(scope="module")
def aligned(trained):
    out = trained["root"] / "aligned"
    code, lines = align(trained["run"], trained["corpus"], "--out", out)
    assert code == 0, lines
    return out, lines


def read_tiers(path):
    grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=True)
    return grid, {name: [tuple(e) for e in grid.getTier(name).entries] for name in grid.tierNames}


def check_textgrid(path, words, pronunciations, duration):
    grid, tiers = read_tiers(path)
    assert list(grid.tierNames) == ["words", "phones"]
    assert grid.minTimestamp == 0 and grid.maxTimestamp == pytest.approx(duration, abs=1e-4)
    spoken_words = [e for e in tiers["words"] if e[2]]
    phones = [e for e in tiers["phones"] if e[2]]
    assert [e[2] for e in spoken_words] == words
    assert [e[2] for e in phones] == [p for pron in pronunciations for p in pron]
    for name in ("words", "phones"):  # the tier covers [0, duration] with ordered intervals
        entries = tiers[name]
        assert entries[0][0] == 0 and entries[-1][1] == pytest.approx(duration, abs=1e-4)
        assert all(a < b <= duration + 1e-4 for a, b, _ in entries)
        assert all(x[1] == y[0] for x, y in zip(entries, entries[1:]))
    at = 0
    for (begin, end, _), pron in zip(spoken_words, pronunciations):
        mine = phones[at : at + len(pron)]
        at += len(pron)
        assert mine[0][0] == begin and mine[-1][1] == end  # the word spans exactly its phones
        assert all(begin <= a < b <= end for a, b, _ in mine)
        assert all(x[1] == y[0] for x, y in zip(mine, mine[1:]))  # a word's phones abut
    return tiers


def test_align_writes_a_textgrid_per_good_recording(trained, aligned):
    out, _ = aligned
    written = sorted(p.relative_to(out).with_suffix("").as_posix() for p in out.rglob("*.TextGrid"))
    assert written == sorted([*trained["good"], *UNKNOWN])
    for rid in trained["good"]:
        words = (trained["corpus"] / f"{rid}.lab").read_text().split()
        duration = soundfile.info(trained["corpus"] / f"{rid}.wav").duration
        check_textgrid(out / f"{rid}.TextGrid", words, [trained["dictionary"][w] for w in words], duration)


def test_alignments_csv_holds_every_interval_and_a_confidence(trained, aligned):
    out, _ = aligned
    with open(out / "alignments.csv", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        assert next(reader) == ["recording", "tier", "begin", "end", "label", "confidence", "pronunciation"]
        rows = list(reader)
    assert sorted({r[0] for r in rows}) == sorted([*trained["good"], *UNKNOWN])
    confidence = np.array([float(r[5]) for r in rows])
    assert np.isfinite(confidence).all() and (confidence <= 0).all() and (confidence < 0).any()
    for rid in trained["good"]:
        _, tiers = read_tiers(out / f"{rid}.TextGrid")
        for tier in ("words", "phones"):
            mine = [(float(r[2]), float(r[3]), r[4]) for r in rows if r[0] == rid and r[1] == tier]
            assert len(mine) == len([e for e in tiers[tier] if e[2]])
            for (a, b, label), (ta, tb, tlabel) in zip(mine, [e for e in tiers[tier] if e[2]]):
                assert label == tlabel and a == pytest.approx(ta, abs=1e-4) and b == pytest.approx(tb, abs=1e-4)


def test_unaligned_csv_and_one_line_each_name_exactly_the_bad_recordings(trained, aligned):
    out, lines = aligned
    with open(out / "unaligned.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["recording", "reason"]
    bad = {**BAD, TIGHT: trained["tight"]}
    reasons = dict(rows[1:])
    assert sorted(reasons) == sorted(bad) and len(rows) == 1 + len(bad)
    for rid, words in bad.items():
        assert words in reasons[rid], (rid, reasons[rid])
        assert [x for x in lines if f"unaligned {rid}:" in x] == [f"jaxalign-align: unaligned {rid}: {reasons[rid]}"]
    assert all(x.startswith("jaxalign-align: ") for x in lines if "unaligned" in x)
    assert reasons[TIGHT] == trained["tight"]
    # Training left out the same recordings with the same reasons, TIGHT too (too short for its grid
    # of 2 sub-states a phone: issue 26), and wrote the dictionary the aligner reads: the corpus' own,
    # less the line without phones, plus the unknown words as spn (data.oov=spn).
    with open(trained["run"] / "corpus_unaligned.csv", newline="", encoding="utf-8") as f:
        trained_out = dict(list(csv.reader(f))[1:])
    assert sorted(trained_out) == sorted(bad) and trained_out[TIGHT] == trained["tight"]
    assert [x for x in trained["console"] if TIGHT in x] == [f"jaxalign: unaligned {TIGHT}: {trained['tight']}"]
    run_dictionary = read_dictionary(trained["run"] / "dictionary.txt", "sil")
    source = read_dictionary(trained["source_dictionary"], "sil")[0]
    assert run_dictionary == ({**source, **{word: [["spn"]] for word in UNKNOWN.values()}}, [])


def test_an_unknown_word_is_aligned_as_spn_under_its_own_name(trained, aligned):
    """data.oov=spn (the default): the recordings with a word the dictionary lacks are aligned; the
    words tier shows the word, the phones tier `spn` (one interval spanning the word), in the
    TextGrid and in alignments.csv; they did not train the run, which has no spn class."""
    out, _ = aligned
    from jaxalign import load_run

    run = load_run(trained["run"])
    assert "spn" not in run.vocab and "sil" in run.vocab
    with open(out / "alignments.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    for rid, word in UNKNOWN.items():
        words = (trained["corpus"] / f"{rid}.lab").read_text().casefold().split()
        assert word in words
        prons = [["spn"] if w == word else trained["dictionary"][w] for w in words]
        duration = soundfile.info(trained["corpus"] / f"{rid}.wav").duration
        tiers = check_textgrid(out / f"{rid}.TextGrid", words, prons, duration)
        (spoken,) = [e for e in tiers["words"] if e[2] == word]
        assert (spoken[0], spoken[1], "spn") in tiers["phones"]
        mine = [(r[1], r[4]) for r in rows if r[0] == rid]
        assert ("words", word) in mine and ("phones", "spn") in mine


def test_align_again_needs_overwrite_and_another_dictionary_is_used(trained, aligned, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(aligned[0], out)
    before = (out / "alignments.csv").read_text()
    code, lines = align(trained["run"], trained["corpus"], "--out", out)
    assert code == 1 and len(lines) == 1 and lines[0].startswith("jaxalign-align: error: --out")
    assert "pass --overwrite" in lines[0] and (out / "alignments.csv").read_text() == before

    # Another dictionary: one word dropped (its recordings are aligned with it as spn), one spoken
    # backwards.
    dropped, changed = "basket", "station"
    lines_of = [f"{w}\t{' '.join(p[::-1] if w == changed else p)}\n" for w, p in trained["dictionary"].items()]
    other = tmp_path / "other.txt"
    other.write_text("".join(x for x in lines_of if not x.startswith(f"{dropped}\t")), encoding="utf-8")
    (out / "stale").mkdir()
    (out / "stale" / "old.TextGrid").write_text("an earlier run's\n")
    (out / "notes.txt").write_text("mine\n")
    code, lines = align(trained["run"], trained["corpus"], "--out", out, "--dictionary", other, "--overwrite")
    assert code == 0, lines
    # files it did not write stay, a TextGrid of another tool's too
    assert (out / "stale" / "old.TextGrid").exists() and (out / "notes.txt").read_text() == "mine\n"
    transcripts = {rid: (trained["corpus"] / f"{rid}.lab").read_text().split() for rid in trained["good"]}
    with_dropped = sorted(rid for rid, words in transcripts.items() if dropped in words)
    with_changed = [rid for rid, words in transcripts.items() if changed in words and dropped not in words]
    assert with_dropped and with_changed
    with open(out / "unaligned.csv", newline="", encoding="utf-8") as f:
        reasons = dict(list(csv.reader(f))[1:])
    assert sorted(reasons) == sorted({*BAD, TIGHT})
    written = sorted(p.relative_to(out).with_suffix("").as_posix() for p in out.rglob("*.TextGrid"))
    assert written == sorted({*trained["good"], *UNKNOWN, "stale/old"})
    for rid in with_dropped:
        words = transcripts[rid]
        prons = [["spn"] if w == dropped else trained["dictionary"][w] for w in words]
        check_textgrid(out / f"{rid}.TextGrid", words, prons, soundfile.info(trained["corpus"] / f"{rid}.wav").duration)
    for rid in with_changed:
        words = transcripts[rid]
        prons = [trained["dictionary"][w][::-1] if w == changed else trained["dictionary"][w] for w in words]
        check_textgrid(out / f"{rid}.TextGrid", words, prons, soundfile.info(trained["corpus"] / f"{rid}.wav").duration)


def test_out_inside_the_corpus_is_refused(trained):
    for out in (trained["corpus"] / "aligned", trained["corpus"] / "en-us", trained["corpus"]):
        existed = out.exists()
        code, lines = align(trained["run"], trained["corpus"], "--out", out, "--overwrite")
        assert code == 1 and len(lines) == 1 and "is inside the corpus" in lines[0], lines
        assert out.exists() == existed
    assert not list(trained["corpus"].rglob("*.TextGrid"))


def test_overwrite_keeps_textgrids_it_did_not_write(trained, tmp_path):
    data = tmp_path / "data"
    corpus = data / "corpus"
    shutil.copytree(trained["corpus"] / "en-us_m3", corpus / "en-us_m3")
    rid = trained["good"][-1]
    lab = corpus / f"{rid}.lab"
    duration = soundfile.info(lab.with_suffix(".wav")).duration
    write_textgrid_transcript(lab.with_suffix(".TextGrid"), lab.read_text().split(), duration, "long_textgrid")
    lab.unlink()
    code, lines = align(trained["run"], corpus, "--out", data, "--overwrite")
    assert lab.with_suffix(".TextGrid").is_file(), lines  # the corpus' transcript is still there
    if code == 0:  # aligned from that transcript
        assert (data / f"{rid}.TextGrid").is_file() and rid not in (data / "unaligned.csv").read_text()
    else:  # or refused, in one line
        assert code == 1 and len(lines) == 1 and lines[0].startswith("jaxalign-align: error:"), lines


def test_a_recording_with_a_nan_sample_is_left_out_and_the_others_aligned(trained, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(trained["corpus"] / "en-us_m3", corpus / "en-us_m3")
    audio, rate = soundfile.read(corpus / "en-us_m3" / "en-us_m3_0000.wav", dtype="float32")
    audio[len(audio) // 2] = np.nan
    write_audio(corpus / "en-us_m3" / "nan.wav", audio, rate, subtype="FLOAT")
    shutil.copy(corpus / "en-us_m3" / "en-us_m3_0000.lab", corpus / "en-us_m3" / "nan.lab")
    code, lines = align(trained["run"], corpus, "--out", tmp_path / "out")
    assert code == 0, lines
    with open(tmp_path / "out" / "unaligned.csv", newline="", encoding="utf-8") as f:
        assert [r[0] for r in list(csv.reader(f))[1:]] == ["en-us_m3/nan"]
    assert len(list((tmp_path / "out").rglob("*.TextGrid"))) == 6


def corpus_overrides(trained):
    return {"data": "corpus", "data.root": str(trained["corpus"]), "data.dictionary": str(trained["run"] / "dictionary.txt"),
            "data.cache_dir": str(trained["root"] / "cache"), "model": "gru", "model.hidden": 16,
            "trainer.steps": 2, "trainer.progress": False}  # fmt: skip


def test_time_sync_and_ctc_are_refused_for_a_corpus(trained, tmp_path):
    cases = {
        "time_sync": ({"setup": "time_sync", "model": "bigru"}, "only setup=order_sync aligns"),
        "ctc": ({"setup": "order_sync", "align.schedule": "ctc"}, "align.schedule=ctc"),
    }
    for name, (overrides, words) in cases.items():
        config = compose_config({**corpus_overrides(trained), **overrides})
        with pytest.raises(ConfigError) as err:
            train(config, tmp_path / name)
        message = str(err.value)
        assert words in message and "data.silence" in message and "\n" not in message, message
        assert not (tmp_path / name / "checkpoints").exists() or not any((tmp_path / name / "checkpoints").iterdir())


def test_train_cli_refuses_time_sync_on_a_corpus_in_one_line(trained, tmp_path):
    proc = train_cli(tmp_path, "setup=time_sync", "model=bigru", *(f"{k}={v}" for k, v in corpus_overrides(trained).items() if k != "model"))  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("jaxalign-train: setup=time_sync:") and "only setup=order_sync aligns" in last


def test_train_cli_names_a_missing_corpus_folder_in_one_line(trained, tmp_path):
    proc = train_cli(tmp_path, "data=corpus", f"data.root={tmp_path / 'nowhere'}", f"data.dictionary={trained['run'] / 'dictionary.txt'}")  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("jaxalign-train: data.root: no corpus folder")


def test_aligning_a_corpus_with_a_run_not_trained_on_one_is_refused(trained, tmp_path):
    run_dir = tmp_path / "synthetic"
    train(tiny_config(), run_dir)
    out = tmp_path / "out"
    code, lines = align(run_dir, trained["corpus"], "--out", out)
    assert code == 1 and len(lines) == 2, lines  # the run's line, then the error
    assert lines[-1].startswith("jaxalign-align: error:") and "trained on data=synthetic" in lines[-1]
    assert "needs a data=corpus run" in lines[-1] and not out.exists()


def test_a_long_recording_is_aligned_in_a_band_with_its_optional_pauses(trained, tmp_path, monkeypatch):
    """The good recordings put end to end as one stream: aligned as a long recording (net over
    windows, coarse pass, banded Viterbi with optional rows), the words land where one pass over
    the whole stream puts them."""
    from jaxalign import load_run
    from jaxalign.aligner import run as inference
    from jaxalign.data.corpus import has_spoken_noise, utterance_sequences

    run = load_run(trained["run"])
    spec = CorpusSpec(root=str(trained["corpus"]), dictionary=str(trained["run"] / "dictionary.txt"),
                      cache_dir=str(trained["root"] / "cache"))  # fmt: skip
    corpus = load_corpus(spec, phones=run.vocab, say=lambda line: None)
    good = [u for u in corpus.utterances if not has_spoken_noise(u)]  # spn is no class of the net
    data = utterance_sequences(good, run.vocab, spec.silence)
    features = np.concatenate(data.features)
    labels = np.concatenate([y if i == 0 else y[1:] for i, y in enumerate(data.labels)])  # one pause between
    whole = run.outputs([features], [labels])[0]["positions"]
    monkeypatch.setattr(inference, "LONG_FRAMES", len(features) // 3)
    monkeypatch.setattr(inference, "CHUNK_FRAMES", len(features) // 4)
    monkeypatch.setattr(inference, "CHUNK_OVERLAP", len(features) // 4)
    long = run.outputs([features], [labels])[0]
    assert "band_width" in long  # it took the long path
    silence = run.vocab.index(spec.silence)
    assert labels[-1] == silence and labels[0] == silence
    assert np.all(np.diff(long["positions"]) >= 0) and long["positions"][-1] in (len(labels) - 2, len(labels) - 1)
    assert long["positions"][0] in (0, 1) and np.all(long["positions"] >= 0)
    mandatory = np.flatnonzero(labels != silence)
    assert set(mandatory) <= set(long["positions"].tolist())  # every phone is visited
    assert np.mean(long["positions"] == whole) > 0.95


def dictionary_file(path, entries):
    path.write_text("".join(f"{w}\t{' '.join(p)}\n" for w, prons in entries.items() for p in prons), encoding="utf-8")
    return path


def csv_rows(out):
    with open(out / "alignments.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_one_pronunciation_a_word_gives_todays_alignment_byte_for_byte(trained, tmp_path):
    """A dictionary of first pronunciations only: every TextGrid is the one the grid's forced
    alignment (`Run.outputs`' positions) gives, byte for byte; and the pronunciation graph itself,
    run on the same log-probs with one pronunciation a word, finds that same path."""
    from jaxalign import load_run
    from jaxalign.aligner.corpus import tiers, word_spans
    from jaxalign.aligner.export import write_textgrid
    from jaxalign.data.corpus import has_spoken_noise, utterance_sequences
    from jaxalign.setups.alternatives import align_alternatives

    single = dictionary_file(tmp_path / "single.txt", {w: [p] for w, p in trained["dictionary"].items()})
    out = tmp_path / "out"
    code, lines = align(trained["run"], trained["corpus"], "--out", out, "--dictionary", single)
    assert code == 0, lines
    run = load_run(trained["run"])
    spec = CorpusSpec(root=str(trained["corpus"]), dictionary=str(single), cache_dir=str(trained["root"] / "cache"))
    corpus = load_corpus(spec, phones=run.vocab, say=lambda line: None)
    good = [u for u in corpus.utterances if not has_spoken_noise(u) and u.recording.id in trained["good"]]
    data = utterance_sequences(good, run.vocab, spec.silence)
    outs = run.outputs(data.features, data.labels)
    silence = run.vocab.index("sil")
    prons = [[[[run.vocab.index(p) for p in ps]] for ps in u.pronunciations] for u in good]
    found = align_alternatives(run.setup, [o["log_probs"] for o in outs], prons, silence)
    for u, y, o, f in zip(good, data.labels, outs, found):
        np.testing.assert_array_equal(f.positions, o["positions"])
        np.testing.assert_array_equal(f.labels, y)
        log_post = run.setup.symbol_log_posteriors(o["log_probs"])
        today = tiers(o["positions"], y, word_spans(u), run.vocab, "sil", log_post, u.duration, run.clock)
        write_textgrid(tmp_path / "today.TextGrid", today, round(u.duration, 4))
        assert (out / f"{u.recording.id}.TextGrid").read_bytes() == (tmp_path / "today.TextGrid").read_bytes()
    assert {
        r["pronunciation"] for r in csv_rows(out) if r["tier"] == "words" and r["label"] in trained["dictionary"]
    } == {"0"}


def test_the_spoken_pronunciation_listed_second_is_chosen(trained, tmp_path):
    """A word given a wrong first pronunciation (another word's phones, reversed) and its spoken one
    second: the aligner picks the spoken one, the phones tier shows it and alignments.csv names its
    index (1) on the word's rows; the other words keep 0, an unknown word and the phones have none."""
    counts = {}
    for rid in trained["good"]:
        for w in set((trained["corpus"] / f"{rid}.lab").read_text().casefold().split()):
            counts[w] = counts.get(w, 0) + 1
    word = max(sorted(counts), key=counts.get)
    other = max((w for w in trained["dictionary"] if w != word), key=lambda w: len(trained["dictionary"][w]))
    wrong = trained["dictionary"][other][::-1]
    entries = {w: [p] for w, p in trained["dictionary"].items()}
    entries[word] = [wrong, trained["dictionary"][word]]
    out = tmp_path / "out"
    code, lines = align(
        trained["run"], trained["corpus"], "--out", out, "--dictionary", dictionary_file(tmp_path / "two.txt", entries)
    )
    assert code == 0, lines
    rows = csv_rows(out)
    mine = [r for r in rows if r["tier"] == "words" and r["label"] == word]
    assert len(mine) >= counts[word] and all(r["pronunciation"] == "1" for r in mine), mine
    assert {
        r["pronunciation"] for r in rows if r["tier"] == "words" and r["label"] not in (word, *UNKNOWN.values())
    } == {"0"}
    assert {r["pronunciation"] for r in rows if r["tier"] == "words" and r["label"] in UNKNOWN.values()} == {""}
    assert {r["pronunciation"] for r in rows if r["tier"] == "phones"} == {""}
    for rid in trained["good"]:
        words = (trained["corpus"] / f"{rid}.lab").read_text().casefold().split()
        duration = soundfile.info(trained["corpus"] / f"{rid}.wav").duration
        check_textgrid(out / f"{rid}.TextGrid", words, [trained["dictionary"][w] for w in words], duration)


def test_the_run_records_its_audio_front_end(trained):
    """The checkpoint keeps the front end the features came from; the aligner's clock is its clock."""
    from jaxalign import load_run
    from jaxalign.aligner.export import Clock

    run = load_run(trained["run"])
    assert run.data_info["front_end"] == {"sample_rate": 16000, "window": 0.025, "hop": 0.01, "mel_bins": 40}
    assert run.clock == Clock(0.01, 0.0075)


def test_chunks_share_the_corpus_batch_shapes_and_align_as_one(trained, aligned, tmp_path, monkeypatch):
    """Each chunk of recordings is batched in the buckets of the whole corpus (one compile per
    bucket, not per chunk), and the TextGrids are those of one chunk."""
    import jaxalign.aligner.corpus as corpus_module
    import jaxalign.aligner.run as run_module

    shapes, batcher = [], run_module.Batcher

    def recording(*args, **kwargs):
        made = batcher(*args, **kwargs)
        shapes.append((tuple(made.bounds), made.label_len))
        return made

    monkeypatch.setattr(run_module, "Batcher", recording)
    monkeypatch.setattr(corpus_module, "CHUNK", 3)
    out = tmp_path / "chunked"
    code, lines = align(trained["run"], trained["corpus"], "--out", out)
    assert code == 0, lines
    assert len(shapes) > 1 and len(set(shapes)) == 1, shapes
    one, _ = aligned
    for path in sorted(one.rglob("*.TextGrid")):
        assert (out / path.relative_to(one)).read_bytes() == path.read_bytes(), path


def test_training_writes_a_pause_probability_for_every_word_followed_by_another(trained):
    """The run's dictionary.txt carries MFA's silence probability column for every word a training
    recording follows with another word, within [PAUSE_FLOOR, 1 - PAUSE_FLOOR], and says so."""
    from jaxalign.data.dictionary import PAUSE_FLOOR, read_dictionary_with_probabilities

    read = read_dictionary_with_probabilities(trained["run"] / "dictionary.txt", "sil")
    followed = set()
    for rid in trained["good"]:
        followed |= set((trained["corpus"] / f"{rid}.lab").read_text().casefold().split()[:-1])
    assert followed <= set(read.pause_after) <= set(read.entries)
    assert all(PAUSE_FLOOR <= p <= 1 - PAUSE_FLOOR for ps in read.pause_after.values() for p in ps)
    assert any("a pause after" in line for line in trained["console"])


def test_the_pause_probability_after_a_word_decides_the_pauses_the_frames_leave_open(trained, tmp_path):
    """The same run aligned with every word's pause column at 0.99 and at 0.01: more pauses
    between words with the first, and the same words in every TextGrid."""
    entries = read_dictionary(trained["run"] / "dictionary.txt", "sil")[0]
    pauses = {}
    for p in (0.99, 0.01):
        path = tmp_path / f"pause_{p}.txt"
        path.write_text(dictionary_text(entries, pause_after={w: [p] * len(v) for w, v in entries.items()}))
        out = tmp_path / f"out_{p}"
        code, lines = align(trained["run"], trained["corpus"], "--out", out, "--dictionary", path)
        assert code == 0, lines
        pauses[p] = 0
        for rid in trained["good"]:
            _, tiers = read_tiers(out / f"{rid}.TextGrid")
            words = tiers["words"]
            inner = [i for i in range(1, len(words) - 1) if not words[i][2] and words[i - 1][2] and words[i + 1][2]]
            pauses[p] += len(inner)
            assert [e[2] for e in words if e[2]] == (trained["corpus"] / f"{rid}.lab").read_text().casefold().split()
    assert pauses[0.99] > pauses[0.01], pauses


def test_a_run_trained_on_one_row_pauses_aligns_pauses_of_three_frames_at_least(trained, tmp_path):
    """Training's pauses are one row (align.pause_states=1), jaxalign-align's blocks of
    align.aligned_pause_states=3 rows, each reading the one silence column training learnt: every
    pause between two words lasts 3 frames (30 ms) or more, here with the pauses made likely
    (every word's pause column at 0.99) so that there are some."""
    import jaxalign

    run = jaxalign.load_run(trained["run"])
    assert (run.config.align.pause_states, run.config.align.aligned_pause_states) == (1, 3)
    assert (run.setup.pause_states, run.setup.pause_columns) == (3, 1)
    entries = read_dictionary(trained["run"] / "dictionary.txt", "sil")[0]
    path = tmp_path / "pauses.txt"
    path.write_text(dictionary_text(entries, pause_after={w: [0.99] * len(v) for w, v in entries.items()}))
    code, lines = align(trained["run"], trained["corpus"], "--out", tmp_path / "out", "--dictionary", path)
    assert code == 0, lines
    inner = []
    for rid in trained["good"]:
        _, tiers = read_tiers(tmp_path / "out" / f"{rid}.TextGrid")
        words = tiers["words"]
        inner += [e[1] - e[0] for i, e in enumerate(words[1:-1], 1) if not e[2] and words[i - 1][2] and words[i + 1][2]]
    assert inner and all(d >= 0.030 - 1e-4 for d in inner), inner
