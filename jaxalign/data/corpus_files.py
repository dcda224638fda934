"""The files of a corpus in the Montreal Forced Aligner's layout: which recordings there are, and
the words of their transcripts (`jaxalign.data.corpus` has the conventions).

- Recordings: `ROOT/SPEAKER/NAME.wav` (FLAC and OGG too), or flat `ROOT/NAME.wav`; deeper folders are
  allowed and the speaker is the folder path under ROOT.
- Transcripts beside the audio: `NAME.lab` or `NAME.txt` (the words on a line), else `NAME.TextGrid`
  (the texts of its first interval tier's intervals, in order). Words are compared in Unicode NFC,
  case-folded, with punctuation around them removed (`don't` keeps its apostrophe).
"""

import dataclasses
import string
import unicodedata
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


def find_recordings(root, warn=None) -> list[Recording]:
    """Every audio file under `root` (any depth, suffixes case-insensitive), sorted by id, with the
    first transcript beside it in `TRANSCRIPT_SUFFIXES` order (None if there is none).

    Folders that are symbolic links are followed (a folder reached twice, e.g. through a link back
    up the tree, is read once); a second file of the same name and kind whose suffix differs in case
    only (`x.WAV` beside `x.wav`) is ignored, and `warn(line)` names it (the lower-case one is read)."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"data.root: no corpus folder {root}")
    warn = warn or (lambda line: None)

    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix()

    files: dict[tuple[Path, str], dict[str, Path]] = {}  # (folder, stem) -> {suffix: path}
    for path in _files_under(root, warn, rel):
        suffix = path.suffix.lower()
        if suffix not in AUDIO_SUFFIXES + TRANSCRIPT_SUFFIXES:
            continue
        found = files.setdefault((path.parent, path.stem), {})
        if suffix in found:
            kept, dropped = sorted((found[suffix], path), key=lambda p: (p.suffix != p.suffix.lower(), p.name))
            found[suffix] = kept
            kind = "audio" if suffix in AUDIO_SUFFIXES else "transcript"
            warn(f"{rel(dropped)} is a second {kind} file beside {rel(kept)}; it is ignored ({kept.name} is read)")
            continue
        found[suffix] = path
    out = []
    for (folder, stem), found in sorted(files.items()):
        audio = [found[s] for s in AUDIO_SUFFIXES if s in found]
        if not audio:
            continue
        if len(audio) > 1:
            rel_id = (folder / stem).relative_to(root).as_posix()
            raise CorpusError(f"data.root: {root} has two audio files for recording {rel_id!r} (e.g. .wav and .flac)")
        transcript = next((found[s] for s in TRANSCRIPT_SUFFIXES if s in found), None)
        rel_path = audio[0].relative_to(root).with_suffix("")
        speaker = rel_path.parent.as_posix() if rel_path.parent != Path() else ""
        out.append(Recording(rel_path.as_posix(), speaker, audio[0], transcript))
    return sorted(out, key=lambda r: r.id)


def _files_under(root: Path, warn, rel) -> list[Path]:
    """The files under `root`, sorted, through folder links; each real folder is listed once."""
    seen, files, stack = set(), [], [root]
    while stack:
        folder = stack.pop()
        real = folder.resolve()
        if real in seen:
            warn(f"{rel(folder)}/ leads to a folder already read ({real.name}/, a link); it is read once")
            continue
        seen.add(real)
        try:
            entries = sorted(folder.iterdir())
        except OSError as err:
            warn(f"{rel(folder) if folder != root else '.'}/ cannot be listed ({err.strerror}); it is skipped")
            continue
        for entry in entries:
            if entry.is_dir():
                stack.append(entry)
            elif entry.is_file():
                files.append(entry)
    return sorted(files)


def transcript_words(text: str) -> list[str]:
    """A transcript line -> its words in Unicode NFC (so `café` typed as e + combining accent, NFD,
    is the dictionary's `café`), case-folded, surrounding punctuation removed."""
    words = (
        unicodedata.normalize("NFC", w.strip(_STRIP).casefold()) for w in unicodedata.normalize("NFC", text).split()
    )
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
