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
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"data.dictionary: no such file {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusError(f"data.dictionary: {path} is not UTF-8 text (byte {err.start})") from None
    entries: dict[str, list[list[str]]] = {}
    warnings = []
    for n, line in enumerate(unicodedata.normalize("NFC", text).splitlines(), 1):
        if not line.strip() or line.startswith(";;;"):
            continue
        fields = line.split("\t") if "\t" in line else line.split(None, 1)
        word, rest = unicodedata.normalize("NFC", fields[0].strip().casefold()), " ".join(fields[1:]).split()
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
