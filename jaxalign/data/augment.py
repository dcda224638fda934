"""Training-data augmentation of a corpus, as Kaldi's recipes do: extra copies of every training recording
with noise, a gain and a speed change (`data.augment`); the recordings aligned are never touched.

Each copy is made from the recording's audio (read again at `data.sample_rate`), in this order:
- speed: resampled so it plays 0.9, 1.0 or 1.1 times as fast (drawn; pitch moves with it, Kaldi's
  speed perturbation),
- gain: a level drawn uniformly in [-augment_gain_db, +augment_gain_db] plus a drift within the copy,
  a half cosine over its length with a swing drawn uniformly in [0, augment_drift_db] (`gain_curve_db`),
- noise: white or pink (drawn, `coloured_noise`) at an SNR drawn uniformly in
  [augment_min_snr_db, augment_max_snr_db] relative to the mean power of the (gained) recording,
and its features are the front end's log-mel of the result. A copy keeps the recording's transcript and
speaker; it is normalised with the statistics of the speaker's recordings alone (`normalise_features`'s
`extra`), so the recordings' own features, and what the aligner sees, are those of a run without it.
Copy c of training recording i draws from `np.random.default_rng([seed, AUGMENT_KEY, c, i])`.
"""

import numpy as np

AUGMENTATIONS = ("noise", "gain", "speed")  # data.augment: a subset joined by + or , ("" or "none": off)
SPEEDS = (0.9, 1.0, 1.1)
NOISE_COLOURS = ("white", "pink", "brown")
AUGMENT_COLOURS = ("white", "pink")  # brown (a rumble) is left to the robustness corpus alone
_COLOUR_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # noise power ~ 1/f^exponent
AUGMENT_KEY = 1 << 22


def coloured_noise(length: int, colour: str, rng) -> np.ndarray:
    """(length,) float64 noise of unit mean power whose power spectrum falls as 1/f^e (white e=0, pink 1,
    brown 2), shaped from white Gaussian noise in the frequency domain."""
    if colour not in _COLOUR_EXPONENT:
        raise ValueError(f"noise colour {colour!r} is not one of {list(_COLOUR_EXPONENT)}")
    white = rng.normal(size=length)
    if colour == "white" or length < 4:
        noise = white
    else:
        freqs = np.fft.rfftfreq(length)
        freqs[0] = freqs[1]
        noise = np.fft.irfft(np.fft.rfft(white) * freqs ** (-_COLOUR_EXPONENT[colour] / 2), n=length)
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def gain_curve_db(length: int, level_db: float, drift_db: float, rising: bool) -> np.ndarray:
    """(length,) gain in dB: `level_db` plus a half cosine from -drift_db/2 to +drift_db/2 over the whole
    length (from +drift_db/2 down to -drift_db/2 when not `rising`)."""
    curve = -np.cos(np.linspace(0.0, np.pi, length)) * drift_db / 2
    return level_db + (curve if rising else -curve)


def parse_augment(text: str) -> tuple[str, ...]:
    """`data.augment` ("noise+gain+speed"; Hydra's command line needs + or a quoted "noise,gain") -> the
    kinds in `AUGMENTATIONS` order; "" or "none": ()."""
    kinds = {k.strip() for k in str(text).replace("+", ",").split(",") if k.strip()} - {"none"}
    unknown = sorted(kinds - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(f"data.augment: {unknown} not among {list(AUGMENTATIONS)} (joined by +, or none)")
    return tuple(k for k in AUGMENTATIONS if k in kinds)


def augment_audio(samples, sample_rate: int, kinds, rng, spec) -> tuple[np.ndarray, dict]:
    """One augmented copy of (S,) `samples` (module docstring; spec: the augment_* keys of
    `CorpusSpec`) -> ((S',) float64 audio, what was drawn: speed, level_db, drift_db, colour, snr_db)."""
    import soxr

    audio, drawn = np.asarray(samples, np.float64), {}
    if "speed" in kinds:
        speed = float(SPEEDS[int(rng.integers(len(SPEEDS)))])
        if speed != 1.0:
            audio = soxr.resample(audio, sample_rate * speed, sample_rate)
        drawn["speed"] = speed
    if "gain" in kinds:
        level = float(rng.uniform(-spec.augment_gain_db, spec.augment_gain_db))
        drift = float(rng.uniform(0.0, spec.augment_drift_db))
        audio = audio * 10 ** (gain_curve_db(len(audio), level, drift, bool(rng.random() < 0.5)) / 20)
        drawn |= {"level_db": level, "drift_db": drift}
    if "noise" in kinds:
        colour = AUGMENT_COLOURS[int(rng.integers(len(AUGMENT_COLOURS)))]
        snr = float(rng.uniform(spec.augment_min_snr_db, spec.augment_max_snr_db))
        power = float(np.mean(audio**2)) if len(audio) else 0.0
        audio = audio + coloured_noise(len(audio), colour, rng) * np.sqrt(power / 10 ** (snr / 10))
        drawn |= {"colour": colour, "snr_db": snr}
    return audio, drawn


def check_augment_spec(spec) -> None:
    """Raises ValueError naming the `data.augment*` key that is out of range."""
    parse_augment(spec.augment)
    if spec.augment_copies < 0:
        raise ValueError(f"data.augment_copies must be >= 0, got {spec.augment_copies}")
    if not spec.augment_min_snr_db <= spec.augment_max_snr_db:
        raise ValueError(
            f"data.augment_min_snr_db ({spec.augment_min_snr_db}) must be <= augment_max_snr_db ({spec.augment_max_snr_db})"
        )
    if spec.augment_gain_db < 0 or spec.augment_drift_db < 0:
        raise ValueError(
            f"data.augment_gain_db and augment_drift_db must be >= 0, got {spec.augment_gain_db}, {spec.augment_drift_db}"
        )


def augmented_copies(spec, utterances: list, front_end, seed: int) -> list:
    """`spec.augment_copies` augmented copies of each of `utterances` (`jaxalign.data.corpus.Utterance`s
    with raw features), copy-major: every recording's first copy, then every second copy. Their features
    are the front end's log-mel of `augment_audio`, their ids the recording's with `+augmentC` (C from 1);
    words, pronunciations and speaker are the recording's."""
    import dataclasses

    from jaxalign.data.audio import read_audio

    kinds = parse_augment(spec.augment)
    if not kinds or not spec.augment_copies:
        return []
    audio = [read_audio(u.recording.audio, spec.sample_rate) for u in utterances]
    out = []
    for c in range(spec.augment_copies):
        for i, (u, samples) in enumerate(zip(utterances, audio)):
            rng = np.random.default_rng([seed, AUGMENT_KEY, c, i])
            copy, _ = augment_audio(samples, spec.sample_rate, kinds, rng, spec)
            recording = dataclasses.replace(u.recording, id=f"{u.recording.id}+augment{c + 1}")
            features = front_end.log_mel(copy.astype(np.float32))
            out.append(
                dataclasses.replace(u, recording=recording, features=features, duration=len(copy) / spec.sample_rate)
            )
    return out
