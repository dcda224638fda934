"""Pronunciation dictionaries in the Montreal Forced Aligner's format (`WORD<TAB>PH PH ...`), and
espeak-ng's phonemes for words a dictionary lacks (`data.oov=espeak`)."""

import math
import unicodedata
from pathlib import Path

from jaxalign.errors import CorpusError


def read_dictionary(path, silence: str) -> tuple[dict[str, list[list[str]]], list[str]]:
    """MFA dictionary -> ({word: pronunciations in file order}, warnings about ignored lines). Words
    and phones are read in Unicode NFC (transcripts' words are too: `corpus_files.transcript_words`),
    words case-folded."""
    entries, _, warnings = read_dictionary_with_probabilities(path, silence)
    return entries, warnings


def read_dictionary_with_probabilities(path, silence: str):
    """`read_dictionary` plus MFA's pronunciation probabilities: (entries, {word: probability of each
    of its pronunciations, in `entries`' order} for the words whose lines give one (a line without
    counts as 1.0), warnings). The other columns MFA may write (silence probabilities and their
    corrections) are skipped."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"data.dictionary: no such file {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusError(f"data.dictionary: {path} is not UTF-8 text (byte {err.start})") from None
    entries: dict[str, list[list[str]]] = {}
    probabilities: dict[str, list[float]] = {}
    given: set[str] = set()  # words with a probability column on some line
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
            probabilities.setdefault(word, []).append(columns[0] if columns else 1.0)
            if columns:
                given.add(word)
    if not entries:
        raise CorpusError(f"data.dictionary: {path} has no pronunciations (expected WORD<TAB>PH PH ...)")
    return entries, {w: probabilities[w] for w in sorted(given)}, warnings


def _is_probability(token: str) -> bool:
    """MFA's probability columns are decimals (`0.99`, `1.0`) or `1`; a phone such as espeak's `0` or
    `3` is not one."""
    if token != "1" and "." not in token:
        return False
    try:
        return math.isfinite(float(token))
    except ValueError:
        return False


def dictionary_text(dictionary: dict[str, list[list[str]]], probabilities: dict[str, list[float]] | None = None) -> str:
    """MFA's format, words sorted, pronunciations in their order (the first is the one training
    starts from); with `probabilities`, each of those words' lines carries its pronunciation's
    probability column (MFA's: the most likely of a word's pronunciations has 1.0)."""
    probabilities = probabilities or {}

    def line(word, j, phones):
        column = f"{probabilities[word][j]:.4g}\t" if word in probabilities else ""
        return f"{word}\t{column}{' '.join(phones)}\n"

    return "".join(line(word, j, p) for word in sorted(dictionary) for j, p in enumerate(dictionary[word]))


def estimated_probabilities(counts: dict[str, list[int]]) -> dict[str, list[float]]:
    """Pronunciation probabilities from how often each was chosen ({word: count per pronunciation}),
    add-one smoothed and divided by the largest, as MFA writes them (the likeliest is 1.0)."""
    out = {}
    for word, c in counts.items():
        smoothed = [n + 1 for n in c]
        out[word] = [n / max(smoothed) for n in smoothed]
    return out


def espeak_phones(word: str, voice: str) -> list[str]:
    """espeak-ng's phonemes of `word` (its ASCII mnemonics, stress dropped, pauses left out)."""
    from jaxalign.data.espeak import get_espeak
    from jaxalign.data.spoken_words import SILENCE, phone_name

    espeak = get_espeak()
    espeak.set_voice(voice)
    _, events = espeak.synth(word)
    return [p for p in (phone_name(m) for _, m in events) if p != SILENCE]
