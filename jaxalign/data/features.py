"""A corpus' features: the front end's log-mel features of each recording (`jaxalign.data.audio`),
computed once and cached under `CACHE/corpus/<front end>/<digest of the file's bytes>.npz` (failures are
never cached), and their per-speaker normalisation (`data.normalise`)."""

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jaxalign.data.audio import front_end_of, read_audio
from jaxalign.data.corpus_files import Recording
from jaxalign.runtime import cache_dir

NORMALISATIONS = ("speaker", "recording", "none")  # data.normalise: `normalise`
FORMAT_VERSION = 2  # bump when the cached features change for the same front end


def _content_key(path: Path) -> str:
    """A digest of the file's bytes (OSError if they cannot be read)."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_folder(spec) -> Path:
    """One folder per front end (and cache format): `CACHE/corpus/<hash>/`."""
    front = {k: getattr(spec, k) for k in ("sample_rate", "frame_ms", "hop_ms", "num_mels")}
    blob = json.dumps({"front_end": front, "format": FORMAT_VERSION}, sort_keys=True)
    root = Path(spec.cache_dir).expanduser() / "corpus" if spec.cache_dir else cache_dir("corpus")
    return root / hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cached(path: Path) -> tuple[np.ndarray, float] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["features"], float(z["seconds"])
    except (OSError, ValueError, KeyError, EOFError):  # absent, or a partial/foreign file: compute again
        return None


def corpus_features(spec, recordings: list[Recording]) -> dict[str, tuple[np.ndarray, float] | str]:
    """{recording id: (features (T, num_mels), seconds) or the reason its audio is unreadable}.

    Features are cached one file per recording, `CACHE/corpus/<front end>/<digest of the audio
    file's bytes>.npz`: a renamed, copied or touched file is not read again, an edited one is. A
    failure is never cached (a file unreadable now, e.g. chmod 000, is read again next time)."""
    folder = _cache_folder(spec)
    front_end = front_end_of(spec)
    out: dict = {}
    todo = []
    for rec in recordings:
        try:
            key = _content_key(rec.audio)
        except OSError as err:
            out[rec.id] = f"unreadable audio {rec.audio.name} ({str(err).splitlines()[0][:120]})"
            continue
        got = _cached(folder / f"{key}.npz")
        if got is None:
            todo.append((rec, key))
        else:
            out[rec.id] = got
    for rec, key in tqdm(todo, desc="data=corpus: features", unit="file", mininterval=1.0, disable=not todo):
        try:
            audio = read_audio(rec.audio, spec.sample_rate)
        except Exception as err:  # soundfile's LibsndfileError, RuntimeError, ...: the file is unreadable
            out[rec.id] = f"unreadable audio {rec.audio.name} ({str(err).splitlines()[0][:120]})"
            continue
        if not len(audio):
            out[rec.id] = f"audio {rec.audio.name} has no samples"
            continue
        if not np.isfinite(audio).all():
            out[rec.id] = f"audio {rec.audio.name} has NaN or infinite samples"
            continue
        feats, seconds = front_end.log_mel(audio), len(audio) / spec.sample_rate
        out[rec.id] = (feats, seconds)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{key}-tmp{os.getpid()}.npz"
        np.savez(tmp, features=feats, seconds=np.float64(seconds))
        os.replace(tmp, folder / f"{key}.npz")
    return out


def _by_speaker(utterances: list) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, u in enumerate(utterances):
        groups.setdefault(u.recording.speaker, []).append(i)
    return groups


def normalise_per_speaker(utterances: list, extra: list = ()) -> list:
    """Per-speaker mean and variance normalisation of the features (each mel channel over all the
    frames of the speaker's recordings that hold speech, `speech_frames`), as speech aligners do
    (Kaldi's and MFA's CMVN). A recording without speech (digital silence) is normalised with its
    speaker's statistics but does not enter them, so it moves no other recording.
    utterances: `jaxalign.data.corpus.Utterance`s (features, recording.speaker, recording.id); extra:
    more of them (augmented copies) normalised with their speaker's statistics of `utterances` alone.
    Returns `utterances` then `extra`, normalised."""
    out = list(utterances) + list(extra)
    for indices in _by_speaker(out).values():
        group = [out[i] for i in indices if i < len(utterances)]
        voiced = [u.features for u in group if speech_frames(u.features).any()]
        frames = np.concatenate(voiced or [u.features for u in group])
        mean, std = frames.mean(axis=0), np.maximum(frames.std(axis=0), 1e-3)
        for i in indices:
            out[i] = dataclasses.replace(out[i], features=((out[i].features - mean) / std).astype(np.float32))
    return out


SPEECH_RANGE = math.log(10.0)  # 10 dB: a recording's frame energies must spread this far to hold pauses
SILENCE_FLOOR = math.log(1e-6) + math.log(10.0)  # mean log-mel 10 dB above the front end's floor


def speech_frames(features: np.ndarray) -> np.ndarray:
    """(T,) bool: the frames of one recording above an energy floor. A frame's energy is its mean
    log-mel; with a spread of at least 10 dB between the recording's 10th and 90th percentile frames
    the floor is halfway between them (pauses below, speech above), else every frame is speech
    unless the recording is digital silence (within 10 dB of the front end's floor)."""
    energy = features.mean(axis=1)
    low, high = np.percentile(energy, [10, 90]) if len(energy) else (0.0, 0.0)
    if high - low >= SPEECH_RANGE:
        return energy > (low + high) / 2
    return energy > SILENCE_FLOOR


def normalise_per_recording(utterances: list, extra: list = ()) -> list:
    """`data.normalise=recording`: each recording minus its own mean (all its frames), divided by its
    speaker's standard deviation over all frames of the speaker's recordings that hold speech
    (`speech_frames`; a silent recording is left out), each mean-subtracted. A louder or silent
    recording then moves no other recording's features but through that spread (a clipped one a
    little). Measured on a 3-speaker espeak corpus (experiments/normalise_shift.py): a silent file
    added beside them moved the other recordings' word boundaries by up to 120-150 ms with
    `speaker` before silent recordings were left out of its statistics, and by 0 ms with this, but the net trained with it placed 29 % of the word boundaries
    within 20 ms against 43-46 % with `speaker`, which stays the default. (The mean and spread over
    speech frames only, `speech_frames`, made training collapse: 2-3 %.) On the robustness corpus
    (levels -18..0 dB across files, docs/results.md) it put the word starts after a pause +5.5 ms from the
    truth against +16.3 ms with `speaker`, whose per-file level the net reads as silence.
    extra: augmented copies, each minus its own mean, divided by its speaker's spread of `utterances`
    alone. Returns `utterances` then `extra`, normalised."""
    out = list(utterances) + list(extra)
    centred = [u.features - u.features.mean(axis=0) for u in out]
    for indices in _by_speaker(out).values():
        own = [i for i in indices if i < len(utterances)]
        voiced = [centred[i] for i in own if speech_frames(out[i].features).any()]
        frames = np.concatenate(voiced or [centred[i] for i in own])
        std = np.maximum(frames.std(axis=0), 1e-3)
        for i in indices:
            out[i] = dataclasses.replace(out[i], features=(centred[i] / std).astype(np.float32))
    return out


def normalise_features(utterances: list, how: str, extra: list = ()) -> list:
    """`data.normalise`: speaker (`normalise_per_speaker`), recording (`normalise_per_recording`), none.
    extra: augmented copies, normalised with the statistics of `utterances` (their speaker must be among
    them); returns `utterances` then `extra`."""
    speakers = {u.recording.speaker for u in utterances}
    stray = sorted({u.recording.speaker for u in extra} - speakers)
    if stray:
        raise ValueError(f"augmented copies of speakers {stray} that have no recordings to normalise with")
    if how == "speaker":
        return normalise_per_speaker(utterances, extra)
    if how == "recording":
        return normalise_per_recording(utterances, extra)
    return list(utterances) + list(extra)
