"""A forced-alignment corpus in the Montreal Forced Aligner's layout: `data=corpus data.root=DIR
data.dictionary=FILE`.

The modules: `corpus_files` (which recordings, their transcripts' words), `dictionary` (MFA
dictionaries, espeak's phonemes), `features` (the cached front end, per-speaker normalisation), and
this one (the spec, loading a corpus into utterances, the splits of `data=corpus`).

Layout and conventions:
- Recordings: `ROOT/SPEAKER/NAME.wav` (FLAC and OGG too, through soundfile), or flat `ROOT/NAME.wav`;
  deeper folders are allowed and the speaker is the folder path under ROOT. A stereo (or more)
  recording is the mean of its channels. Any sample rate is resampled to `sample_rate` with soxr.
- Transcripts beside the audio: `NAME.lab` or `NAME.txt` (the words on a line), else `NAME.TextGrid`
  (the texts of its first interval tier's intervals, in order). Words are compared in Unicode NFC
  (transcripts and dictionary alike), case-folded, with punctuation around them removed (`don't`
  keeps its apostrophe).
- The dictionary is MFA's: `WORD<TAB>PH PH ...`, one pronunciation a line; the optional columns of
  MFA's dictionaries (pronunciation and silence probabilities: decimals such as `0.99`, or `1`)
  between the word and the phones are ignored. A word with several pronunciations is trained on with the FIRST one
  listed (MFA's dictionaries list the most likely first); `jaxalign-align` chooses among all of them per occurrence
  (`jaxalign.setups.alternatives`). A line without phones is named and ignored.
- Words not in the dictionary: `data.oov=spn` (default) pronounces each `spn` (MFA's spoken noise):
  the aligner scores it with a filler over the net's phones (`jaxalign.aligner.unknown`), so the
  recording is aligned and the word keeps its name on the words tier; such a recording does not
  train the net (`spn` is no class of it). `skip` leaves the recording unaligned (named on one line),
  `espeak` takes espeak-ng's phonemes for them (voice `data.espeak_voice`), `error` stops.
- The target of a recording: its words' phones with an optional silence (`data.silence`, a symbol of
  the vocabulary) before, between and after the words; `SequenceData.optional_symbol` tells order_sync
  that these rows may be skipped, so the Viterbi decides where the pauses are.
- Features: the log-mel front end of every speech source (`jaxalign.data.audio.FrontEnd`), computed
  once per recording and cached under `CACHE/corpus/<front end>/<digest of the audio file's bytes>.npz`
  (a failure to read is never cached).
- Splits: by default every readable recording trains the aligner (forced alignment aligns the data it
  learns from, as MFA does) and valid/test are empty; `data.valid_speaker_fraction` and
  `data.test_speaker_fraction` hold out a seeded share of the speakers instead.
"""

import csv
import dataclasses
import io
from pathlib import Path

import numpy as np

from jaxalign.data.audio import FrontEndKeys, front_end_of
from jaxalign.data.augment import augmented_copies, check_augment_spec
from jaxalign.data.corpus_files import AUDIO_SUFFIXES, Recording, find_recordings, read_transcript
from jaxalign.data.dataset import DataSplits, SequenceData
from jaxalign.data.dictionary import dictionary_text, espeak_phones, read_dictionary
from jaxalign.data.features import NORMALISATIONS, corpus_features, normalise_features
from jaxalign.errors import CorpusError

OOV_POLICIES = ("spn", "skip", "espeak", "error")
SPOKEN_NOISE = "spn"  # data.oov=spn: the pronunciation of every word the dictionary lacks (MFA's name)


@dataclasses.dataclass
class CorpusSpec(FrontEndKeys):  # sample_rate: audio is resampled to it
    root: str = "???"  # the corpus folder: SPEAKER/NAME.wav + NAME.lab (or flat)
    dictionary: str = "???"  # MFA pronunciation dictionary: WORD<TAB>PH PH ...
    silence: str = "sil"  # the optional pause symbol put before, between and after the words
    oov: str = "spn"  # unknown words: spn (aligned with a filler) | skip (the recording) | espeak | error
    espeak_voice: str = "en-us"  # data.oov=espeak: the voice whose phonemes stand in
    valid_speaker_fraction: float = 0.0  # share of speakers held out for validation; 0: none
    test_speaker_fraction: float = 0.0  # share of speakers held out for test; 0: none
    cache_dir: str = ""  # empty: $JAXALIGN_CACHE_DIR, else ~/.cache/jaxalign
    seed: int = 0  # the speaker split
    normalise: str = (
        "speaker"  # features: speaker (per-speaker mean and variance) | recording | none (features.normalise)
    )
    # training-only copies of each training recording (jaxalign.data.augment): noise+gain+speed | none
    augment: str = "none"
    augment_copies: int = 2  # augmented copies per training recording
    augment_min_snr_db: float = 10.0  # noise: SNR drawn uniformly in [min, max], relative to the recording
    augment_max_snr_db: float = 30.0
    augment_gain_db: float = 10.0  # gain: a level drawn uniformly in [-gain, +gain] dB ...
    augment_drift_db: float = 6.0  # ... plus a drift within the copy of up to this swing


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


# -- the corpus ------------------------------------------------------------------------------


def check_corpus_spec(spec: CorpusSpec) -> None:
    if spec.normalise not in NORMALISATIONS:
        raise CorpusError(f"data.normalise={spec.normalise!r} is not allowed; choose one of {list(NORMALISATIONS)}")
    if spec.oov not in OOV_POLICIES:
        raise CorpusError(f"data.oov={spec.oov!r} is not allowed; choose one of {list(OOV_POLICIES)}")
    if spec.root in ("", "???"):
        raise CorpusError("data.root is required: the corpus folder (SPEAKER/NAME.wav with NAME.lab)")
    if spec.dictionary in ("", "???"):
        raise CorpusError("data.dictionary is required: the pronunciation dictionary (WORD<TAB>PH PH ...)")
    if not Path(spec.root).is_dir():
        raise CorpusError(f"data.root: no corpus folder {spec.root}")
    if not spec.silence or any(c.isspace() for c in spec.silence):
        raise CorpusError(f"data.silence={spec.silence!r} must be one symbol without spaces")
    if spec.oov == "spn" and spec.silence == SPOKEN_NOISE:
        raise CorpusError(
            f"data.silence={spec.silence!r} is the pronunciation of unknown words under data.oov=spn; "
            "choose another silence symbol or another data.oov"
        )
    try:
        check_augment_spec(spec)
    except ValueError as err:
        raise CorpusError(str(err)) from None
    fractions = (spec.valid_speaker_fraction, spec.test_speaker_fraction)
    if min(fractions) < 0 or sum(fractions) >= 1:
        raise CorpusError(f"data.valid_speaker_fraction + test_speaker_fraction must be in [0, 1), got {fractions}")


def load_corpus(spec: CorpusSpec, dictionary=None, phones=None, say=print, normalise: bool = True) -> Corpus:
    """Reads the corpus at `spec.root`: every recording becomes an `Utterance` or an entry of
    `unaligned` with its reason (one line each through `say`). dictionary: {word: pronunciations}
    instead of reading `spec.dictionary`; phones: the phone set a trained run knows (a word whose
    phones it does not know is unaligned); normalise: False leaves the features raw (`data.normalise`
    not applied). Never augmented."""
    check_corpus_spec(spec)
    if dictionary is None:
        dictionary, warnings = read_dictionary(spec.dictionary, spec.silence)
        for line in warnings:
            say(f"warning: {line}")
    dictionary = {w: list(p) for w, p in dictionary.items()}
    recordings = find_recordings(spec.root, warn=lambda line: say(f"warning: {line}"))
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
    if oov and spec.oov == "spn":
        unknown = sorted({w for ws in oov.values() for w in ws})
        for word in unknown:
            dictionary[word] = [[SPOKEN_NOISE]]
        shown = " ".join(unknown[:20]) + (f" ... ({len(unknown) - 20} more)" if len(unknown) > 20 else "")
        say(f"{len(unknown)} words not in the dictionary are aligned as {SPOKEN_NOISE!r} (data.oov=spn): {shown}")
        oov = {}
    for rid, ws in oov.items():
        unaligned.append((rid, f"words not in the dictionary: {' '.join(ws)}"))
        del words_of[rid]
    if phones is not None:
        known = set(phones) | ({SPOKEN_NOISE} if spec.oov == "spn" else set())
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
    return Corpus(normalise_features(utterances, spec.normalise) if normalise else utterances, unaligned, dictionary)


def has_spoken_noise(utterance: Utterance) -> bool:
    """Whether a word of `utterance` is pronounced `spn` (data.oov=spn): it is aligned, not trained on."""
    return any(SPOKEN_NOISE in phones for phones in utterance.pronunciations)


def pronunciation_options(utterance, dictionary, entries, vocab) -> list[list[tuple[int | None, list[int]]]]:
    """Per word of `utterance` its pronunciations to choose among, as (index in the dictionary's
    list, symbol ids over `vocab`): every listed pronunciation whose phones `vocab` holds, the
    utterance's own (the first listed) always first. A word the dictionary lacks (`spn`,
    data.oov=spn) has one, of index None. entries: the dictionary the words were looked up in
    (a run's), dictionary: the one whose lists are chosen from (the same, or the one an aligner
    is given)."""
    index = {p: n for n, p in enumerate(vocab)}
    out = []
    for word, first in zip(utterance.words, utterance.pronunciations):
        if word not in entries or first == [SPOKEN_NOISE]:
            out.append([(None, [index.get(p, len(vocab)) for p in first])])
            continue
        listed = dictionary.get(word, entries[word])
        out.append(
            [(n, [index[p] for p in phones]) for n, phones in enumerate(listed) if all(p in index for p in phones)]
        )
    return out


def utterance_sequences(utterances: list[Utterance], vocab: list[str], silence: str, dictionary=None) -> SequenceData:
    """The utterances as `SequenceData` over `vocab` (silence rows optional; no true alignments);
    `spn`, where `vocab` lacks it, is the symbol len(vocab) (`jaxalign.aligner.unknown`). With
    `dictionary` ({word: pronunciations}), each utterance's `alternatives` where a word has several."""
    index = {SPOKEN_NOISE: len(vocab)} | {p: i for i, p in enumerate(vocab)}
    labels = [np.array([index[p] for p in u.target(silence)], np.int32) for u in utterances]
    names = [u.recording.id for u in utterances]
    alternatives = None
    if dictionary is not None:
        options = [pronunciation_options(u, dictionary, dictionary, vocab) for u in utterances]
        alternatives = [
            [(word, [ids for _, ids in w]) for word, w in zip(u.words, o)] if any(len(w) > 1 for w in o) else None
            for u, o in zip(utterances, options)
        ]
    words = [list(u.words) for u in utterances]
    return SequenceData(
        [u.features for u in utterances], labels, None, vocab, index[silence], names=names, alternatives=alternatives,
        words=words,
    )  # fmt: skip


UNALIGNED_RECORD = "corpus_unaligned.csv"  # the run record's list of the recordings left out


def unaligned_csv(unaligned: list[tuple[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["recording", "reason"])
    writer.writerows(unaligned)
    return buffer.getvalue()


def add_unaligned(splits: DataSplits, rows: list[tuple[str, str]]) -> DataSplits:
    """`splits` with (recording id, reason) `rows` added to its record's `corpus_unaligned.csv`
    (sorted by recording id, as `load_corpus` lists them)."""
    old = list(csv.reader(io.StringIO(splits.record.get(UNALIGNED_RECORD, ""))))[1:]
    text = unaligned_csv(sorted([tuple(r) for r in old] + list(rows)))
    return dataclasses.replace(splits, record={**splits.record, UNALIGNED_RECORD: text})


def load_corpus_splits(spec: CorpusSpec) -> DataSplits:
    """The training data of `data=corpus` (module docstring); the run record gets the dictionary
    used (`dictionary.txt`, with the unknown words' `spn` or espeak's pronunciations where data.oov
    added them) and the recordings left out (`corpus_unaligned.csv`)."""
    corpus = load_corpus(spec, say=lambda line: print(f"data=corpus: {line}", flush=True), normalise=False)
    everyone = corpus.utterances  # the normalisation's statistics are the aligner's: every recording's
    noisy = [u.recording.id for u in corpus.utterances if has_spoken_noise(u)]
    if noisy:
        print(f"data=corpus: {len(noisy)} recordings with a word pronounced {SPOKEN_NOISE!r} are aligned but not "
              "trained on", flush=True)  # fmt: skip
        corpus = dataclasses.replace(corpus, utterances=[u for u in corpus.utterances if not has_spoken_noise(u)])
    if not corpus.utterances:
        raise CorpusError(f"data.root: none of the recordings under {spec.root} can be used (see the lines above)")
    used = {w for u in corpus.utterances for w in u.words}  # every listed pronunciation's phones: training chooses
    vocab = sorted({p for w in used for ps in corpus.dictionary[w] for p in ps} | {spec.silence})
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
    copies = augmented_copies(spec, parts["train"], front_end_of(spec), spec.seed)
    normalised = normalise_features(everyone, spec.normalise, copies)
    by_id = {u.recording.id: u for u in normalised[: len(everyone)]}
    parts = {name: [by_id[u.recording.id] for u in part] for name, part in parts.items()}
    parts["train"] += normalised[len(everyone) :]
    if copies:
        print(f"data=corpus: {len(copies)} augmented training copies (data.augment={spec.augment}, "
              f"{spec.augment_copies} per recording)", flush=True)  # fmt: skip
    record = {
        "dictionary.txt": dictionary_text(corpus.dictionary),
        UNALIGNED_RECORD: unaligned_csv(corpus.unaligned),
    }
    print(
        f"data=corpus: {len(corpus.utterances)} recordings "
        f"({sum(u.duration for u in corpus.utterances) / 60:.1f} min, {len(speakers)} speakers, "
        f"{len(vocab) - 1} phones + {spec.silence!r}); {len(corpus.unaligned)} left out"
        + (" (listed in RUN_DIR/corpus_unaligned.csv)" if corpus.unaligned else ""),
        flush=True,
    )
    splits = DataSplits(*(utterance_sequences(parts[name], vocab, spec.silence, corpus.dictionary)
                          for name in ("train", "valid", "test")), record=record)  # fmt: skip
    return splits.with_front_end(front_end_of(spec))
