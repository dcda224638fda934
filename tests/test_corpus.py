"""`data=corpus` (MFA-layout corpus folders) and `jaxalign-align RUN CORPUS_DIR`: order_sync's grid
with one skippable silence row, the optional silence in the Viterbi, the corpora that load (rates,
channels, formats, transcripts, layouts, dictionaries), the recordings left out with their reason,
and the aligner end to end with one tiny run trained for the whole module."""

import contextlib
import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile
import soxr
from praatio import textgrid

from jaxalign import uniform_align, viterbi_align
from jaxalign.align.grid import substate_grid
from jaxalign.aligner import cli as align_cli
from jaxalign.config import ConfigError
from jaxalign.data.corpus import CorpusError, CorpusSpec, load_corpus
from jaxalign.data.dictionary import espeak_phones, read_dictionary
from jaxalign.data.espeak_corpus import write_espeak_corpus
from jaxalign.setups import make_setup
from jaxalign.training import train
from tests.helpers import compose_config, tiny_config

ROOT = Path(__file__).resolve().parents[1]
# Words whose espeak phones start with no digit (test_a_dictionary_phone_that_looks_like_a_number_is_kept).
WORDS = ["station", "hello", "water", "basket", "time", "button", "garden", "piano"]


# -- 1. substate_grid against a brute-force construction ----------------------------------------


def brute_grid(labels, lengths, k, optional):
    """The grid built row by row: k rows s*k+j per symbol s, one row s*k for the optional symbol."""
    b, num_labels = labels.shape
    rows = np.full((b, num_labels * k), -1)
    pads = np.ones((b, num_labels * k))
    flags = np.zeros((b, num_labels * k))
    label_of = np.full((b, num_labels * k), -1)
    for n in range(b):
        r = 0
        for i in range(lengths[n]):
            s = int(labels[n, i])
            for j in range(1 if s == optional else k):
                rows[n, r], pads[n, r], flags[n, r], label_of[n, r] = s * k + j, 0, s == optional, i
                r += 1
    return rows, pads, (flags if optional is not None else None), label_of


def grid_case(rng, optional, fill=-1):
    """One batch (labels, lengths): random targets, and fixed ones (repeats, all optional symbols
    but one, optional symbols first and last, a fully padded target). Padding holds `fill` (the
    batcher's -1), or random ids where `fill` is None."""
    o = 0 if optional is None else optional
    fixed = [[2, 2, 2, 2, 2], [o, o, 3, o, o, o], [o, 1, o, 1, o, 4], [4, o, o, 1, 1, o], [], [o], [1]]
    lengths = np.concatenate([rng.integers(0, 9, size=17), [len(f) for f in fixed]])
    labels = rng.integers(0, 5, size=(len(lengths), 8))
    for n, f in enumerate(fixed):
        labels[17 + n, : len(f)] = f
    for n, length in enumerate(lengths):
        labels[n, length:] = rng.choice([-1, 0, o], size=8 - length) if fill is None else fill
    return labels, lengths


@pytest.mark.parametrize("optional", [None, 0, 3])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_substate_grid_matches_a_brute_force_construction(k, optional):
    rng = np.random.default_rng([k, 9 if optional is None else optional])
    # Padding as the batcher writes it (-1); with an optional symbol also any id, the optional one too.
    for fill in (-1,) if optional is None else (-1, None):
        labels, lengths = grid_case(rng, optional, fill)
        pads = (np.arange(labels.shape[1])[None, :] >= lengths[:, None]).astype(np.float32)
        grid = jax.jit(substate_grid, static_argnums=(2, 3))(
            jnp.asarray(labels, jnp.int32), jnp.asarray(pads), k, optional
        )
        rows, row_pads, flags, label_of = brute_grid(labels, lengths, k, optional)
        np.testing.assert_array_equal(np.asarray(grid.rows), rows, err_msg=str(labels))
        np.testing.assert_array_equal(np.asarray(grid.paddings), row_pads, err_msg=str(labels))
        np.testing.assert_array_equal(np.asarray(grid.label_of), label_of, err_msg=str(labels))
        if optional is None:
            assert grid.optional is None
        else:
            np.testing.assert_array_equal(np.asarray(grid.optional), flags, err_msg=str(labels))
        assert grid.rows.dtype == jnp.int32 and grid.label_of.dtype == jnp.int32


def test_substate_grid_rows_are_minus_one_on_padding_whatever_the_padded_labels_hold():
    labels, pads = jnp.asarray([[3, 1, 0, 2]]), jnp.asarray([[0.0, 0.0, 1.0, 1.0]])
    for k in (2, 1):
        assert np.asarray(substate_grid(labels, pads, k).rows)[0, 2 * k :].tolist() == [-1] * 2 * k, k


# -- 2. the optional silence in the Viterbi -----------------------------------------------------

SIL, A, B = 0, 1, 2
TARGET = [SIL, A, SIL, B, SIL]  # sil a sil b sil


def frame_log_probs(frames, k):
    """(1, T, 3k) log-probs that clearly show (symbol, sub-state) on each frame."""
    out = np.full((len(frames), 3 * k), np.log(0.02), np.float32)
    for t, (s, j) in enumerate(frames):
        out[t, s * k + j] = np.log(0.9)
    return (out - np.logaddexp.reduce(out, axis=1, keepdims=True))[None]


def spoken(symbol, k, frames_each=3):
    return [(symbol, j) for j in range(k) for _ in range(frames_each)]


def aligned_labels(frames, k):
    """Index into TARGET of each frame's row: by viterbi_align on substate_grid's rows, and by
    order_sync's decode (which must agree); also the grid and the rows of the path."""
    lp = frame_log_probs(frames, k)
    labels, pads, frame_pads = jnp.asarray([TARGET]), jnp.zeros((1, len(TARGET))), jnp.zeros(lp.shape[:2])
    grid = substate_grid(labels, pads, k, SIL)
    ali = viterbi_align(lp, frame_pads, grid.rows, grid.paddings, grid.optional)
    rows = np.asarray(ali.positions[0])
    by_grid = np.asarray(grid.label_of[0])[rows]
    setup = make_setup(compose_config({"setup": "order_sync", "model": "gru", "align.states_per_symbol": k}), 3, SIL)
    decoded = setup.decode(jnp.asarray(lp), {"labels": labels, "label_paddings": pads, "logit_paddings": frame_pads})
    np.testing.assert_array_equal(np.asarray(decoded["positions"][0]), by_grid)
    return by_grid, rows, grid


@pytest.mark.parametrize("k", [1, 2, 3])
def test_an_unspoken_pause_gets_no_frame_and_a_spoken_one_gets_its_frames(k):
    n = 3 * k
    by_label, rows, grid = aligned_labels(spoken(A, k) + spoken(B, k), k)
    assert by_label.tolist() == [1] * n + [3] * n  # no frame for any of the three silences
    assert not np.asarray(grid.optional[0])[rows].any()

    frames = [(SIL, 0)] * 2 + spoken(A, k) + [(SIL, 0)] * 4 + spoken(B, k) + [(SIL, 0)] * 2
    by_label, rows, grid = aligned_labels(frames, k)
    assert by_label.tolist() == [0] * 2 + [1] * n + [2] * 4 + [3] * n + [4] * 2
    assert np.asarray(grid.rows[0])[rows][by_label == 2].tolist() == [SIL * k] * 4


@pytest.mark.parametrize("k", [2, 3])
def test_with_sub_states_a_pause_is_one_row_skipped_whole_or_entered_whole(k):
    # Only the middle pause is spoken, and its frames look like the silence's LAST sub-state, which
    # has no row: the pause is still entered, on its one row, and the other two are skipped whole.
    frames = spoken(A, k) + [(SIL, k - 1)] * 2 + [(SIL, 0)] * 2 + spoken(B, k)
    by_label, rows, grid = aligned_labels(frames, k)
    assert by_label.tolist() == [1] * 3 * k + [2] * 4 + [3] * 3 * k
    silence_rows = np.flatnonzero(np.asarray(grid.optional[0]) > 0)
    assert len(silence_rows) == 3 and (np.asarray(grid.rows[0])[silence_rows] == SIL * k).all()
    assert set(rows[by_label == 2].tolist()) == {silence_rows[1]}  # one row, all four frames
    assert not set(rows.tolist()) & {silence_rows[0], silence_rows[2]}


# -- 3. corpora that load ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Two espeak utterances at 44.1 kHz: {"wav": path, "words": [...], "dictionary": path, ...}."""
    out = tmp_path_factory.mktemp("source")
    write_espeak_corpus(out, speakers=1, utterances_per_speaker=2, min_words=2, sample_rate=44100, seed=3, words=WORDS)
    wavs = sorted((out / "corpus").rglob("*.wav"))
    return {
        "wavs": wavs,
        "wav": wavs[0],
        "words": wavs[0].with_suffix(".lab").read_text().split(),
        "dictionary": out / "dictionary.txt",
    }


def load(root, dictionary, cache, **spec):
    """load_corpus with its `say` lines: (Corpus, lines); the features as computed (data.normalise=none)
    unless `normalise` is given."""
    lines = []
    spec = {"normalise": "none", **spec}
    corpus = load_corpus(
        CorpusSpec(root=str(root), dictionary=str(dictionary), cache_dir=str(cache), **spec), say=lines.append
    )
    return corpus, lines


def test_features_are_normalised_per_speaker(source, tmp_path):
    """data.normalise=speaker: each speaker's frames have mean 0 and variance 1 in every mel channel,
    with the speaker's own statistics (a louder speaker gives the same features)."""
    pcm, rate = soundfile.read(source["wav"], dtype="float32")
    other, _ = soundfile.read(source["wavs"][1], dtype="float32")
    root = tmp_path / "corpus"
    for speaker, gain in (("quiet", 0.1), ("loud", 1.0)):
        for name, x in (("a", pcm), ("b", other)):
            write_audio(root / speaker / f"{name}.wav", x * gain, rate, subtype="FLOAT")
            (root / speaker / f"{name}.lab").write_text(source["wavs"][name == "b"].with_suffix(".lab").read_text())
    raw = by_id(load(root, source["dictionary"], tmp_path / "cache")[0])
    normed = by_id(load(root, source["dictionary"], tmp_path / "cache", normalise="speaker")[0])
    for speaker in ("quiet", "loud"):
        frames = np.concatenate([normed[f"{speaker}/{n}"].features for n in "ab"])
        np.testing.assert_allclose(frames.mean(axis=0), 0.0, atol=1e-4)
        np.testing.assert_allclose(frames.std(axis=0), 1.0, atol=1e-3)
        raw_frames = np.concatenate([raw[f"{speaker}/{n}"].features for n in "ab"])
        expected = (raw[f"{speaker}/a"].features - raw_frames.mean(axis=0)) / raw_frames.std(axis=0)
        np.testing.assert_allclose(normed[f"{speaker}/a"].features, expected, atol=1e-4)
    assert np.abs(raw["quiet/a"].features - raw["loud/a"].features).max() > 1.0
    np.testing.assert_allclose(normed["quiet/a"].features, normed["loud/a"].features, atol=0.1)  # up to log(. + 1e-6)


def by_id(corpus):
    return {u.recording.id: u for u in corpus.utterances}


def write_audio(path, audio, rate, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, rate, **kw)


def test_any_sample_rate_is_resampled_to_the_same_frames(source, tmp_path):
    audio, rate = soundfile.read(source["wav"], dtype="float32")
    assert rate == 44100
    root = tmp_path / "corpus"
    for r in (16000, 22050, 44100):
        write_audio(
            root / "s" / f"at{r}.wav", soxr.resample(audio, rate, r) if r != rate else audio, r, subtype="FLOAT"
        )
        (root / "s" / f"at{r}.lab").write_text(" ".join(source["words"]))
    corpus, lines = load(root, source["dictionary"], tmp_path / "cache")
    assert not corpus.unaligned and not lines
    got = by_id(corpus)
    frames = {r: len(got[f"s/at{r}"].features) for r in (16000, 22050, 44100)}
    expected = 1 + (round(len(audio) * 16000 / 44100) - 400) // 160  # 25 ms windows every 10 ms at 16 kHz
    assert all(abs(n - expected) <= 1 for n in frames.values()), frames
    for r in (16000, 22050, 44100):
        assert got[f"s/at{r}"].duration == pytest.approx(len(audio) / rate, abs=2e-3)
        assert got[f"s/at{r}"].features.shape[1] == 40
    a, b = got["s/at16000"].features, got["s/at44100"].features
    n = min(len(a), len(b))
    assert np.corrcoef(a[:n].ravel(), b[:n].ravel())[0, 1] > 0.95  # the same sound, not just as long


def test_stereo_is_the_mean_of_its_channels_and_flac_reads_as_wav(source, tmp_path):
    pcm, rate = soundfile.read(source["wav"], dtype="int16")
    x = pcm.astype(np.float32) / 32768
    root = tmp_path / "corpus"
    write_audio(root / "s" / "mono.wav", pcm, rate, subtype="PCM_16")
    write_audio(root / "s" / "same.wav", np.stack([pcm, pcm], axis=1), rate, subtype="PCM_16")
    write_audio(root / "s" / "flac.flac", pcm, rate, subtype="PCM_16")
    write_audio(root / "s" / "half.wav", x / 2, rate, subtype="FLOAT")
    write_audio(root / "s" / "left.wav", np.stack([x, np.zeros_like(x)], axis=1), rate, subtype="FLOAT")
    for name in ("mono", "same", "flac", "half", "left"):
        (root / "s" / f"{name}.lab").write_text(" ".join(source["words"]))
    corpus, _ = load(root, source["dictionary"], tmp_path / "cache")
    got = {rid.split("/")[1]: u.features for rid, u in by_id(corpus).items()}
    assert sorted(got) == ["flac", "half", "left", "mono", "same"] and not corpus.unaligned
    np.testing.assert_array_equal(got["same"], got["mono"])  # two equal channels: the mono features
    np.testing.assert_array_equal(got["flac"], got["mono"])  # lossless
    np.testing.assert_allclose(got["left"], got["half"], atol=1e-4)  # (x + 0) / 2
    assert np.abs(got["half"] - got["mono"]).max() > 1.0  # the channels were averaged, not one taken


def write_textgrid_transcript(path, words, duration, fmt):
    step = duration / (len(words) + 1)
    entries = [(step * (i + 0.5), step * (i + 1.5), w) for i, w in enumerate(words)]
    grid = textgrid.Textgrid()
    grid.addTier(textgrid.IntervalTier("transcript", entries, 0.0, duration))
    grid.save(str(path), format=fmt, includeBlankSpaces=True)


def test_transcripts_lab_txt_textgrid_any_case_in_nested_and_flat_folders(source, tmp_path):
    words = source["words"]
    duration = soundfile.info(source["wav"]).duration
    root = tmp_path / "corpus"
    transcripts = {
        "spk/lab": ("lab", " ".join(words)),
        "spk/upper": ("lab", " ".join(w.upper() for w in words) + "\n"),
        "spk/title": ("txt", ", ".join(w.title() for w in words) + "."),
        "spk/txt": ("txt", " ".join(words)),
        "a/b/nested": ("lab", " ".join(words)),
        "flat": ("lab", " ".join(words)),
        "spk/long_tg": ("long_textgrid", None),
        "spk/short_tg": ("short_textgrid", None),
        "spk/take [2]*": ("lab", " ".join(words)),  # glob characters in the name
        "spk/CAPS": ("LAB", " ".join(words)),  # upper-case suffixes: CAPS.WAV, CAPS.LAB
    }
    for rid, (kind, text) in transcripts.items():
        (root / rid).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source["wav"], root / f"{rid}.{'WAV' if kind == 'LAB' else 'wav'}")
        if text is None:
            write_textgrid_transcript(root / f"{rid}.TextGrid", [w.upper() for w in words], duration, kind)
        else:
            (root / f"{rid}.{kind}").write_text(text, encoding="utf-8")
    corpus, lines = load(root, source["dictionary"], tmp_path / "cache")
    got = by_id(corpus)
    assert sorted(got) == sorted(transcripts) and not corpus.unaligned and not lines
    for rid, u in got.items():
        assert u.words == words, rid
        np.testing.assert_array_equal(u.features, got["flat"].features)
    assert got["a/b/nested"].recording.speaker == "a/b" and got["flat"].recording.speaker == ""
    assert got["spk/lab"].recording.speaker == "spk"
    assert got["spk/long_tg"].recording.transcript.suffix == ".TextGrid"


def test_a_utf16_textgrid_from_praat_is_read(source, tmp_path):
    root = tmp_path / "corpus"
    (root / "s").mkdir(parents=True)
    shutil.copy(source["wav"], root / "s" / "u.wav")
    words = [*source["words"], "café"]
    write_textgrid_transcript(root / "s" / "u.TextGrid", words, soundfile.info(source["wav"]).duration, "long_textgrid")
    text = (root / "s" / "u.TextGrid").read_text(encoding="utf-8")
    (root / "s" / "u.TextGrid").write_bytes(text.encode("utf-16"))  # with a BOM, as Praat writes it
    tier = textgrid.openTextgrid(str(root / "s" / "u.TextGrid"), includeEmptyIntervals=False).getTier("transcript")
    assert [e.label for e in tier.entries] == words  # praatio reads it
    dictionary = tmp_path / "dictionary.txt"
    dictionary.write_text(source["dictionary"].read_text(encoding="utf-8") + "café\tk a f eI\n", encoding="utf-8")
    corpus, lines = load(root, dictionary, tmp_path / "cache")
    assert not corpus.unaligned, lines
    assert corpus.utterances[0].words == words


def test_dictionary_probability_columns_and_several_pronunciations(source, tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("hello\th @ l oU\nhello\th E l oU\nwater\tw O: t# 3\ntime\tt2 aI m\n", encoding="utf-8")
    mfa = tmp_path / "mfa.txt"
    mfa.write_text(
        "hello\t0.99\th @ l oU\n"  # a pronunciation probability
        "hello\t0.01\th E l oU\n"
        "water\t0.99\t0.1\t1.0\t1.0\tw O: t# 3\n"  # and MFA's three silence numbers
        "TIME 1.0 t2 aI m\n",  # spaces instead of tabs; upper case
        encoding="utf-8",
    )
    expected = {"hello": [["h", "@", "l", "oU"], ["h", "E", "l", "oU"]], "water": [["w", "O:", "t#", "3"]],
                "time": [["t2", "aI", "m"]]}  # fmt: skip
    assert read_dictionary(plain, "sil") == (expected, [])
    assert read_dictionary(mfa, "sil") == (expected, [])
    reversed_order = tmp_path / "reversed.txt"
    reversed_order.write_text("hello\th E l oU\nhello\th @ l oU\ntime\tt2 aI m\n", encoding="utf-8")

    root = tmp_path / "corpus"
    root.mkdir()
    shutil.copy(source["wav"], root / "u.wav")
    (root / "u.lab").write_text("hello time hello")
    for path, first in ((plain, "@"), (mfa, "@"), (reversed_order, "E")):
        corpus, _ = load(root, path, tmp_path / "cache")
        (u,) = corpus.utterances
        assert u.pronunciations == [["h", first, "l", "oU"], ["t2", "aI", "m"], ["h", first, "l", "oU"]], path.name
        assert u.target("sil") == ["sil", "h", first, "l", "oU", "sil", "t2", "aI", "m", "sil", "h", first, "l", "oU", "sil"]  # fmt: skip


def test_a_dictionary_phone_that_looks_like_a_number_is_kept(tmp_path):
    path = tmp_path / "dictionary.txt"
    path.write_text("office\t0 f I s\naround\t3 r aU n d\nhonest\t0.9\t0 n I s t\n", encoding="utf-8")
    entries, warnings = read_dictionary(path, "sil")
    assert entries == {"office": [["0", "f", "I", "s"]], "around": [["3", "r", "aU", "n", "d"]],
                       "honest": [["0", "n", "I", "s", "t"]]}  # fmt: skip
    assert warnings == []


# -- 4. recordings that cannot be used, each with its reason ----------------------------------

BAD = {  # recording id -> what its one reason says
    "s/no_transcript": "no transcript (no_transcript.lab, .txt or .TextGrid)",
    "s/empty": "empty transcript empty.lab",
    "s/oov": "words not in the dictionary: zebra",
    "s/noise": "unreadable audio noise.wav",
    "s/short": "audio too short",
    "s/no_phones": "words not in the dictionary: zzz",
    "s/latin1": "transcript latin1.lab is not UTF-8 text",
}


TIGHT = "s/tight"


def add_bad_recordings(root, wav, words, dictionary):
    """The recordings of BAD beside the good ones of `root/s`, and a dictionary line without phones."""
    folder = root / "s"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("no_transcript", "empty", "oov", "no_phones", "latin1"):
        shutil.copy(wav, folder / f"{name}.wav")
    (folder / "empty.lab").write_text(" ... \n")
    (folder / "oov.lab").write_text(f"{words[0]} Zebra {words[-1]}\n")
    (folder / "no_phones.lab").write_text(f"{words[0]} zzz\n")
    (folder / "latin1.lab").write_bytes(b"caf\xe9 " + words[0].encode() + b"\n")
    (folder / "noise.wav").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    (folder / "noise.lab").write_text(words[0])
    rate = soundfile.info(wav).samplerate
    write_audio(folder / "short.wav", soundfile.read(wav, dtype="float32")[0][: int(0.05 * rate)], rate)
    (folder / "short.lab").write_text(" ".join((words * 6)[:6]))
    with open(dictionary, "a", encoding="utf-8") as f:
        f.write("zzz\t\n")
    return len(Path(dictionary).read_text().splitlines())  # the line number of zzz


def test_every_bad_recording_is_left_out_with_one_reason_and_the_others_load(source, tmp_path):
    root = tmp_path / "corpus"
    (root / "s").mkdir(parents=True)
    for wav in source["wavs"]:
        shutil.copy(wav, root / "s" / wav.name)
        shutil.copy(wav.with_suffix(".lab"), root / "s" / wav.with_suffix(".lab").name)
    dictionary = tmp_path / "dictionary.txt"
    shutil.copy(source["dictionary"], dictionary)
    line = add_bad_recordings(root, source["wav"], source["words"], dictionary)
    for _ in range(2):  # the second time from the feature cache
        corpus, lines = load(root, dictionary, tmp_path / "cache")
        assert sorted(by_id(corpus)) == [f"s/{w.stem}" for w in source["wavs"]]
        reasons = dict(corpus.unaligned)
        assert sorted(reasons) == sorted(BAD) and len(corpus.unaligned) == len(BAD)
        for rid, words in BAD.items():
            assert words in reasons[rid], (rid, reasons[rid])
            assert [x for x in lines if x.startswith(f"unaligned {rid}:")] == [f"unaligned {rid}: {reasons[rid]}"]
        assert lines[0] == f"warning: dictionary.txt:{line}: 'zzz' has no phones; the line is ignored"
        assert len(lines) == 1 + len(BAD) and all("\n" not in x for x in lines)
        assert "zzz" not in corpus.dictionary


def test_oov_error_names_the_recording_and_the_word_and_oov_espeak_speaks_it(source, tmp_path):
    root = tmp_path / "corpus"
    (root / "s").mkdir(parents=True)
    shutil.copy(source["wav"], root / "s" / "good.wav")
    (root / "s" / "good.lab").write_text(" ".join(source["words"]))
    shutil.copy(source["wav"], root / "s" / "oov.wav")
    (root / "s" / "oov.lab").write_text(f"{source['words'][0]} zebra")
    with pytest.raises(CorpusError) as err:
        load(root, source["dictionary"], tmp_path / "cache", oov="error")
    assert "s/oov" in str(err.value) and "zebra" in str(err.value) and "\n" not in str(err.value)

    corpus, lines = load(root, source["dictionary"], tmp_path / "cache", oov="espeak")
    assert not corpus.unaligned and not lines
    zebra = espeak_phones("zebra", "en-us")
    assert zebra and "sil" not in zebra and " " not in "".join(zebra)
    assert by_id(corpus)["s/oov"].pronunciations[1] == zebra and corpus.dictionary["zebra"] == [zebra]


def test_a_dictionary_line_with_only_numbers_is_named_and_its_word_becomes_oov(source, tmp_path):
    root = tmp_path / "corpus"
    (root / "s").mkdir(parents=True)
    shutil.copy(source["wav"], root / "s" / "u.wav")
    (root / "s" / "u.lab").write_text(f"{source['words'][0]} yyy")
    dictionary = tmp_path / "dict.txt"
    dictionary.write_text(source["dictionary"].read_text() + "yyy\t0.99\t\n", encoding="utf-8")
    n = len(dictionary.read_text().splitlines())
    corpus, lines = load(root, dictionary, tmp_path / "cache")
    assert corpus.unaligned == [("s/u", "words not in the dictionary: yyy")]
    assert lines == [f"warning: dict.txt:{n}: 'yyy' has no phones; the line is ignored",
                     "unaligned s/u: words not in the dictionary: yyy"]  # fmt: skip


# -- 5. end to end: train a tiny run on a corpus, align it ------------------------------------


def first_pronunciations(dictionary):
    """{word: its first pronunciation} of an espeak corpus' dictionary (lines without phones skipped)."""
    first = {}
    for line in Path(dictionary).read_text(encoding="utf-8").splitlines():
        word, *phones = line.split("\t")
        if phones and phones[0].strip():
            first.setdefault(word, phones[0].split())
    return first


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A corpus of 2 speakers x 6 utterances plus the recordings of BAD and TIGHT (audio long enough
    for its phones, too short for their 2 sub-states each), and a run trained on it (k = 2)."""
    out = tmp_path_factory.mktemp("espeak")
    write_espeak_corpus(out, speakers=2, utterances_per_speaker=6, sample_rate=16000, seed=0, words=WORDS)
    corpus, dictionary = out / "corpus", out / "dictionary.txt"
    good = sorted(p.relative_to(corpus).with_suffix("").as_posix() for p in corpus.rglob("*.wav"))
    first = first_pronunciations(dictionary)
    wav = corpus / f"{good[0]}.wav"
    add_bad_recordings(corpus, wav, wav.with_suffix(".lab").read_text().split(), dictionary)
    tight_words = sorted(first)[:6]
    phones = sum(len(first[w]) for w in tight_words)
    audio = soundfile.read(wav, dtype="float32")[0][: 400 + (phones + 4) * 160]  # phones + 5 frames
    write_audio(corpus / f"{TIGHT}.wav", audio, 16000)
    (corpus / f"{TIGHT}.lab").write_text(" ".join(tight_words))
    run_dir = out / "run"
    config = compose_config(
        {
            "setup": "order_sync", "model": "gru", "model.hidden": 16, "align.states_per_symbol": 2,
            "data": "corpus", "data.root": str(corpus), "data.dictionary": str(dictionary),
            "data.cache_dir": str(out / "cache"),
            "trainer.steps": 30, "trainer.batch_size": 8, "trainer.num_buckets": 1, "trainer.progress": False,
            "trainer.checkpoint_every": 15, "trainer.eval_every": 15, "align.warmup_steps": 10,
        }
    )  # fmt: skip
    console = io.StringIO()
    with contextlib.redirect_stderr(console):
        train(config, run_dir)
    tight_reason = f"audio too short: {phones + 5} frames for a path through {2 * phones} grid rows"
    return {"corpus": corpus, "dictionary": first, "good": good, "run": run_dir, "root": out, "tight": tight_reason,
            "source_dictionary": dictionary, "console": console.getvalue().splitlines()}  # fmt: skip


def align(*argv):
    """align_cli.main in this process: (exit status, stderr lines)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            align_cli.main([str(a) for a in argv])
            code = 0
        except SystemExit as exit_info:
            code = exit_info.code
    return code, err.getvalue().strip().splitlines()


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
    assert written == trained["good"]
    for rid in trained["good"]:
        words = (trained["corpus"] / f"{rid}.lab").read_text().split()
        duration = soundfile.info(trained["corpus"] / f"{rid}.wav").duration
        check_textgrid(out / f"{rid}.TextGrid", words, [trained["dictionary"][w] for w in words], duration)


def test_alignments_csv_holds_every_interval_and_a_confidence(trained, aligned):
    out, _ = aligned
    with open(out / "alignments.csv", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        assert next(reader) == ["recording", "tier", "begin", "end", "label", "confidence"]
        rows = list(reader)
    assert sorted({r[0] for r in rows}) == trained["good"]
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
    # less the line without phones.
    with open(trained["run"] / "corpus_unaligned.csv", newline="", encoding="utf-8") as f:
        trained_out = dict(list(csv.reader(f))[1:])
    assert sorted(trained_out) == sorted(bad) and trained_out[TIGHT] == trained["tight"]
    assert [x for x in trained["console"] if TIGHT in x] == [f"jaxalign: unaligned {TIGHT}: {trained['tight']}"]
    run_dictionary = read_dictionary(trained["run"] / "dictionary.txt", "sil")
    assert run_dictionary == (read_dictionary(trained["source_dictionary"], "sil")[0], [])


def test_align_again_needs_overwrite_and_another_dictionary_is_used(trained, aligned, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(aligned[0], out)
    before = (out / "alignments.csv").read_text()
    code, lines = align(trained["run"], trained["corpus"], "--out", out)
    assert code == 1 and len(lines) == 1 and lines[0].startswith("jaxalign-align: error: --out")
    assert "pass --overwrite" in lines[0] and (out / "alignments.csv").read_text() == before

    # Another dictionary: one word dropped (its recordings become unaligned), one spoken backwards.
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
    assert not any((out / f"{rid}.TextGrid").exists() for rid in with_dropped)  # its own earlier ones are gone
    with open(out / "unaligned.csv", newline="", encoding="utf-8") as f:
        reasons = dict(list(csv.reader(f))[1:])
    assert {rid: reasons[rid] for rid in with_dropped} == {rid: f"words not in the dictionary: {dropped}" for rid in with_dropped}  # fmt: skip
    assert sorted(reasons) == sorted({*BAD, TIGHT, *with_dropped})
    written = sorted(p.relative_to(out).with_suffix("").as_posix() for p in out.rglob("*.TextGrid"))
    assert written == sorted({*trained["good"], "stale/old"} - set(with_dropped))
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


# -- 6. bad configurations: one clear line --------------------------------------------------------


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


def train_cli(tmp_path, *args):
    return subprocess.run(
        [sys.executable, "-m", "jaxalign.train", *args, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


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


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_flat_start_shares_the_frames_among_the_phones_and_the_edge_pauses_only(k):
    """With optional rows the uniform initial alignment skips the pauses between words: the first
    and last silence and every phone row get equal shares, in order; without them it is uniform_align."""
    setup = make_setup(compose_config({"setup": "order_sync", "model": "gru", "align.states_per_symbol": k}), 5, SIL)
    labels = np.array([[SIL, 1, SIL, 2, 3, SIL], [SIL, 4, SIL, -1, -1, -1]], np.int32)
    batch = {
        "labels": jnp.asarray(labels),
        "label_paddings": jnp.asarray((labels < 0).astype(np.float32)),
        "logit_paddings": jnp.zeros((2, 30)).at[1, 24:].set(1.0),
    }
    grid = setup.grid(batch)
    ali = setup.flat_start(batch)
    positions = np.asarray(ali.positions)
    for b, frames in enumerate((30, 24)):
        used = int(np.sum(np.asarray(grid.paddings[b]) == 0))
        optional = np.asarray(grid.optional[b])[:used] > 0
        kept = [r for r in range(used) if not optional[r] or r in (0, used - 1)]
        expected = np.asarray(
            uniform_align(jnp.zeros((1, frames)), jnp.zeros((1, len(kept)))).positions[0]
        )  # indices into `kept`
        np.testing.assert_array_equal(positions[b, :frames], np.asarray(kept)[expected])
        assert np.all(positions[b, frames:] == -1)
    plain = make_setup(compose_config({"setup": "order_sync", "model": "gru", "align.states_per_symbol": k}), 5)
    expected = uniform_align(batch["logit_paddings"], plain.grid(batch).paddings, plain.grid(batch).rows)
    np.testing.assert_array_equal(plain.flat_start(batch).positions, expected.positions)


def test_a_long_recording_is_aligned_in_a_band_with_its_optional_pauses(trained, tmp_path, monkeypatch):
    """The good recordings put end to end as one stream: aligned as a long recording (net over
    windows, coarse pass, banded Viterbi with optional rows), the words land where one pass over
    the whole stream puts them."""
    from jaxalign import load_run
    from jaxalign.aligner import run as inference
    from jaxalign.data.corpus import utterance_sequences

    run = load_run(trained["run"])
    spec = CorpusSpec(root=str(trained["corpus"]), dictionary=str(trained["run"] / "dictionary.txt"),
                      cache_dir=str(trained["root"] / "cache"))  # fmt: skip
    corpus = load_corpus(spec, phones=run.vocab, say=lambda line: None)
    data = utterance_sequences(corpus.utterances, run.vocab, spec.silence)
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


def test_the_run_records_its_audio_front_end(trained):
    """The checkpoint keeps the front end the features came from; the aligner's clock is its clock."""
    from jaxalign import load_run
    from jaxalign.aligner.export import Clock

    run = load_run(trained["run"])
    assert run.data_info["front_end"] == {"sample_rate": 16000, "window": 0.025, "hop": 0.01, "mel_bins": 40}
    assert run.clock == Clock(0.01, 0.0075)


# -- issue 26: robustness of corpus loading -------------------------------------------------------


def copy_source(source, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for wav in source["wavs"]:
        shutil.copy(wav, folder / wav.name)
        shutil.copy(wav.with_suffix(".lab"), folder / wav.with_suffix(".lab").name)
    return sorted(w.stem for w in source["wavs"])


def test_a_failed_read_is_never_cached_and_the_cache_follows_the_content(source, tmp_path, monkeypatch):
    """A recording unreadable once (chmod 000, a share not mounted yet) loads once it is readable
    again; the feature cache is keyed on the audio's bytes, so a copy with a new time stamp is not
    read again."""
    import os

    import jaxalign.data.features as features

    stems = copy_source(source, tmp_path / "corpus" / "s")
    wav = tmp_path / "corpus" / "s" / f"{stems[0]}.wav"
    real = features.read_audio
    if os.geteuid() == 0:  # root reads a chmod 000 file: make the read fail as it would for a user

        def denied(path, rate):
            if Path(path).name == wav.name:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path, rate)

        monkeypatch.setattr(features, "read_audio", denied)
    wav.chmod(0)
    corpus, lines = load(tmp_path / "corpus", source["dictionary"], tmp_path / "cache")
    assert sorted(by_id(corpus)) == [f"s/{stems[1]}"]
    assert "unreadable audio" in dict(corpus.unaligned)[f"s/{stems[0]}"]
    wav.chmod(0o644)
    monkeypatch.setattr(features, "read_audio", real)
    corpus, lines = load(tmp_path / "corpus", source["dictionary"], tmp_path / "cache")
    assert sorted(by_id(corpus)) == [f"s/{s}" for s in stems] and not corpus.unaligned, lines
    before = by_id(corpus)
    for path in (tmp_path / "corpus" / "s").glob("*.wav"):
        os.utime(path, ns=(10**9, 10**9))  # same bytes, new time stamps: from the cache

    def no_read(path, rate):
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(features, "read_audio", no_read)
    again = by_id(load(tmp_path / "corpus", source["dictionary"], tmp_path / "cache")[0])
    for rid, u in before.items():
        np.testing.assert_array_equal(again[rid].features, u.features)


def test_linked_speaker_folders_are_followed_loops_are_not_and_a_second_audio_file_is_named(source, tmp_path):
    """Speaker folders that are symbolic links are read (a corpus of only links is not 'no audio'), a
    link back up the tree is not followed twice, and `x.WAV` beside `x.wav` is named, not dropped silently."""
    stems = copy_source(source, tmp_path / "store" / "spk")
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "spk").symlink_to(tmp_path / "store" / "spk", target_is_directory=True)
    (root / "spk" / "loop").symlink_to(root, target_is_directory=True)
    corpus, lines = load(root, source["dictionary"], tmp_path / "cache")
    assert sorted(by_id(corpus)) == [f"spk/{s}" for s in stems], lines
    shutil.copy(source["wavs"][1], tmp_path / "store" / "spk" / f"{stems[0]}.WAV")
    corpus, lines = load(root, source["dictionary"], tmp_path / "cache")
    assert sorted(by_id(corpus)) == [f"spk/{s}" for s in stems]
    named = [x for x in lines if f"{stems[0]}.WAV" in x]
    assert len(named) == 1 and named[0].startswith("warning:") and f"{stems[0]}.wav" in named[0], lines


def test_nfd_transcripts_and_an_nfc_dictionary_meet_in_nfc(source, tmp_path):
    """Words are compared in Unicode NFC: a transcript typed in NFD (macOS file names, some editors)
    finds its NFC dictionary entry, and an NFD dictionary serves NFC transcripts."""
    import unicodedata

    folder = tmp_path / "corpus" / "s"
    folder.mkdir(parents=True)
    shutil.copy(source["wav"], folder / "a.wav")
    shutil.copy(source["wav"], folder / "b.wav")
    (folder / "a.lab").write_text(unicodedata.normalize("NFD", "Café naïve"), encoding="utf-8")
    (folder / "b.lab").write_text(unicodedata.normalize("NFC", "café naïve"), encoding="utf-8")
    for form, other in (("NFC", "NFD"), ("NFD", "NFC")):
        dictionary = tmp_path / f"{form}.txt"
        dictionary.write_text(unicodedata.normalize(form, "café\tk a f e\nnaïve\tn a i v\n"), encoding="utf-8")
        corpus, lines = load(tmp_path / "corpus", dictionary, tmp_path / "cache")
        assert not corpus.unaligned, lines
        for u in corpus.utterances:
            assert u.words == [unicodedata.normalize("NFC", w) for w in ("café", "naïve")]
        assert all(unicodedata.is_normalized("NFC", w) for w in corpus.dictionary), other


def test_a_corpus_folder_given_where_a_file_or_another_key_is_expected_is_named(source, tmp_path):
    """A missing corpus folder is named before anything else; a folder given to data=arrays, or a
    corpus folder given as data.path to data=corpus, gets a line saying where it belongs."""
    from jaxalign.data import load_arrays
    from jaxalign.errors import DataFileError

    with pytest.raises(CorpusError, match="data.root: no corpus folder"):
        load(tmp_path / "nowhere", tmp_path / "no_dictionary.txt", tmp_path / "cache")
    with pytest.raises(DataFileError, match=r"is a folder.*data=corpus data.root="):
        load_arrays(tmp_path, valid_fraction=0.1, test_fraction=0.1, seed=0)
    proc = train_cli(tmp_path, "data=corpus", f"data.path={tmp_path}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "data.root=" in lines[0], lines


def test_normalise_recording_keeps_a_recording_s_features_whatever_its_speaker_s_other_files(source, tmp_path):
    """data.normalise=recording: each recording minus its own mean, over its speaker's spread (of the
    recordings with speech). A silent recording added beside a recording leaves its features exactly as they were
    (with data.normalise=speaker too: it enters no statistics); a louder one (4x, clipped: its spectrum changes too) moves them less than data.normalise=speaker does."""
    pcm, rate = soundfile.read(source["wavs"][1], dtype="float32")
    folder = tmp_path / "corpus" / "s"
    copy_source(source, folder)
    rid = f"s/{source['wav'].stem}"

    def features(how):
        return by_id(load(tmp_path / "corpus", source["dictionary"], tmp_path / "cache", normalise=how)[0])[
            rid
        ].features

    before = {how: features(how) for how in ("recording", "speaker")}
    write_audio(folder / "silent.wav", np.zeros(rate, np.float32), rate, subtype="PCM_16")
    (folder / "silent.lab").write_text(source["words"][0])
    for how in ("recording", "speaker"):  # a recording without speech enters no speaker's statistics
        np.testing.assert_array_equal(features(how), before[how])
    (folder / "silent.wav").unlink()
    write_audio(folder / source["wavs"][1].name, np.clip(4 * pcm, -1, 32767 / 32768), rate, subtype="PCM_16")
    moved = {how: np.abs(features(how) - before[how]).mean() for how in ("recording", "speaker")}
    assert moved["recording"] < moved["speaker"] / 2, moved
