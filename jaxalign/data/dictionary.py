"""Pronunciation dictionaries in the Montreal Forced Aligner's format (`WORD<TAB>PH PH ...`), and
espeak-ng's phonemes for words a dictionary lacks (`data.oov=espeak`)."""

import math
import unicodedata
from pathlib import Path
from typing import NamedTuple

from jaxalign.errors import CorpusError


class WeightedDictionary(NamedTuple):
    """An MFA dictionary with its optional probability columns.

    entries:       {word: pronunciations in file order}.
    probabilities: {word: probability of each pronunciation (MFA's first column; a line without
                   one counts as 1.0)} for the words whose lines give one.
    pause_after:   {word: probability of a pause after each pronunciation (MFA's second column,
                   its silence probability; None on a line without one)} for the words whose
                   lines give one.
    warnings:      ignored lines, named.
    """

    entries: dict[str, list[list[str]]]
    probabilities: dict[str, list[float]]
    pause_after: dict[str, list[float | None]]
    warnings: list[str]


def read_dictionary(path, silence: str) -> tuple[dict[str, list[list[str]]], list[str]]:
    """MFA dictionary -> ({word: pronunciations in file order}, warnings about ignored lines). Words
    and phones are read in Unicode NFC (transcripts' words are too: `corpus_files.transcript_words`),
    words case-folded."""
    read = read_dictionary_with_probabilities(path, silence)
    return read.entries, read.warnings


def read_dictionary_with_probabilities(path, silence: str) -> WeightedDictionary:
    """`read_dictionary` plus MFA's probability columns (`WeightedDictionary`): a line may carry the
    pronunciation's probability, then the probability of a pause after it, then MFA's two silence
    corrections (read past, not used)."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"data.dictionary: no such file {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusError(f"data.dictionary: {path} is not UTF-8 text (byte {err.start})") from None
    entries: dict[str, list[list[str]]] = {}
    columns_of: dict[str, list[list[float]]] = {}  # per word, per pronunciation, its probability columns
    warnings = []
    for n, line in enumerate(unicodedata.normalize("NFC", text).splitlines(), 1):
        if not line.strip() or line.startswith(";;;"):
            continue
        fields = line.split("\t") if "\t" in line else line.split(None, 1)
        word, rest = unicodedata.normalize("NFC", fields[0].strip().casefold()), " ".join(fields[1:]).split()
        columns = []
        while rest and _is_probability(rest[0]):  # MFA's probability columns
            columns.append(float(rest[0]))
            rest = rest[1:]
        if not rest:
            warnings.append(f"{path.name}:{n}: {word!r} has no phones; the line is ignored")
            continue
        if silence in rest:
            raise CorpusError(f"data.dictionary: {path.name}:{n}: {word!r} uses {silence!r}, which is data.silence")
        if rest not in entries.setdefault(word, []):
            entries[word].append(rest)
            columns_of.setdefault(word, []).append(columns)
    if not entries:
        raise CorpusError(f"data.dictionary: {path} has no pronunciations (expected WORD<TAB>PH PH ...)")
    probabilities = {w: [c[0] if c else 1.0 for c in cs] for w, cs in sorted(columns_of.items()) if any(cs)}
    pause_after = {
        w: [c[1] if len(c) > 1 else None for c in cs]
        for w, cs in sorted(columns_of.items())
        if any(len(c) > 1 for c in cs)
    }
    return WeightedDictionary(entries, probabilities, pause_after, warnings)


def _is_probability(token: str) -> bool:
    """MFA's probability columns are decimals (`0.99`, `1.0`) or `1`; a phone such as espeak's `0` or
    `3` is not one."""
    if token != "1" and "." not in token:
        return False
    try:
        return math.isfinite(float(token))
    except ValueError:
        return False


def dictionary_text(
    dictionary: dict[str, list[list[str]]],
    probabilities: dict[str, list[float]] | None = None,
    pause_after: dict[str, list[float]] | None = None,
) -> str:
    """MFA's format, words sorted, pronunciations in their order (the first is the one training
    starts from). With `probabilities`, each of those words' lines carries its pronunciation's
    probability column (MFA's: the most likely of a word's pronunciations has 1.0); with
    `pause_after`, those words' lines carry MFA's silence probability as a second column (the first
    then 1 where `probabilities` has none)."""
    probabilities, pause_after = probabilities or {}, pause_after or {}

    def line(word, j, phones):
        columns = []
        if word in probabilities or word in pause_after:
            columns.append(probabilities[word][j] if word in probabilities else 1.0)
        if word in pause_after:
            columns.append(pause_after[word][j])
        return "\t".join([word, *(f"{c:.4g}" for c in columns), " ".join(phones)]) + "\n"

    return "".join(line(word, j, p) for word in sorted(dictionary) for j, p in enumerate(dictionary[word]))


def estimated_probabilities(counts: dict[str, list[int]]) -> dict[str, list[float]]:
    """Pronunciation probabilities from how often each was chosen ({word: count per pronunciation}),
    add-one smoothed and divided by the largest, as MFA writes them (the likeliest is 1.0)."""
    out = {}
    for word, c in counts.items():
        smoothed = [n + 1 for n in c]
        out[word] = [n / max(smoothed) for n in smoothed]
    return out


PAUSE_PRIOR_COUNT = 2  # MFA's smoothing of its silence probabilities (lambda_2 in its alignment/base.py)
PAUSE_FLOOR = 0.01  # no pause after a word is impossible or certain: log(0.01) is a frame's worth of evidence


def estimated_pause_probabilities(counts: dict[str, list[tuple[int, int]]]) -> dict[str, list[float]]:
    """The probability of a pause after each pronunciation of each word, from ({word: (followed by
    a pause, occurrences) per pronunciation}), as MFA estimates its silence probabilities: the
    counts plus `PAUSE_PRIOR_COUNT` occurrences at the corpus' overall rate, so a rare word keeps
    close to the overall rate; kept within [PAUSE_FLOOR, 1 - PAUSE_FLOOR]."""
    paused = sum(p for c in counts.values() for p, _ in c)
    total = sum(n for c in counts.values() for _, n in c)
    overall = paused / max(total, 1)
    return {
        word: [
            min(max((p + PAUSE_PRIOR_COUNT * overall) / (n + PAUSE_PRIOR_COUNT), PAUSE_FLOOR), 1 - PAUSE_FLOOR)
            for p, n in c
        ]
        for word, c in counts.items()
    }


def espeak_phones(word: str, voice: str) -> list[str]:
    """espeak-ng's phonemes of `word` (its ASCII mnemonics, stress dropped, pauses left out)."""
    from jaxalign.data.espeak import get_espeak
    from jaxalign.data.spoken_words import SILENCE, phone_name

    espeak = get_espeak()
    espeak.set_voice(voice)
    _, events = espeak.synth(word)
    return [p for p in (phone_name(m) for _, m in events) if p != SILENCE]
