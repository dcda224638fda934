"""Spoken English words synthesised locally with espeak-ng: phone recognition with exact boundaries.

Each utterance is one word from a built-in list of ~950 common English words (`words_en.txt`, or
`word_list`), spoken by a voice drawn from `voices` at a random rate and base pitch, padded with
silence and mixed with white noise at `snr_db`. The targets are espeak-ng's own phonemes (its ASCII
mnemonics, e.g. `h @ l oU`, stress marks removed) and their boundaries are the sample positions of
its phoneme events, so the segmentation is exact by construction. Conventions:
- Silence is a phone, `_`: the added padding, espeak's short lead-in and its closing pause form a `_`
  row at the start and end of every utterance (like TIMIT's `h#`). Zero-length events are dropped.
- An event marks where espeak starts generating its phoneme; for a stop that is about the release,
  so the closure silence before it belongs to the phone before (espeak's convention, not an error).
- Features are the log-mel energies of `jaxalign.data.audio.FrontEnd` (25 ms windows every 10 ms)
  after resampling espeak's 22.05 kHz output to `sample_rate`. Each frame takes the phone at its
  centre and runs of equal frame phones form the target rows (as in the TIMIT loader), so a phone
  shorter than the frame spacing can vanish from the target.
- The word list is split into train/valid/test first (seeded), so no word is in two splits.
- espeak-ng carries a little state from one call to the next (pitch phase, noise), so an utterance's
  audio, and the end of its last phone by a few samples, depends on what was spoken before it: the
  cache, not re-synthesis, is what makes runs identical.
The result is cached as a `data=arrays` file `CACHE/spoken_words/<hash>.npz` (the hash covers the
config, the word list and the espeak-ng package version) with a `.json` beside it holding each
utterance's word, voice, rate and pitch; CACHE is `cache_dir`, else $JAXALIGN_CACHE_DIR, else
~/.cache/jaxalign.
"""

import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from scipy.signal import firwin, resample_poly
from tqdm import tqdm

from jaxalign.data.arrays import load_presplit_arrays, write_arrays
from jaxalign.data.audio import FrontEndKeys, front_end_of
from jaxalign.data.dataset import DataSplits, seeded_split
from jaxalign.data.espeak import RATE_MAX, RATE_MIN, EspeakError, get_espeak
from jaxalign.errors import SpokenWordsError
from jaxalign.runtime import cache_dir

FORMAT_VERSION = 1  # bump when the generated arrays change for the same config
SILENCE = "_"
BUILTIN_WORDS = Path(__file__).with_name("words_en.txt")
log = logging.getLogger(__name__)


def _default_voices() -> list[str]:
    return ["en", "en-us", "en+m3", "en+f2", "en-us+m1", "en-us+f4"]


@dataclasses.dataclass
class SpokenWordsSpec(FrontEndKeys):  # sample_rate: espeak's 22050 Hz output is resampled to it
    num_train: int = 3000
    num_valid: int = 300
    num_test: int = 500
    valid_word_fraction: float = 0.1  # share of the word list whose utterances are validation only
    test_word_fraction: float = 0.15  # share of the word list whose utterances are test only
    voices: list[str] = dataclasses.field(
        default_factory=_default_voices
    )  # espeak-ng voice[+variant], one drawn per utterance
    min_rate: int = 130  # words per minute, drawn uniformly (espeak-ng: 80..450, 175 normal)
    max_rate: int = 250
    min_pitch: int = 30  # base pitch 0..100 (50 normal), drawn uniformly
    max_pitch: int = 70
    min_pad_ms: float = 50.0  # silence added before and after the word, drawn uniformly
    max_pad_ms: float = 200.0
    snr_db: float = 20.0  # white noise relative to the speech power; >= 100 is effectively clean
    word_list: str = ""  # text file, one word per line; empty: the built-in list
    cache_dir: str = ""  # empty: $JAXALIGN_CACHE_DIR, else ~/.cache/jaxalign
    seed: int = 0


@dataclasses.dataclass
class SpokenWord:
    """One synthesised word. Sample positions are at `sample_rate`.

    audio (S,) float32; starts (P,) int start sample of each phone segment (starts[0] = 0, increasing,
    each segment runs to the next start, the last to S); phones (P,) names; features (T, num_mels);
    labels (L,) phone name of each target row; alignment (T,) int32 row of each frame.
    """

    word: str
    voice: str
    rate: int
    pitch: int
    audio: np.ndarray
    starts: np.ndarray
    phones: list[str]
    features: np.ndarray
    labels: list[str]
    alignment: np.ndarray


def phone_name(mnemonic: str) -> str:
    """espeak mnemonic -> phone: stress marks dropped, every pause (`_`, `_:`, `_!` ...) is `_`."""
    name = mnemonic.replace("'", "").replace(",", "")
    return SILENCE if name.startswith("_") or not name else name


def segments(events, num_samples: int) -> tuple[np.ndarray, list[str]]:
    """Phoneme events [(start sample, mnemonic)] -> (starts, phones) covering [0, num_samples).

    Audio before the first event is silence; zero-length events are dropped; adjacent equal phones
    (e.g. the closing pause and espeak's tail) merge.
    """
    bounds = [(0, SILENCE)] + [(int(s), phone_name(m)) for s, m in events]
    ends = [s for s, _ in bounds[1:]] + [num_samples]
    starts, phones = [], []
    for (start, phone), end in zip(bounds, ends):
        if end <= start:
            continue
        if phones and phones[-1] == phone:
            continue
        starts.append(start)
        phones.append(phone)
    return np.asarray(starts, np.int64), phones


def frame_rows(starts: np.ndarray, phones: list[str], num_frames: int, spec) -> tuple[list[str], np.ndarray]:
    """Each frame takes the phone at its centre; runs of equal frame phones are the target rows."""
    centres = front_end_of(spec).frame_centres(num_frames)
    segment = np.clip(np.searchsorted(starts, centres, side="right") - 1, 0, len(starts) - 1)
    names = np.asarray(phones)[segment]
    change = np.concatenate([[True], names[1:] != names[:-1]])
    return names[change].tolist(), (np.cumsum(change) - 1).astype(np.int32)


def _up_down(target: int, source: int) -> tuple[int, int]:
    g = math.gcd(target, source)
    return target // g, source // g


@functools.cache
def _antialias(up: int, down: int) -> np.ndarray:
    """resample_poly's own default filter, designed once instead of per call."""
    rate = max(up, down)
    return firwin(2 * 10 * rate + 1, 1.0 / rate, window=("kaiser", 5.0))


def synthesise(word: str, voice: str, rate: int, pitch: int, spec: SpokenWordsSpec, rng) -> SpokenWord:
    """Speaks one word, pads it with silence, adds noise, and computes features and the true alignment."""
    espeak = get_espeak()
    espeak.set_voice(voice)
    pcm, events = espeak.synth(word, rate=rate, pitch=pitch)
    if not events or len(pcm) == 0:
        raise SpokenWordsError(f"espeak-ng produced no speech for word {word!r} with voice {voice!r}")
    lead, trail = (int(espeak.sample_rate * rng.uniform(spec.min_pad_ms, spec.max_pad_ms) / 1000) for _ in range(2))
    speech = pcm.astype(np.float32) / 32768.0
    padded = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(trail, np.float32)])
    ratio = spec.sample_rate / espeak.sample_rate
    if ratio != 1:
        up, down = _up_down(spec.sample_rate, espeak.sample_rate)
        padded = resample_poly(padded, up, down, window=_antialias(up, down)).astype(np.float32)
    starts, phones = segments([(round((s + lead) * ratio), m) for s, m in events], len(padded))
    power = float(np.mean(speech**2))
    audio = (padded + rng.normal(0.0, math.sqrt(power / 10 ** (spec.snr_db / 10)), len(padded))).astype(np.float32)
    features = front_end_of(spec).log_mel(audio)
    labels, alignment = frame_rows(starts, phones, len(features), spec)
    return SpokenWord(word, voice, rate, pitch, audio, starts, phones, features, labels, alignment)


def read_words(spec: SpokenWordsSpec) -> list[str]:
    path = Path(spec.word_list) if spec.word_list else BUILTIN_WORDS
    if not path.is_file():
        raise SpokenWordsError(f"data.word_list: no such file {path}")
    words = sorted(
        {w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip() and not w.startswith("#")}
    )
    if len(words) < 3:
        raise SpokenWordsError(f"data.word_list: {path} has {len(words)} words; need at least 3 (one per split)")
    return words


def check_spoken_words_spec(spec: SpokenWordsSpec) -> None:
    ranges = {"rate": (RATE_MIN, RATE_MAX), "pitch": (0, 100), "pad_ms": (0, math.inf)}
    for key, (lowest, highest) in ranges.items():
        low, high = getattr(spec, f"min_{key}"), getattr(spec, f"max_{key}")
        if not lowest <= low <= high <= highest:
            raise SpokenWordsError(
                f"data.min_{key}/max_{key} must satisfy {lowest} <= min <= max <= {highest}, got {low}, {high}"
            )
    if not spec.voices:
        raise SpokenWordsError("data.voices must name at least one espeak-ng voice")
    fractions = (spec.valid_word_fraction, spec.test_word_fraction)
    if min(fractions) < 0 or sum(fractions) >= 1:
        raise SpokenWordsError(f"data.valid_word_fraction + test_word_fraction must be in [0, 1), got {fractions}")
    if spec.num_train < 1 or min(spec.num_valid, spec.num_test) < 0:
        sizes = (spec.num_train, spec.num_valid, spec.num_test)
        raise SpokenWordsError(f"data.num_train must be >= 1 and num_valid/num_test >= 0, got {sizes}")


def split_words(words: list[str], spec: SpokenWordsSpec) -> list[list[str]]:
    """Seeded train/valid/test partition of the word list (no word in two splits)."""
    parts = seeded_split(len(words), (spec.valid_word_fraction, spec.test_word_fraction), spec.seed)
    out = [[words[i] for i in sorted(p)] for p in parts]
    for name, part, count in zip(("train", "valid", "test"), out, (spec.num_train, spec.num_valid, spec.num_test)):
        if count and not part:
            key = {
                "train": "valid_word_fraction/test_word_fraction",
                "valid": "valid_word_fraction",
                "test": "test_word_fraction",
            }[name]
            raise SpokenWordsError(f"data.{key}: the {name} split gets no words out of {len(words)}")
    return out


def plan(spec: SpokenWordsSpec, words: list[str]) -> list[dict]:
    """What to say, in generation order: split, word, voice, rate, pitch and a per-utterance seed."""
    rows = []
    for split, (part, count) in enumerate(
        zip(split_words(words, spec), (spec.num_train, spec.num_valid, spec.num_test))
    ):
        rng = np.random.default_rng([spec.seed, split])
        cycles = -(-count // len(part)) if part else 0
        order = np.concatenate([rng.permutation(len(part)) for _ in range(cycles)] or [np.zeros(0, int)])[:count]
        for i, w in enumerate(order):
            pick = np.random.default_rng([spec.seed, split, i, 1])
            rows.append({
                "split": split,
                "word": part[int(w)],
                "voice": str(spec.voices[int(pick.integers(len(spec.voices)))]),
                "rate": int(pick.integers(spec.min_rate, spec.max_rate + 1)),
                "pitch": int(pick.integers(spec.min_pitch, spec.max_pitch + 1)),
                "seed": [spec.seed, split, i, 2],
            })  # fmt: skip
    return rows


def _espeak_version() -> str:
    try:
        return metadata.version("espeakng-loader")
    except metadata.PackageNotFoundError:
        return "missing"


def cache_path(spec: SpokenWordsSpec) -> Path:
    """Where this config's data lives: the hash covers every key but `cache_dir`, the words and espeak."""
    fields = {
        f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name not in ("cache_dir", "word_list")
    }
    fields["voices"] = [str(v) for v in spec.voices]
    key = {"spec": fields, "words": read_words(spec), "espeakng_loader": _espeak_version(), "format": FORMAT_VERSION}
    blob = json.dumps(key, sort_keys=True)
    folder = Path(spec.cache_dir).expanduser() / "spoken_words" if spec.cache_dir else cache_dir("spoken_words")
    return folder / f"{hashlib.sha256(blob.encode()).hexdigest()[:16]}.npz"


def generate(spec: SpokenWordsSpec, path: Path) -> None:
    """Synthesises the whole data set described by `spec` and writes it to `path` (+ `.json`)."""
    check_spoken_words_spec(spec)
    rows = plan(spec, read_words(spec))
    try:
        espeak = get_espeak()
        for voice in sorted(set(spec.voices)):
            espeak.set_voice(voice)
    except EspeakError as err:
        raise SpokenWordsError(f"data.voices: {err}" if "voice" in str(err) else str(err)) from None
    tic = time.perf_counter()
    utts = []
    for row in tqdm(rows, desc="data=spoken_words: synthesising", unit="utt", mininterval=1.0):
        utts.append(
            synthesise(row["word"], row["voice"], row["rate"], row["pitch"], spec, np.random.default_rng(row["seed"]))
        )
    vocab = sorted({p for u in utts for p in u.labels})
    index = {p: i for i, p in enumerate(vocab)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}-tmp{os.getpid()}.npz")
    meta = {
        "spec": {**dataclasses.asdict(spec), "voices": [str(v) for v in spec.voices]},
        "espeak_ng": espeak.version,
        "espeakng_loader": _espeak_version(),
        "seconds": round(time.perf_counter() - tic, 2),
        "utterances": [{k: r[k] for k in ("split", "word", "voice", "rate", "pitch")} for r in rows],
    }
    tmp.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    write_arrays(
        tmp.with_suffix(".npz"),
        [u.features for u in utts],
        [np.array([index[p] for p in u.labels], np.int32) for u in utts],
        alignments=[u.alignment for u in utts],
        split=[r["split"] for r in rows],
        vocab=vocab,
    )
    # json first, npz last: a present .npz means a complete entry, even with concurrent writers.
    os.replace(tmp.with_suffix(".json"), path.with_suffix(".json"))
    os.replace(tmp.with_suffix(".npz"), path)
    log.info("spoken_words: %d utterances in %.1f s -> %s", len(rows), meta["seconds"], path)


def load_spoken_words(spec: SpokenWordsSpec | None = None) -> DataSplits:
    """Loads the cached data set for `spec`, synthesising it first if it is not cached yet."""
    spec = spec or SpokenWordsSpec()
    check_spoken_words_spec(spec)
    path = cache_path(spec)
    if not (path.is_file() and path.with_suffix(".json").is_file()):
        generate(spec, path)
    return load_presplit_arrays(path).with_front_end(front_end_of(spec))
