"""Padding-aware batching into a few fixed length buckets, with resumable deterministic shuffling.

Every batch is a dict of NumPy arrays (a pytree for `jax.jit`):
  features (B, T, F) float32; logit_paddings (B, T) float32, 1 = padded;
  labels (B, L) int32 (-1 on padding); label_paddings (B, L) float32;
  frame_labels (B, T) int32 symbol of each frame from the true alignment, -1 if padded or unknown;
  alignments (B, T) int32 true row of each frame, -1 if padded or unknown;
  weights (B,) float32, 0 for filler rows that only complete the last batch of a bucket;
  index (B,) int32 example ids within the split.
T is one of the bucket sizes, so a jitted step compiles once per bucket; L is fixed per data set.
"""

import dataclasses

import numpy as np

from jaxalign.align import check_batch
from jaxalign.data.dataset import SequenceData


def bucket_bounds(frame_lengths: np.ndarray, num_buckets: int, batch_size: int = 1, multiple: int = 8) -> list[int]:
    """Up to `num_buckets` padded lengths at length quantiles, rounded up to `multiple`. A bucket
    with fewer than `batch_size` examples (or none) joins the next longer one, so a small data set
    gets fewer buckets rather than batches of mostly filler."""
    qs = np.quantile(frame_lengths, np.linspace(0, 1, num_buckets + 1)[1:])
    bounds = sorted({int(np.ceil(q / multiple) * multiple) for q in qs})
    counts = np.bincount(np.searchsorted(bounds, frame_lengths), minlength=len(bounds))
    kept, carried = [], 0
    for bound, count in zip(bounds[:-1], counts[:-1]):
        carried += count
        if carried >= batch_size:
            kept.append(bound)
            carried = 0
    return kept + bounds[-1:]


@dataclasses.dataclass
class IteratorState:
    """Where the training iterator stands: saved in checkpoints so a run resumes mid-epoch."""

    epoch: int = 0
    position: int = 0


class Batcher:
    def __init__(self, data: SequenceData, batch_size: int, *, num_buckets: int, seed: int = 0, bounds=None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.frame_lengths = data.frame_lengths()
        self.bounds = bounds or bucket_bounds(self.frame_lengths, num_buckets, batch_size)
        self.label_len = max(data.longest_target(), 1)  # room for any pronunciation training may choose
        self.bucket_of = np.searchsorted(self.bounds, self.frame_lengths)
        self.state = IteratorState()
        self._epoch_cache: tuple[int, list[np.ndarray]] = (-1, [])

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The shuffled batches of one epoch, a function of (seed, epoch): every example once; the
        last batch of a bucket may be partial (completed with weight-0 rows by `next_batch`)."""
        rng = np.random.default_rng([self.seed, epoch])
        batches = []
        for bucket in range(len(self.bounds)):
            members = rng.permutation(np.flatnonzero(self.bucket_of == bucket))
            batches += [members[start : start + self.batch_size] for start in range(0, len(members), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def next_batch(self) -> dict[str, np.ndarray]:
        """The next training batch; after an epoch's last batch `state` moves to the next epoch, so
        `state.position == 0` means the next batch starts an epoch."""
        if self._epoch_cache[0] != self.state.epoch:
            self._epoch_cache = (self.state.epoch, self.epoch_batches(self.state.epoch))
        batches = self._epoch_cache[1]
        batch = self.padded_batch(batches[self.state.position])
        position = self.state.position + 1
        self.state = (
            IteratorState(self.state.epoch, position)
            if position < len(batches)
            else IteratorState(self.state.epoch + 1, 0)
        )
        return batch

    def eval_batches(self, index=None):
        """Every example once (or those in `index`), in order within buckets; the last batch of a
        bucket is completed with weight-0 copies so shapes stay fixed."""
        chosen = np.ones(len(self.bucket_of), bool) if index is None else np.isin(np.arange(len(self.bucket_of)), index)
        for bucket in range(len(self.bounds)):
            members = np.flatnonzero((self.bucket_of == bucket) & chosen)
            for start in range(0, len(members), self.batch_size):
                yield self.padded_batch(members[start : start + self.batch_size])

    def padded_batch(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """A batch of `batch_size` rows: `index` first, then weight-0 copies of its first example."""
        real = len(index)
        batch = self.make_batch(np.concatenate([index, np.repeat(index[:1], self.batch_size - real)]))
        batch["weights"][real:] = 0.0
        return batch

    def make_batch(self, index: np.ndarray) -> dict[str, np.ndarray]:
        t_max = self.bounds[int(self.bucket_of[index].max())]
        b, f = len(index), self.data.feature_dim
        out = {
            "features": np.zeros((b, t_max, f), np.float32),
            "logit_paddings": np.ones((b, t_max), np.float32),
            "labels": np.full((b, self.label_len), -1, np.int32),
            "label_paddings": np.ones((b, self.label_len), np.float32),
            "frame_labels": np.full((b, t_max), -1, np.int32),
            "alignments": np.full((b, t_max), -1, np.int32),
            "weights": np.ones((b,), np.float32),
            "index": np.asarray(index, np.int32),
        }
        for row, i in enumerate(index):
            x, y = self.data.features[i], self.data.labels[i]
            out["features"][row, : len(x)] = x
            out["logit_paddings"][row, : len(x)] = 0.0
            out["labels"][row, : len(y)] = y
            out["label_paddings"][row, : len(y)] = 0.0
            if self.data.alignments is not None:
                out["alignments"][row, : len(x)] = self.data.alignments[i]
                out["frame_labels"][row, : len(x)] = y[self.data.alignments[i]]
        optional = self.data.optional_symbol
        check_batch(
            out["logit_paddings"],
            np.where(out["label_paddings"] > 0, 0, out["labels"]),
            out["label_paddings"],
            num_classes=self.data.num_classes,
            features=out["features"],
            optional_rows=None if optional is None else (out["labels"] == optional).astype(np.float32),
        )
        return out
