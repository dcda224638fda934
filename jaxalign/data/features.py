"""A corpus' features: the front end's log-mel features of each recording (`jaxalign.data.audio`),
computed once and cached under `CACHE/corpus/<hash>.npz` (the hash covers the front end and each audio
file's path, size and modification time), and their per-speaker normalisation (`data.normalise`)."""

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jaxalign.data.audio import front_end_of, read_audio
from jaxalign.data.corpus_files import Recording
from jaxalign.runtime import cache_dir

NORMALISATIONS = ("speaker", "none")
FORMAT_VERSION = 1  # bump when the cached features change for the same front end


def _cache_file(spec, recordings: list[Recording]) -> Path:
    front = {k: getattr(spec, k) for k in ("sample_rate", "frame_ms", "hop_ms", "num_mels")}
    files = [(str(r.audio.resolve()), r.audio.stat().st_size, r.audio.stat().st_mtime_ns) for r in recordings]
    blob = json.dumps({"front_end": front, "files": files, "format": FORMAT_VERSION}, sort_keys=True)
    folder = Path(spec.cache_dir).expanduser() / "corpus" if spec.cache_dir else cache_dir("corpus")
    return folder / f"{hashlib.sha256(blob.encode()).hexdigest()[:16]}.npz"


def corpus_features(spec, recordings: list[Recording]) -> dict[str, tuple[np.ndarray, float] | str]:
    """{recording id: (features (T, num_mels), seconds) or the reason its audio is unreadable},
    computed with a progress bar on first use and cached."""
    path = _cache_file(spec, recordings)
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            out: dict = dict(meta["failed"])
            for i, rid in enumerate(meta["ids"]):
                out[rid] = (z[f"f{i}"], meta["seconds"][i])
            return out
    out, arrays, ids, seconds, failed = {}, {}, [], [], {}
    for rec in tqdm(recordings, desc="data=corpus: features", unit="file", mininterval=1.0):
        try:
            audio = read_audio(rec.audio, spec.sample_rate)
        except Exception as err:  # soundfile's LibsndfileError, RuntimeError, ...: the file is unreadable
            failed[rec.id] = f"unreadable audio {rec.audio.name} ({str(err).splitlines()[0][:120]})"
            continue
        if not len(audio):
            failed[rec.id] = f"audio {rec.audio.name} has no samples"
            continue
        if not np.isfinite(audio).all():
            failed[rec.id] = f"audio {rec.audio.name} has NaN or infinite samples"
            continue
        feats = front_end_of(spec).log_mel(audio)
        arrays[f"f{len(ids)}"] = feats
        ids.append(rec.id)
        seconds.append(len(audio) / spec.sample_rate)
        out[rec.id] = (feats, seconds[-1])
    out.update(failed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}-tmp{os.getpid()}.npz")
    np.savez(tmp, meta=json.dumps({"ids": ids, "seconds": seconds, "failed": failed}), **arrays)
    os.replace(tmp, path)
    return out


def normalise_per_speaker(utterances: list) -> list:
    """Per-speaker mean and variance normalisation of the features (each mel channel over all the
    frames of the speaker's recordings), as speech aligners do (Kaldi's and MFA's CMVN).
    utterances: `jaxalign.data.corpus.Utterance`s (features, recording.speaker, recording.id)."""
    by_speaker: dict[str, list] = {}
    for u in utterances:
        by_speaker.setdefault(u.recording.speaker, []).append(u)
    out = {}
    for group in by_speaker.values():
        frames = np.concatenate([u.features for u in group])
        mean, std = frames.mean(axis=0), np.maximum(frames.std(axis=0), 1e-3)
        for u in group:
            out[u.recording.id] = dataclasses.replace(u, features=((u.features - mean) / std).astype(np.float32))
    return [out[u.recording.id] for u in utterances]
