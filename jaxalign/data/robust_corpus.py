"""A robustness corpus: continuous espeak speech unlike the plain corpus the aligner is tuned on.

`write_robust_corpus(OUT)` writes the layout of `jaxalign.data.espeak_corpus`'s continuous mode (its
`write_phrases` speaks and writes; the truth is exact in the same way) with, per recording:
- other voices: espeak-ng's Klatt and whispered variants beside a plain one (`ROBUST_VOICES`); any
  voice with a variant of the espeakng-loader data (`en-us+klatt3`, `en+whisperf`, `en-us+croak`, ...),
- a wider rate (`ROBUST_RATES`, words per minute) and pitch (`ROBUST_PITCHES`) range,
- a gain: a level across files (`level_db`, uniform) and a slow drift within the file, a half cosine
  over the whole recording from -drift_db/2 to +drift_db/2 (or back), on the speech only, as a talker
  moving from or to the microphone; the noise floor stays,
- noise at an SNR drawn from `snr_db` (relative to the power of the gained speech inside the words), of
  a colour drawn from `NOISE_COLOURS`: white (flat), pink (power ~ 1/f), brown (~ 1/f^2, a rumble)
  (`jaxalign.data.augment`'s noise and gain, which training augmentation uses too);
  if the sum would clip, the whole recording is scaled down (SNR and drift kept),
- sentences whose pauses (commas, and the recording's two ends) are more often next to words that
  start or end with weak sounds: with `weak_edge_probability` the word after a pause is one spelled with
  a leading h, f, th or s (not sh), the word before a pause one ending in f, th, s or ce (`weak_edges`).
`OUT/conditions.csv` records each recording's voice, rate, pitch, SNR, noise colour, level and drift.
"""

import functools

import numpy as np

from jaxalign.data.augment import NOISE_COLOURS, coloured_noise, gain_curve_db
from jaxalign.data.espeak_corpus import _check, _word_list, prepare_output, sentence_pool, write_phrases
from jaxalign.errors import EspeakCorpusError

ROBUST_VOICES = ("en-us+klatt", "en+whisper", "en-us+f3", "en-gb-scotland+klatt4")
ROBUST_RATES = (110, 300)
ROBUST_PITCHES = (10, 90)
WEAK_STARTS, NOT_WEAK_STARTS = ("h", "f", "th", "s"), ("sh", "sch")
WEAK_ENDS = ("f", "th", "s", "ce")
_WEAK_KEY = 1 << 21  # seeds the weak-edge choices apart from the pool and the speakers


def robust_parts(
    clean: np.ndarray,
    words: list[tuple[int, int]],
    rng,
    *,
    snr_db=(10.0, 20.0),
    colours=NOISE_COLOURS,
    level_db=(-18.0, 0.0),
    drift_db=6.0,
) -> dict:
    """The pieces of one robust recording of (S,) `clean` (words: (begin, end) samples of its words):
    speech (the clean audio under the gain), noise, audio (their sum, scaled down if it would clip) and
    the conditions drawn: snr_db, colour, level_db, drift_db (signed: negative falls), gain_db (S,)."""
    snr = float(rng.uniform(*snr_db))
    colour = str(colours[int(rng.integers(len(colours)))])
    level = float(rng.uniform(*level_db))
    rising = bool(rng.random() < 0.5)
    gain_db = gain_curve_db(len(clean), level, drift_db, rising)
    speech = clean * 10 ** (gain_db / 20)
    power = float(np.mean(np.concatenate([speech[a:b] for a, b in words]) ** 2))
    noise = coloured_noise(len(clean), colour, rng) * np.sqrt(power / 10 ** (snr / 10))
    audio = speech + noise
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    scale = min(1.0, 0.98 / peak) if peak > 0 else 1.0
    return {
        "speech": speech * scale,
        "noise": noise * scale,
        "audio": (audio * scale).astype(np.float32),
        "snr_db": round(snr, 2),
        "colour": colour,
        "level_db": round(level + 20 * np.log10(scale), 2),
        "drift_db": drift_db if rising else -drift_db,
        "gain_db": gain_db + 20 * np.log10(scale),
    }


def robust_render(clean, words, rng, **conditions) -> tuple[np.ndarray, dict]:
    """`write_phrases`'s render: (audio, the conditions drawn) of `robust_parts`."""
    parts = robust_parts(clean, words, rng, **conditions)
    keep = ("snr_db", "colour", "level_db", "drift_db")
    return parts["audio"], {key: parts[key] for key in keep}


def weak_edges(pool, vocabulary, probability: float, seed: int) -> list[tuple[list, list]]:
    """`pool` with, at each pause (a comma, and the sentence's two ends) and with `probability` each, the
    word after it replaced by a word spelled with a weak start and the word before it by one with a weak
    end (`WEAK_STARTS`, `WEAK_ENDS`) from `vocabulary`; commas unchanged."""
    starts = [w for w in vocabulary if w.startswith(WEAK_STARTS) and not w.startswith(NOT_WEAK_STARTS)]
    ends = [w for w in vocabulary if w.endswith(WEAK_ENDS)]
    if probability > 0 and not (starts and ends):
        raise EspeakCorpusError("weak_edge_probability > 0 needs words with weak starts and weak ends in the list")
    out = []
    for u, (words, commas) in enumerate(pool):
        rng = np.random.default_rng([seed, _WEAK_KEY, u])
        words = list(words)
        after = [0] + [k + 1 for k, comma in enumerate(commas) if comma]
        before = [k for k, comma in enumerate(commas) if comma] + [len(words) - 1]
        for k in after:
            if rng.random() < probability:
                words[k] = starts[int(rng.integers(len(starts)))]
        for k in before:
            if rng.random() < probability:
                words[k] = ends[int(rng.integers(len(ends)))]
        out.append((words, list(commas)))
    return out


def write_robust_corpus(
    out_dir,
    *,
    voices=ROBUST_VOICES,
    utterances_per_speaker: int = 40,
    min_words: int = 3,
    max_words: int = 10,
    comma_probability: float = 0.3,
    weak_edge_probability: float = 0.6,
    snr_db=(10.0, 20.0),
    colours=NOISE_COLOURS,
    level_db=(-18.0, 0.0),
    drift_db: float = 6.0,
    rates=ROBUST_RATES,
    pitches=ROBUST_PITCHES,
    sample_rate: int = 22050,
    seed: int = 0,
    words=None,
    overwrite: bool = False,
) -> dict:
    """Writes the robustness corpus (module docstring) under `out_dir`; returns `write_phrases`'s summary.

    snr_db, level_db: (low, high) ranges drawn uniformly per recording; colours: drawn uniformly per
    recording from these; drift_db: the gain's swing within a recording (0: none)."""
    import time

    tic = time.perf_counter()
    _check(None, utterances_per_speaker, min_words, max_words, 0.0, 0.0, 0.0)
    if not (snr_db[0] <= snr_db[1] and level_db[0] <= level_db[1] and drift_db >= 0):
        raise EspeakCorpusError(f"need low <= high in snr_db {snr_db} and level_db {level_db}, and drift_db >= 0")
    if not 0 <= weak_edge_probability <= 1 or not 0 <= comma_probability <= 1:
        raise EspeakCorpusError(
            f"need 0 <= weak_edge_probability, comma_probability <= 1, got {weak_edge_probability}, {comma_probability}"
        )
    if not colours or any(c not in NOISE_COLOURS for c in colours):
        raise EspeakCorpusError(f"colours: need some of {list(NOISE_COLOURS)}, got {list(colours)}")
    vocabulary = _word_list(words)
    paths = prepare_output(out_dir, voices, overwrite)
    pool = sentence_pool(vocabulary, utterances_per_speaker, min_words, max_words, comma_probability, seed)
    pool = weak_edges(pool, vocabulary, weak_edge_probability, seed)
    render = functools.partial(robust_render, snr_db=snr_db, colours=colours, level_db=level_db, drift_db=drift_db)
    summary = write_phrases(paths, voices, pool, render=render, sample_rate=sample_rate, seed=seed, rates=rates,
                            pitches=pitches)  # fmt: skip
    return {**summary, "elapsed_seconds": round(time.perf_counter() - tic, 3)}
