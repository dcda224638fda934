"""The files of a corpus in the Montreal Forced Aligner's layout: which recordings there are, and
the words of their transcripts (`jaxalign.data.corpus` has the conventions).

- Recordings: `ROOT/SPEAKER/NAME.wav` (FLAC and OGG too), or flat `ROOT/NAME.wav`; deeper folders are
  allowed and the speaker is the folder path under ROOT.
- Transcripts beside the audio: `NAME.lab` or `NAME.txt` (the words on a line), else `NAME.TextGrid`
  (the texts of its first interval tier's intervals, in order). Words are compared case-folded, with
  punctuation around them removed (`don't` keeps its apostrophe).
"""

import dataclasses
import string
from pathlib import Path

from jaxalign.errors import CorpusError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
TRANSCRIPT_SUFFIXES = (".lab", ".txt", ".textgrid")  # the first one present is read
_STRIP = string.punctuation.replace("'", "") + "“”‘’«»¿¡"


@dataclasses.dataclass
class Recording:
    """One audio file of the corpus; `id` is its path under ROOT without the suffix (`SPEAKER/NAME`)."""

    id: str
    speaker: str
    audio: Path
    transcript: Path | None


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


def transcript_words(text: str) -> list[str]:
    """A transcript line -> its words, case-folded, surrounding punctuation removed."""
    words = (w.strip(_STRIP).casefold() for w in text.split())
    return [w for w in words if w]


def read_transcript(path: Path) -> list[str]:
    """The words of a `.lab`/`.txt` (UTF-8) or `.TextGrid` (UTF-8 or Praat's UTF-16) transcript;
    ValueError with the reason if unreadable."""
    if path.suffix.lower() != ".textgrid":
        raw = path.read_bytes()
        try:
            return transcript_words(raw.decode("utf-8-sig"))
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
    return transcript_words(" ".join(entry.label for entry in tier.entries))
