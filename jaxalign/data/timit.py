"""TIMIT from its on-disk layout: `ROOT/{TRAIN,TEST}/DR*/SPEAKER/UTT.{WAV,PHN}`.

An utterance is a `.PHN` file (`start end phone` in samples) and ONE audio file beside it with the
same stem. Both layouts in circulation are accepted, in any letter case: the LDC original
(`UTT.WAV`) and the common copy that adds a converted `UTT.WAV.wav` beside it (then `UTT.WAV` is
read; the copy is not counted twice); a copy with only `UTT.WAV.wav` works too. The audio format is
told by the file's first bytes, not its name: NIST SPHERE (`NIST_1A`, 1024-byte header, 16-bit PCM)
or RIFF WAV (`RIFF...WAVE`, 16-bit PCM mono, read with the standard `wave` module) — so copies whose
`UTT.WAV` is really RIFF also load. Anything else is a `TimitError` naming the file.

Phones are folded 61 -> 39 (Lee & Hon, 1989; the glottal stop `q` is dropped and its frames join the
phone before it), adjacent equal folded phones merge into one target symbol, and every 10 ms frame
takes the phone at its centre as its true row. Features: the log-mel front end of
`jaxalign.data.audio` (no resampling: a file at another rate than `data.sample_rate` is an error). The SA
(dialect) sentences are excluded as usual; the test split is the 24-speaker core test set, and
the validation split is a seeded 5% of the training speakers.

The SPHERE header is parsed by hand (a few lines) rather than through libsndfile/soundfile, to keep
the dependency list short; neither handles the shorten-compressed variant, which gets a clear error.
"""

import dataclasses
import wave
from pathlib import Path

import numpy as np

from jaxalign.data.audio import FrontEndKeys, front_end_of
from jaxalign.data.dataset import DataSplits, SequenceData
from jaxalign.errors import TimitError

FOLD_61_TO_39 = {
    "aa": "aa", "ae": "ae", "ah": "ah", "ao": "aa", "aw": "aw", "ax": "ah", "ax-h": "ah", "axr": "er",
    "ay": "ay", "b": "b", "bcl": "sil", "ch": "ch", "d": "d", "dcl": "sil", "dh": "dh", "dx": "dx",
    "eh": "eh", "el": "l", "em": "m", "en": "n", "eng": "ng", "epi": "sil", "er": "er", "ey": "ey",
    "f": "f", "g": "g", "gcl": "sil", "h#": "sil", "hh": "hh", "hv": "hh", "ih": "ih", "ix": "ih",
    "iy": "iy", "jh": "jh", "k": "k", "kcl": "sil", "l": "l", "m": "m", "n": "n", "ng": "ng",
    "nx": "n", "ow": "ow", "oy": "oy", "p": "p", "pau": "sil", "pcl": "sil", "q": None, "r": "r",
    "s": "s", "sh": "sh", "t": "t", "tcl": "sil", "th": "th", "uh": "uh", "uw": "uw", "ux": "uw",
    "v": "v", "w": "w", "y": "y", "z": "z", "zh": "sh",
}  # fmt: skip
PHONES_39 = sorted({p for p in FOLD_61_TO_39.values() if p is not None})
CORE_TEST_SPEAKERS = {
    "MDAB0", "MWBT0", "FELC0", "MTAS1", "MWEW0", "FPAS0", "MJMP0", "MLNT0", "FPKT0", "MLLL0", "MTLS0",
    "FJLM0", "MBPM0", "MKLT0", "FNLP0", "MCMJ0", "MJDH0", "FMGD0", "MGRT0", "MNJM0", "FDHC0", "MJLN0",
    "MPAM0", "FMLD0",
}  # fmt: skip


@dataclasses.dataclass
class TimitSpec(FrontEndKeys):
    root: str = "???"
    valid_speaker_fraction: float = 0.05
    seed: int = 0


def read_sphere(path) -> tuple[np.ndarray, int]:
    """NIST SPHERE file -> (samples float32 in [-1, 1], sample rate). 16-bit PCM only."""
    raw = Path(path).read_bytes()
    if not raw.startswith(b"NIST_1A"):
        raise TimitError(f"{path}: not a NIST SPHERE file (no NIST_1A header)")
    header_size = int(raw[8:16].split()[0])
    fields = {}
    for line in raw[16:header_size].decode("ascii", "replace").splitlines():
        parts = line.split(None, 2)
        if parts and parts[0] == "end_head":
            break
        if len(parts) == 3:
            fields[parts[0]] = parts[2].strip()
    coding = fields.get("sample_coding", "pcm")
    if coding != "pcm":
        raise TimitError(f"{path}: sample_coding {coding!r} is not supported (decompress to plain PCM first)")
    if int(fields.get("sample_n_bytes", 2)) != 2:
        raise TimitError(f"{path}: only 16-bit samples are supported")
    order = "<" if fields.get("sample_byte_format", "01") == "01" else ">"
    count = int(fields.get("sample_count", (len(raw) - header_size) // 2))
    samples = np.frombuffer(raw, dtype=f"{order}i2", count=count, offset=header_size)
    return samples.astype(np.float32) / 32768.0, int(fields.get("sample_rate", 16000))


def read_riff(path) -> tuple[np.ndarray, int]:
    """RIFF WAV file -> (samples float32 in [-1, 1], sample rate). 16-bit PCM mono only."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            if channels != 1 or width != 2:
                raise TimitError(
                    f"{path}: RIFF WAV with {channels} channel(s) of {8 * width}-bit samples; "
                    "only 16-bit PCM mono is supported"
                )
            data = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as err:
        raise TimitError(f"{path}: unreadable RIFF WAV ({err}); only 16-bit PCM mono is supported") from None
    samples = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")
    return samples.astype(np.float32) / 32768.0, rate


def read_sphere_or_riff(path) -> tuple[np.ndarray, int]:
    """SPHERE or RIFF WAV, told apart by the magic bytes (b"NIST_1A" / b"RIFF"), not by the file name."""
    with open(path, "rb") as f:
        magic = f.read(12)
    if magic.startswith(b"NIST_1A"):
        return read_sphere(path)
    if magic.startswith(b"RIFF") and magic[8:12] == b"WAVE":
        return read_riff(path)
    raise TimitError(f"{path}: neither NIST SPHERE (NIST_1A) nor RIFF WAV audio (file starts with {magic[:8]!r})")


def read_phn(path) -> list[tuple[int, int, str]]:
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or parts[2] not in FOLD_61_TO_39:
            raise TimitError(f"{path}:{n}: expected 'start end phone' with a TIMIT phone, got {line!r}")
        out.append((int(parts[0]), int(parts[1]), parts[2]))
    return out


def utterance(
    audio_path: Path, phn_path: Path, spec: TimitSpec, vocab_index
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One utterance -> (features (T, M), labels (L,), alignment (T,))."""
    front_end = front_end_of(spec)
    samples, rate = read_sphere_or_riff(audio_path)
    if rate != front_end.sample_rate:
        raise TimitError(f"{audio_path}: sample rate {rate}, expected {front_end.sample_rate}")
    feats = front_end.log_mel(samples)
    segments = read_phn(phn_path)
    centres = front_end.frame_centres(len(feats)).astype(np.int64)
    starts = np.array([s for s, _, _ in segments])
    seg_of_frame = np.clip(np.searchsorted(starts, centres, side="right") - 1, 0, len(segments) - 1)
    folded = [FOLD_61_TO_39[p] for _, _, p in segments]
    # `q` joins the phone before it (the one after, at the very start).
    for i, p in enumerate(folded):
        if p is None:
            folded[i] = next((folded[j] for j in range(i - 1, -1, -1) if folded[j]), None) or next(
                f for f in folded[i + 1 :] if f
            )
    symbol_of_frame = np.array([vocab_index[folded[s]] for s in seg_of_frame], np.int32)
    change = np.concatenate([[True], symbol_of_frame[1:] != symbol_of_frame[:-1]])
    alignment = (np.cumsum(change) - 1).astype(np.int32)
    return feats, symbol_of_frame[change], alignment


AUDIO_SUFFIXES = ("WAV", "WAV.WAV")  # after the stem, upper-cased; the first one present is read


def find_utterances(folder: Path) -> list[tuple[Path, Path]]:
    """(audio, phn) pairs under `folder/DR*/SPEAKER/`, one per `.PHN` stem, SA sentences skipped.

    `UTT.WAV` is preferred to a `UTT.WAV.wav` beside it; letter case is ignored.
    """
    groups: dict[tuple[Path, str], dict[str, Path]] = {}
    for f in sorted(folder.glob("*/*/*")):
        stem, _, suffix = f.name.upper().partition(".")
        if suffix in ("PHN", *AUDIO_SUFFIXES) and not stem.startswith("SA") and f.is_file():
            groups.setdefault((f.parent, stem), {}).setdefault(suffix, f)
    pairs = []
    for (_, stem), files in groups.items():
        audio = next((files[s] for s in AUDIO_SUFFIXES if s in files), None)
        if "PHN" not in files:
            raise TimitError(f"{audio}: no matching .PHN file next to it")
        if audio is None:
            raise TimitError(f"{files['PHN']}: no audio next to it (expected {stem}.WAV or {stem}.WAV.wav)")
        pairs.append((audio, files["PHN"]))
    return pairs


def load_timit(spec: TimitSpec) -> DataSplits:
    root = Path(spec.root)
    if spec.root in ("", "???") or not root.is_dir():
        raise TimitError(f"data.root: TIMIT directory {spec.root!r} not found; expected ROOT/TRAIN and ROOT/TEST")
    folders = {}
    for part in ("TRAIN", "TEST"):
        folders[part] = next((p for p in root.iterdir() if p.name.upper() == part), None)
        if folders[part] is None:
            raise TimitError(f"data.root: {root} has no {part} folder (expected ROOT/{part}/DR*/SPEAKER/UTT.PHN)")
    parts = {}
    for part, folder in folders.items():
        pairs = find_utterances(folder)
        if not pairs:
            raise TimitError(
                f"data.root: no utterances (UTT.PHN with UTT.WAV or UTT.WAV.wav) under {folder}/DR*/SPEAKER/ "
                "(SA sentences are skipped)"
            )
        parts[part] = pairs
    vocab_index = {p: i for i, p in enumerate(PHONES_39)}

    def build(pairs):
        rows = [utterance(audio, phn, spec, vocab_index) for audio, phn in pairs]
        return SequenceData([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], list(PHONES_39))

    speaker = lambda pair: pair[0].parent.name.upper()  # noqa: E731
    speakers = sorted({speaker(u) for u in parts["TRAIN"]})
    rng = np.random.default_rng(spec.seed)
    n_valid = max(1, int(round(spec.valid_speaker_fraction * len(speakers)))) if spec.valid_speaker_fraction > 0 else 0
    n_valid = min(n_valid, len(speakers) - 1)  # keep at least one training speaker
    valid_speakers = set(rng.choice(speakers, size=n_valid, replace=False).tolist())
    core = [u for u in parts["TEST"] if speaker(u) in CORE_TEST_SPEAKERS]
    if not core:
        raise TimitError(f"data.root: none of the 24 core test speakers found under {root}/TEST")
    return DataSplits(
        train=build([u for u in parts["TRAIN"] if speaker(u) not in valid_speakers]),
        valid=build([u for u in parts["TRAIN"] if speaker(u) in valid_speakers]),
        test=build(core),
    ).with_front_end(front_end_of(spec))
