"""In-memory ragged sequence data: the one structure every data source produces."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class SequenceData:
    """N ragged examples.

    features:   list of (T_i, F) float32 frames.
    labels:     list of (L_i,) int32 target symbols in order, ids in [0, len(vocab)).
    alignments: list of (T_i,) int32 true target row of each frame, or None when unknown.
    vocab:      class names, len = number of classes C.
    optional_symbol: a class whose rows in a target the path may skip (a corpus' silence between
                words: `jaxalign.data.corpus`), or None.
    front_end:  the audio front end the features came from (`dataclasses.asdict` of
                `jaxalign.data.audio.FrontEnd`: sample_rate, window, hop, mel_bins), or None for
                features without one (digit strips, synthetic, `.npz` arrays).
    names:      what each example is called where it has a name (a corpus' recording ids), or None.
    alternatives: per example, per word, (the word, the pronunciations it may be spoken with as
                symbol-id lists, the one in `labels` first) where the example has a word with
                several, else None; or None for data without them. Training re-chooses among them
                (`jaxalign.training.pronunciations`) and writes the choice into `labels`.
    words:      per example, its words in order (a corpus' transcripts: training re-estimates from
                them how often each word is followed by a pause), or None.
    """

    features: list[np.ndarray]
    labels: list[np.ndarray]
    alignments: list[np.ndarray] | None
    vocab: list[str]
    optional_symbol: int | None = None
    front_end: dict | None = None
    names: list[str] | None = None
    alternatives: list | None = None
    words: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.features)

    @property
    def num_classes(self) -> int:
        return len(self.vocab)

    @property
    def feature_dim(self) -> int:
        return int(self.features[0].shape[1])

    def frame_lengths(self) -> np.ndarray:
        return np.array([len(f) for f in self.features], np.int64)

    def label_lengths(self) -> np.ndarray:
        return np.array([len(y) for y in self.labels], np.int64)

    def longest_target(self) -> int:
        """The most symbols a target has, or may have with its words' longest `alternatives`."""
        longest = int(self.label_lengths().max(initial=0))
        for words in self.alternatives or []:
            if words is not None:  # a pause around each word, as in the target
                longest = max(longest, 1 + sum(1 + max(len(p) for p in prons) for _, prons in words))
        return longest

    def frame_labels(self, i: int) -> np.ndarray:
        """(T_i,) symbol of each frame from the true alignment (time-synchronous targets)."""
        if self.alignments is None:
            raise ValueError("this data set has no true alignments, so no per-frame labels")
        return self.labels[i][self.alignments[i]]

    def info(self) -> dict:
        """What a trained model needs to know of its data without the data (a checkpoint keeps it):
        feature_dim, num_classes, vocab, optional_symbol, and front_end where the features have one."""
        info = {
            "feature_dim": self.feature_dim,
            "num_classes": self.num_classes,
            "vocab": list(self.vocab),
            "optional_symbol": self.optional_symbol,
        }
        if self.front_end is not None:
            info["front_end"] = dict(self.front_end)
        return info

    @classmethod
    def like(cls, info: dict, features: list[np.ndarray], labels: list[np.ndarray]) -> "SequenceData":
        """New sequences over the classes of a data set described by `info` (no true alignments)."""
        return cls(features, labels, None, list(info["vocab"]), info.get("optional_symbol"), info.get("front_end"))

    def subset(self, index) -> "SequenceData":
        index = [int(i) for i in index]
        return SequenceData(
            features=[self.features[i] for i in index],
            labels=[self.labels[i] for i in index],
            alignments=None if self.alignments is None else [self.alignments[i] for i in index],
            vocab=self.vocab,
            optional_symbol=self.optional_symbol,
            front_end=self.front_end,
            names=None if self.names is None else [self.names[i] for i in index],
            alternatives=None if self.alternatives is None else [self.alternatives[i] for i in index],
            words=None if self.words is None else [self.words[i] for i in index],
        )


@dataclasses.dataclass
class DataSplits:
    train: SequenceData
    valid: SequenceData
    test: SequenceData
    record: dict[str, str] = dataclasses.field(default_factory=dict)  # files for the run dir: {name: text}

    def with_front_end(self, front_end) -> "DataSplits":
        """The same splits with every split's `front_end` set to `dataclasses.asdict(front_end)`."""
        record = dataclasses.asdict(front_end)
        parts = (dataclasses.replace(d, front_end=record) for d in (self.train, self.valid, self.test))
        return DataSplits(*parts, record=self.record)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def segments_to_alignment(durations) -> np.ndarray:
    """(L,) frames per target row -> (sum, ) row index of each frame."""
    return np.repeat(np.arange(len(durations), dtype=np.int32), durations)


def seeded_split(num_examples: int, fractions: tuple[float, float], seed: int) -> tuple[np.ndarray, ...]:
    """Disjoint train/valid/test index arrays; `fractions` are (valid, test)."""
    order = np.random.default_rng(seed).permutation(num_examples)
    n_valid = int(round(fractions[0] * num_examples))
    n_test = int(round(fractions[1] * num_examples))
    return order[n_valid + n_test :], order[:n_valid], order[n_valid : n_valid + n_test]


def flatten_ragged(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """List of 1-D arrays -> (concatenation, lengths)."""
    lengths = np.array([len(r) for r in rows], np.int64)
    return (np.concatenate(rows) if rows else np.zeros(0, np.int32)), lengths


def unflatten_ragged(flat: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return [np.asarray(flat[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
