"""A forced-alignment corpus in the Montreal Forced Aligner's layout: `data=corpus data.root=DIR
data.dictionary=FILE`.

Layout and conventions:
- Recordings: `ROOT/SPEAKER/NAME.wav` (FLAC and OGG too, through soundfile), or flat `ROOT/NAME.wav`;
  deeper folders are allowed and the speaker is the folder path under ROOT. A stereo (or more)
  recording is the mean of its channels. Any sample rate is resampled to `sample_rate` with soxr.
- Transcripts beside the audio: `NAME.lab` or `NAME.txt` (the words on a line), else `NAME.TextGrid`
  (the texts of its first interval tier's intervals, in order). Words are compared case-folded, with
  punctuation around them removed (`don't` keeps its apostrophe).
- The dictionary is MFA's: `WORD<TAB>PH PH ...`, one pronunciation a line; the optional columns of
  MFA's dictionaries (pronunciation and silence probabilities: decimals such as `0.99`, or `1`)
  between the word and the phones are ignored. A word with several pronunciations is aligned with the FIRST one listed (MFA's
  dictionaries list the most likely first). A line without phones is named and ignored.
- Words not in the dictionary: `data.oov=skip` leaves the recording unaligned (named on one line),
  `espeak` takes espeak-ng's phonemes for them (voice `data.espeak_voice`), `error` stops.
- The target of a recording: its words' phones with an optional silence (`data.silence`, a symbol of
  the vocabulary) before, between and after the words; `SequenceData.optional_symbol` tells order_sync
  that these rows may be skipped, so the Viterbi decides where the pauses are.
- Features: the log-mel front end of every speech source (`jaxalign.data.audio.FrontEnd`), computed
  once per recording and cached under `CACHE/corpus/<hash>.npz` (the hash covers the front end and
  each audio file's path, size and modification time).
- Splits: by default every readable recording trains the aligner (forced alignment aligns the data it
  learns from, as MFA does) and valid/test are empty; `data.valid_speaker_fraction` and
  `data.test_speaker_fraction` hold out a seeded share of the speakers instead.
"""

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import string
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jaxalign.data.audio import FrontEndKeys, front_end_of, read_audio
from jaxalign.data.dataset import DataSplits, SequenceData
from jaxalign.errors import CorpusError
from jaxalign.runtime import cache_dir

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
TRANSCRIPT_SUFFIXES = (".lab", ".txt", ".textgrid")  # the first one present is read
OOV_POLICIES = ("skip", "espeak", "error")
NORMALISATIONS = ("speaker", "none")
FORMAT_VERSION = 1  # bump when the cached features change for the same front end
_STRIP = string.punctuation.replace("'", "") + "“”‘’«»¿¡"


@dataclasses.dataclass
class CorpusSpec(FrontEndKeys):  # sample_rate: audio is resampled to it
    root: str = "???"  # the corpus folder: SPEAKER/NAME.wav + NAME.lab (or flat)
    dictionary: str = "???"  # MFA pronunciation dictionary: WORD<TAB>PH PH ...
    silence: str = "sil"  # the optional pause symbol put before, between and after the words
    oov: str = "skip"  # words not in the dictionary: skip (the recording) | espeak (its phonemes) | error
    espeak_voice: str = "en-us"  # data.oov=espeak: the voice whose phonemes stand in
    valid_speaker_fraction: float = 0.0  # share of speakers held out for validation; 0: none
    test_speaker_fraction: float = 0.0  # share of speakers held out for test; 0: none
    cache_dir: str = ""  # empty: $JAXALIGN_CACHE_DIR, else ~/.cache/jaxalign
    seed: int = 0  # the speaker split
    normalise: str = "speaker"  # features: speaker (per-speaker mean and variance) | none


@dataclasses.dataclass
class Recording:
    """One audio file of the corpus; `id` is its path under ROOT without the suffix (`SPEAKER/NAME`)."""

    id: str
    speaker: str
    audio: Path
    transcript: Path | None


@dataclasses.dataclass
class Utterance:
    """A recording ready to align: its words, their phones, and its features (T, num_mels)."""

    recording: Recording
    words: list[str]
    pronunciations: list[list[str]]  # the phones of each word
    features: np.ndarray
    duration: float  # seconds of audio

    def target(self, silence: str) -> list[str]:
        """The grid's symbols: `silence` word phones `silence` word phones ... `silence`."""
        out = [silence]
        for phones in self.pronunciations:
            out += [*phones, silence]
        return out


@dataclasses.dataclass
class Corpus:
    utterances: list[Utterance]
    unaligned: list[tuple[str, str]]  # (recording id, reason) of every recording left out
    dictionary: dict[str, list[list[str]]]  # word -> pronunciations, with espeak's where used


# -- reading ---------------------------------------------------------------------------------


def find_recordings(root) -> list[Recording]:
    """Every audio file under `root` (any depth, suffixes case-insensitive), sorted by id, with the
    first transcript beside it in `TRANSCRIPT_SUFFIXES` order (None if there is none)."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"data.root: no corpus folder {root}")
    files: dict[tuple[Path, str], dict[str, Path]] = {}  # (folder, stem) -> {suffix: path}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in AUDIO_SUFFIXES + TRANSCRIPT_SUFFIXES and path.is_file():
            files.setdefault((path.parent, path.stem), {}).setdefault(path.suffix.lower(), path)
    out = []
    for (folder, stem), found in sorted(files.items()):
        audio = [found[s] for s in AUDIO_SUFFIXES if s in found]
        if not audio:
            continue
        if len(audio) > 1:
            rel = (folder / stem).relative_to(root).as_posix()
            raise CorpusError(f"data.root: {root} has two audio files for recording {rel!r} (e.g. .wav and .flac)")
        transcript = next((found[s] for s in TRANSCRIPT_SUFFIXES if s in found), None)
        rel = audio[0].relative_to(root).with_suffix("")
        out.append(
            Recording(rel.as_posix(), rel.parent.as_posix() if rel.parent != Path() else "", audio[0], transcript)
        )
    return sorted(out, key=lambda r: r.id)


def normalise(text: str) -> list[str]:
    """A transcript line -> its words, case-folded, surrounding punctuation removed."""
    words = (w.strip(_STRIP).casefold() for w in text.split())
    return [w for w in words if w]


def read_transcript(path: Path) -> list[str]:
    """The words of a `.lab`/`.txt` (UTF-8) or `.TextGrid` (UTF-8 or Praat's UTF-16) transcript;
    ValueError with the reason if unreadable."""
    if path.suffix.lower() != ".textgrid":
        raw = path.read_bytes()
        try:
            return normalise(raw.decode("utf-8-sig"))
        except UnicodeDecodeError as err:
            raise ValueError(f"transcript {path.name} is not UTF-8 text (byte {err.start})") from None
    from praatio import textgrid

    try:
        grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    except Exception as err:  # praatio's parse errors have no common base
        raise ValueError(f"transcript {path.name} is not a readable TextGrid ({type(err).__name__})") from None
    tiers = [grid.getTier(name) for name in grid.tierNames]
    tier = next((t for t in tiers if isinstance(t, textgrid.IntervalTier)), None)
    if tier is None:
        raise ValueError(f"transcript {path.name} has no interval tier")
    return normalise(" ".join(entry.label for entry in tier.entries))


def read_dictionary(path, silence: str) -> tuple[dict[str, list[list[str]]], list[str]]:
    """MFA dictionary -> ({word: pronunciations in file order}, warnings about ignored lines)."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"data.dictionary: no such file {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusError(f"data.dictionary: {path} is not UTF-8 text (byte {err.start})") from None
    entries: dict[str, list[list[str]]] = {}
    warnings = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(";;;"):
            continue
        fields = line.split("\t") if "\t" in line else line.split(None, 1)
        word, rest = fields[0].strip().casefold(), " ".join(fields[1:]).split()
        while rest and _is_probability(rest[0]):  # MFA's probability columns
            rest = rest[1:]
        if not rest:
            warnings.append(f"{path.name}:{n}: {word!r} has no phones; the line is ignored")
            continue
        if silence in rest:
            raise CorpusError(f"data.dictionary: {path.name}:{n}: {word!r} uses {silence!r}, which is data.silence")
        if rest not in entries.setdefault(word, []):
            entries[word].append(rest)
    if not entries:
        raise CorpusError(f"data.dictionary: {path} has no pronunciations (expected WORD<TAB>PH PH ... lines)")
    return entries, warnings


def _is_probability(token: str) -> bool:
    """MFA's probability columns are decimals (`0.99`, `1.0`) or `1`; a phone such as espeak's `0` or
    `3` is not one."""
    if token != "1" and "." not in token:
        return False
    try:
        return math.isfinite(float(token))
    except ValueError:
        return False


def dictionary_text(dictionary: dict[str, list[list[str]]]) -> str:
    """MFA's format, words sorted, pronunciations in their order (the first is the one aligned)."""
    return "".join(f"{word}\t{' '.join(p)}\n" for word in sorted(dictionary) for p in dictionary[word])


def espeak_phones(word: str, voice: str) -> list[str]:
    """espeak-ng's phonemes of `word` (its ASCII mnemonics, stress dropped, pauses left out)."""
    from jaxalign.data.espeak import get_espeak
    from jaxalign.data.spoken_words import SILENCE, phone_name

    espeak = get_espeak()
    espeak.set_voice(voice)
    _, events = espeak.synth(word)
    return [p for p in (phone_name(m) for _, m in events) if p != SILENCE]


# -- features --------------------------------------------------------------------------------


def _cache_file(spec: CorpusSpec, recordings: list[Recording]) -> Path:
    front = {k: getattr(spec, k) for k in ("sample_rate", "frame_ms", "hop_ms", "num_mels")}
    files = [(str(r.audio.resolve()), r.audio.stat().st_size, r.audio.stat().st_mtime_ns) for r in recordings]
    blob = json.dumps({"front_end": front, "files": files, "format": FORMAT_VERSION}, sort_keys=True)
    folder = Path(spec.cache_dir).expanduser() / "corpus" if spec.cache_dir else cache_dir("corpus")
    return folder / f"{hashlib.sha256(blob.encode()).hexdigest()[:16]}.npz"


def corpus_features(spec: CorpusSpec, recordings: list[Recording]) -> dict[str, tuple[np.ndarray, float] | str]:
    """{recording id: (features (T, num_mels), seconds) or the reason its audio is unreadable},
    computed with a progress bar on first use and cached."""
    path = _cache_file(spec, recordings)
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            out: dict = dict(meta["failed"])
            for i, rid in enumerate(meta["ids"]):
                out[rid] = (z[f"f{i}"], meta["seconds"][i])
            return out
    out, arrays, ids, seconds, failed = {}, {}, [], [], {}
    for rec in tqdm(recordings, desc="data=corpus: features", unit="file", mininterval=1.0):
        try:
            audio = read_audio(rec.audio, spec.sample_rate)
        except Exception as err:  # soundfile's LibsndfileError, RuntimeError, ...: the file is unreadable
            failed[rec.id] = f"unreadable audio {rec.audio.name} ({str(err).splitlines()[0][:120]})"
            continue
        if not len(audio):
            failed[rec.id] = f"audio {rec.audio.name} has no samples"
            continue
        if not np.isfinite(audio).all():
            failed[rec.id] = f"audio {rec.audio.name} has NaN or infinite samples"
            continue
        feats = front_end_of(spec).log_mel(audio)
        arrays[f"f{len(ids)}"] = feats
        ids.append(rec.id)
        seconds.append(len(audio) / spec.sample_rate)
        out[rec.id] = (feats, seconds[-1])
    out.update(failed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}-tmp{os.getpid()}.npz")
    np.savez(tmp, meta=json.dumps({"ids": ids, "seconds": seconds, "failed": failed}), **arrays)
    os.replace(tmp, path)
    return out


# -- the corpus ------------------------------------------------------------------------------


def check_spec(spec: CorpusSpec) -> None:
    if spec.normalise not in NORMALISATIONS:
        raise CorpusError(f"data.normalise={spec.normalise!r} is not allowed; choose one of {list(NORMALISATIONS)}")
    if spec.oov not in OOV_POLICIES:
        raise CorpusError(f"data.oov={spec.oov!r} is not allowed; choose one of {list(OOV_POLICIES)}")
    if spec.root in ("", "???"):
        raise CorpusError("data.root is required: the corpus folder (SPEAKER/NAME.wav with NAME.lab)")
    if spec.dictionary in ("", "???"):
        raise CorpusError("data.dictionary is required: the pronunciation dictionary (WORD<TAB>PH PH ...)")
    if not spec.silence or any(c.isspace() for c in spec.silence):
        raise CorpusError(f"data.silence={spec.silence!r} must be one symbol without spaces")
    fractions = (spec.valid_speaker_fraction, spec.test_speaker_fraction)
    if min(fractions) < 0 or sum(fractions) >= 1:
        raise CorpusError(f"data.valid_speaker_fraction + test_speaker_fraction must be in [0, 1), got {fractions}")


def load_corpus(spec: CorpusSpec, dictionary=None, phones=None, say=print) -> Corpus:
    """Reads the corpus at `spec.root`: every recording becomes an `Utterance` or an entry of
    `unaligned` with its reason (one line each through `say`). dictionary: {word: pronunciations}
    instead of reading `spec.dictionary`; phones: the phone set a trained run knows (a word whose
    phones it does not know is unaligned)."""
    check_spec(spec)
    if dictionary is None:
        dictionary, warnings = read_dictionary(spec.dictionary, spec.silence)
        for line in warnings:
            say(f"warning: {line}")
    dictionary = {w: list(p) for w, p in dictionary.items()}
    recordings = find_recordings(spec.root)
    if not recordings:
        raise CorpusError(f"data.root: no audio ({', '.join(AUDIO_SUFFIXES)}) under {spec.root}")
    words_of, unaligned = {}, []
    for rec in recordings:
        if rec.transcript is None:
            unaligned.append((rec.id, f"no transcript ({rec.audio.stem}.lab, .txt or .TextGrid)"))
            continue
        try:
            words = read_transcript(rec.transcript)
        except (OSError, ValueError) as err:
            unaligned.append((rec.id, str(err)))
            continue
        if not words:
            unaligned.append((rec.id, f"empty transcript {rec.transcript.name}"))
            continue
        words_of[rec.id] = words
    oov = {rid: sorted({w for w in words if w not in dictionary}) for rid, words in words_of.items()}
    oov = {rid: ws for rid, ws in oov.items() if ws}
    if oov and spec.oov == "error":
        rid, ws = next(iter(oov.items()))
        raise CorpusError(f"recording {rid}: words not in the dictionary: {' '.join(ws)} (data.oov=error)")
    if oov and spec.oov == "espeak":
        for word in sorted({w for ws in oov.values() for w in ws}):
            phones_of_word = espeak_phones(word, spec.espeak_voice)
            if phones_of_word:
                dictionary[word] = [phones_of_word]
        oov = {rid: [w for w in ws if w not in dictionary] for rid, ws in oov.items()}
        oov = {rid: ws for rid, ws in oov.items() if ws}
    for rid, ws in oov.items():
        unaligned.append((rid, f"words not in the dictionary: {' '.join(ws)}"))
        del words_of[rid]
    if phones is not None:
        known = set(phones)
        for rid in list(words_of):
            unknown = sorted({p for w in words_of[rid] for p in dictionary[w][0] if p not in known})
            if unknown:
                unaligned.append((rid, f"phones the run was not trained on: {' '.join(unknown)}"))
                del words_of[rid]
    wanted = [r for r in recordings if r.id in words_of]
    features = corpus_features(spec, wanted)
    utterances = []
    for rec in wanted:
        got = features[rec.id]
        if isinstance(got, str):
            unaligned.append((rec.id, got))
            continue
        feats, seconds = got
        words = words_of[rec.id]
        pronunciations = [dictionary[w][0] for w in words]
        needed = sum(len(p) for p in pronunciations)
        if len(feats) < needed:
            unaligned.append((rec.id, f"audio too short: {len(feats)} frames ({seconds:.2f} s) for {needed} phones"))
            continue
        utterances.append(Utterance(rec, words, pronunciations, feats, seconds))
    order = {r.id: i for i, r in enumerate(recordings)}
    unaligned.sort(key=lambda item: order[item[0]])
    for rid, reason in unaligned:
        say(f"unaligned {rid}: {reason}")
    return Corpus(normalised(utterances) if spec.normalise == "speaker" else utterances, unaligned, dictionary)


def normalised(utterances: list[Utterance]) -> list[Utterance]:
    """Per-speaker mean and variance normalisation of the features (each mel channel over all the
    frames of the speaker's recordings), as speech aligners do (Kaldi's and MFA's CMVN)."""
    by_speaker: dict[str, list[Utterance]] = {}
    for u in utterances:
        by_speaker.setdefault(u.recording.speaker, []).append(u)
    out = {}
    for group in by_speaker.values():
        frames = np.concatenate([u.features for u in group])
        mean, std = frames.mean(axis=0), np.maximum(frames.std(axis=0), 1e-3)
        for u in group:
            out[u.recording.id] = dataclasses.replace(u, features=((u.features - mean) / std).astype(np.float32))
    return [out[u.recording.id] for u in utterances]


def to_sequences(utterances: list[Utterance], vocab: list[str], silence: str) -> SequenceData:
    """The utterances as `SequenceData` over `vocab` (silence rows optional; no true alignments)."""
    index = {p: i for i, p in enumerate(vocab)}
    labels = [np.array([index[p] for p in u.target(silence)], np.int32) for u in utterances]
    return SequenceData([u.features for u in utterances], labels, None, vocab, index[silence])


def unaligned_csv(unaligned: list[tuple[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["recording", "reason"])
    writer.writerows(unaligned)
    return buffer.getvalue()


def load_corpus_splits(spec: CorpusSpec) -> DataSplits:
    """The training data of `data=corpus` (module docstring); the run record gets the dictionary
    used (`dictionary.txt`, with espeak's pronunciations where data.oov=espeak added them) and the
    recordings left out (`corpus_unaligned.csv`)."""
    corpus = load_corpus(spec, say=lambda line: print(f"data=corpus: {line}", flush=True))
    if not corpus.utterances:
        raise CorpusError(f"data.root: none of the recordings under {spec.root} can be used (see the lines above)")
    vocab = sorted({p for u in corpus.utterances for ps in u.pronunciations for p in ps} | {spec.silence})
    speakers = sorted({u.recording.speaker for u in corpus.utterances})
    rng = np.random.default_rng(spec.seed)
    order = [speakers[i] for i in rng.permutation(len(speakers))]
    n_valid = int(round(spec.valid_speaker_fraction * len(speakers)))
    n_test = int(round(spec.test_speaker_fraction * len(speakers)))
    if n_valid + n_test >= len(speakers) and n_valid + n_test:
        raise CorpusError(
            f"data.valid_speaker_fraction/test_speaker_fraction hold out {n_valid + n_test} of {len(speakers)} "
            "speakers, leaving none to train on"
        )
    held = {s: "valid" for s in order[:n_valid]} | {s: "test" for s in order[n_valid : n_valid + n_test]}
    parts = {name: [u for u in corpus.utterances if held.get(u.recording.speaker, "train") == name]
             for name in ("train", "valid", "test")}  # fmt: skip
    record = {
        "dictionary.txt": dictionary_text(corpus.dictionary),
        "corpus_unaligned.csv": unaligned_csv(corpus.unaligned),
    }
    print(
        f"data=corpus: {len(corpus.utterances)} recordings "
        f"({sum(u.duration for u in corpus.utterances) / 60:.1f} min, {len(speakers)} speakers, "
        f"{len(vocab) - 1} phones + {spec.silence!r}); {len(corpus.unaligned)} left out"
        + (" (listed in RUN_DIR/corpus_unaligned.csv)" if corpus.unaligned else ""),
        flush=True,
    )
    splits = DataSplits(*(to_sequences(parts[name], vocab, spec.silence) for name in ("train", "valid", "test")),
                        record=record)  # fmt: skip
    return splits.with_front_end(front_end_of(spec))
