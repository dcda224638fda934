"""The one audio front end of every speech data source (`data=timit`, `spoken_words`, `corpus`).

`FrontEnd`: audio at `sample_rate` Hz, cut into Hamming windows `window` seconds long every `hop`
seconds, each window's power spectrum (FFT size: the next power of two) summed through `mel_bins`
triangular filters on the HTK mel scale, log(energy + 1e-6). Frame t covers samples
[t * hop, t * hop + window) (in samples), so T = 1 + (S - window) // hop frames (audio shorter than
one window is zero-padded to one frame). Defaults: 16 kHz, 25 ms windows, 10 ms hop, 40 mels.

The data configs spell it `data.sample_rate`, `data.frame_ms`, `data.hop_ms`, `data.num_mels`
(`FrontEndKeys`); a run records `dataclasses.asdict(FrontEnd)` in its checkpoint (`SequenceData.info()`
key `front_end`), and the aligner's clock is read from there (`jaxalign.aligner.export.Clock`).
"""

import dataclasses
import math

import numpy as np

SAMPLE_RATE = 16000  # Hz
WINDOW_MS = 25.0
HOP_MS = 10.0
MEL_BINS = 40


@dataclasses.dataclass(frozen=True)
class FrontEnd:
    """Log-mel features (module docstring). window and hop in seconds."""

    sample_rate: int = SAMPLE_RATE
    window: float = WINDOW_MS / 1000
    hop: float = HOP_MS / 1000
    mel_bins: int = MEL_BINS

    @property
    def window_samples(self) -> int:
        return _samples(self.sample_rate * self.window)

    @property
    def hop_samples(self) -> int:
        return _samples(self.sample_rate * self.hop)

    def frame_centres(self, num_frames: int) -> np.ndarray:
        """(T,) float sample position of each frame's centre."""
        return np.arange(num_frames) * (self.sample_rate * self.hop) + self.sample_rate * self.window / 2

    def num_frames(self, num_samples: int) -> int:
        return 1 + (max(num_samples, self.window_samples) - self.window_samples) // self.hop_samples

    def log_mel(self, samples: np.ndarray) -> np.ndarray:
        """(S,) samples at `sample_rate` -> (T, mel_bins) float32 log-mel energies."""
        frame, hop = self.window_samples, self.hop_samples
        if len(samples) < frame:
            samples = np.pad(samples, (0, frame - len(samples)))
        n_frames = 1 + (len(samples) - frame) // hop
        n_fft = 1 << (frame - 1).bit_length()
        idx = np.arange(frame)[None, :] + hop * np.arange(n_frames)[:, None]
        windows = samples[idx] * np.hamming(frame)
        power = np.abs(np.fft.rfft(windows, n=n_fft)) ** 2
        return np.log(power @ mel_filterbank(self.mel_bins, n_fft, self.sample_rate).T + 1e-6).astype(np.float32)

    def features(self, path) -> tuple[np.ndarray, float]:
        """An audio file -> (log-mel features, seconds of audio); `read_audio`'s errors pass through."""
        samples = read_audio(path, self.sample_rate)
        return self.log_mel(samples), len(samples) / self.sample_rate


def _samples(x: float) -> int:
    """Whole samples in `x` (rounded down; float error such as 399.99999999 is taken as 400)."""
    return int(math.floor(x + 1e-6))


@dataclasses.dataclass
class FrontEndKeys:
    """The front end's keys of a speech data config (`data.sample_rate`, ...), stated once."""

    sample_rate: int = SAMPLE_RATE  # audio is resampled to (or, TIMIT, must be at) this rate
    frame_ms: float = WINDOW_MS
    hop_ms: float = HOP_MS
    num_mels: int = MEL_BINS


def front_end_of(spec) -> FrontEnd:
    """The `FrontEnd` of a data spec or config with `sample_rate`, `frame_ms`, `hop_ms`, `num_mels`."""
    return FrontEnd(int(spec.sample_rate), spec.frame_ms / 1000, spec.hop_ms / 1000, int(spec.num_mels))


def mel_filterbank(num_mels: int, n_fft: int, sample_rate: int) -> np.ndarray:
    """(num_mels, n_fft // 2 + 1) triangular filters on the HTK mel scale."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(mel(0.0), mel(sample_rate / 2), num_mels + 2))
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0.0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))


def log_mel(samples: np.ndarray, front_end: FrontEnd) -> np.ndarray:
    """(S,) samples -> (T, mel_bins) float32 log-mel energies (`FrontEnd.log_mel`)."""
    return front_end.log_mel(samples)


def read_audio(path, sample_rate: int) -> np.ndarray:
    """(S,) float32 samples at `sample_rate` of any file soundfile reads (WAV, FLAC, OGG, NIST
    SPHERE PCM): channels averaged, resampled with soxr when the file's rate differs."""
    import soundfile
    import soxr

    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate)
    return np.asarray(mono, np.float32)
