"""`data=corpus` (MFA-layout corpus folders): the corpora that load (rates, channels, formats,
transcripts, layouts, dictionaries), the recordings left out with their reason, the feature cache,
linked folders, Unicode, and the features' normalisation."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr
from praatio import textgrid

from jaxalign.data.corpus import CorpusError, CorpusSpec, load_corpus, load_corpus_splits, utterance_sequences
from jaxalign.data.dictionary import espeak_phones, read_dictionary
from jaxalign.data.espeak_corpus import write_espeak_corpus
from tests.corpora import (
    BAD,
    SKIPPED,
    UNKNOWN,
    WORDS,
    add_bad_recordings,
    train_cli,
    write_audio,
    write_textgrid_transcript,
)


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


def copy_corpus(source, tmp_path):
    """The source's recordings and transcripts in tmp_path/corpus/s, its dictionary copied beside:
    (corpus folder, dictionary path)."""
    root = tmp_path / "corpus"
    (root / "s").mkdir(parents=True)
    for wav in source["wavs"]:
        shutil.copy(wav, root / "s" / wav.name)
        shutil.copy(wav.with_suffix(".lab"), root / "s" / wav.with_suffix(".lab").name)
    dictionary = tmp_path / "dictionary.txt"
    shutil.copy(source["dictionary"], dictionary)
    return root, dictionary


def test_every_bad_recording_is_left_out_with_one_reason_and_the_others_load(source, tmp_path):
    root, dictionary = copy_corpus(source, tmp_path)
    line = add_bad_recordings(root, source["wav"], source["words"], dictionary)
    bad = {**BAD, **SKIPPED}  # data.oov=skip leaves the recordings with an unknown word out too
    for _ in range(2):  # the second time from the feature cache
        corpus, lines = load(root, dictionary, tmp_path / "cache", oov="skip")
        assert sorted(by_id(corpus)) == [f"s/{w.stem}" for w in source["wavs"]]
        reasons = dict(corpus.unaligned)
        assert sorted(reasons) == sorted(bad) and len(corpus.unaligned) == len(bad)
        for rid, words in bad.items():
            assert words in reasons[rid], (rid, reasons[rid])
            assert [x for x in lines if x.startswith(f"unaligned {rid}:")] == [f"unaligned {rid}: {reasons[rid]}"]
        assert lines[0] == f"warning: dictionary.txt:{line}: 'zzz' has no phones; the line is ignored"
        assert len(lines) == 1 + len(bad) and all("\n" not in x for x in lines)
        assert "zzz" not in corpus.dictionary


def test_oov_spn_aligns_each_unknown_word_as_spoken_noise_and_keeps_its_recording(source, tmp_path):
    """data.oov=spn (the default): a word the dictionary lacks is pronounced [spn], a unit the net
    does not learn (a filler scored from its phones when aligning), so its recording is aligned; the
    dictionary kept with the run lists it."""
    root, dictionary = copy_corpus(source, tmp_path)
    add_bad_recordings(root, source["wav"], source["words"], dictionary)
    corpus, lines = load(root, dictionary, tmp_path / "cache")
    assert CorpusSpec().oov == "spn"
    assert sorted(by_id(corpus)) == sorted([f"s/{w.stem}" for w in source["wavs"]] + list(UNKNOWN))
    assert sorted(dict(corpus.unaligned)) == sorted(BAD)
    oov = by_id(corpus)["s/oov"]
    assert oov.words == [source["words"][0], "zebra", source["words"][-1]] and oov.pronunciations[1] == ["spn"]
    target = oov.target("sil")
    at = target.index("spn")
    assert target[at - 1] == target[at + 1] == "sil"  # the optional pauses around it stay
    assert by_id(corpus)["s/no_phones"].pronunciations[1] == ["spn"]
    assert corpus.dictionary["zebra"] == [["spn"]] and corpus.dictionary["zzz"] == [["spn"]]
    said = "2 words not in the dictionary are aligned as 'spn' (data.oov=spn): zebra zzz"
    assert [x for x in lines if "data.oov" in x] == [said]


def test_oov_spn_needs_no_spn_class_in_the_run_and_its_recordings_do_not_train(source, tmp_path):
    """Aligning with a run whose phones lack spn (every run: spn is scored by a filler over the
    phones, `jaxalign.aligner.unknown`) keeps the recording; training leaves it out, in one line."""
    root = tmp_path / "corpus"
    (root / "s").mkdir(parents=True)
    shutil.copy(source["wav"], root / "s" / "oov.wav")
    (root / "s" / "oov.lab").write_text(f"{source['words'][0]} zebra")
    shutil.copy(source["wav"], root / "s" / "good.wav")
    (root / "s" / "good.lab").write_text(" ".join(source["words"]))
    entries, _ = read_dictionary(source["dictionary"], "sil")
    phones = sorted({p for prons in entries.values() for pron in prons for p in pron} | {"sil"})
    spec = CorpusSpec(root=str(root), dictionary=str(source["dictionary"]), cache_dir=str(tmp_path / "cache"))
    corpus = load_corpus(spec, dictionary=entries, phones=phones, say=lambda line: None)
    assert not corpus.unaligned and by_id(corpus)["s/oov"].pronunciations[1] == ["spn"]
    sequences = utterance_sequences(corpus.utterances, phones, "sil")
    assert len(phones) in sequences.labels[[u.recording.id for u in corpus.utterances].index("s/oov")]
    splits = load_corpus_splits(spec)
    assert splits.train.names == ["s/good"] and "spn" not in splits.train.vocab
    assert "zebra\tspn" in splits.record["dictionary.txt"]


def test_oov_spn_refuses_spn_as_the_silence(source, tmp_path):
    with pytest.raises(CorpusError, match="data.silence='spn'"):
        load(source["wav"].parent, source["dictionary"], tmp_path / "cache", silence="spn")
    corpus, _ = load(source["wav"].parent, source["dictionary"], tmp_path / "cache", silence="spn", oov="skip")
    assert corpus.utterances


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
    corpus, lines = load(root, dictionary, tmp_path / "cache", oov="skip")
    assert corpus.unaligned == [("s/u", "words not in the dictionary: yyy")]
    assert lines == [f"warning: dict.txt:{n}: 'yyy' has no phones; the line is ignored",
                     "unaligned s/u: words not in the dictionary: yyy"]  # fmt: skip


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
