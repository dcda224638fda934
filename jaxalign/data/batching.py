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

CANDIDATE_BOUNDS = 256  # bucket_bounds searches the lengths' quantiles at most this fine


def bucket_bounds(frame_lengths: np.ndarray, num_buckets: int, batch_size: int = 1, multiple: int = 8) -> list[int]:
    """Up to `num_buckets` padded lengths, multiples of `multiple`, that minimise the frames an
    epoch computes: each bucket's examples in batches of `batch_size` padded to its bound, the last
    batch completed with filler rows. So a long tail of lengths gets a bucket of its own and a small
    data set fewer buckets rather than batches of mostly filler. Dynamic programming over the
    lengths' quantiles (at most `CANDIDATE_BOUNDS`; the longest length always a bound)."""
    rounded = np.sort(np.ceil(np.asarray(frame_lengths) / multiple).astype(np.int64) * multiple)
    candidates = np.unique(np.quantile(rounded, np.linspace(0, 1, CANDIDATE_BOUNDS + 1), method="higher"))
    m = len(candidates)
    upto = np.concatenate([[0], np.searchsorted(rounded, candidates, side="right")])
    count = upto[None, 1:] - upto[:-1, None]  # (p + 1, j): examples longer than candidate p, at most candidate j
    cost = np.where(count > 0, -(-count // batch_size) * batch_size * candidates[None, :], np.inf)
    best, back = [cost[0]], []  # best[k - 1][j]: the frames of k buckets, the longest up to candidate j
    for _ in range(min(num_buckets, m) - 1):
        extended = best[-1][:-1, None] + cost[1:]  # (p, j): buckets up to candidate p, then one up to j
        back.append(np.argmin(extended, axis=0))
        best.append(extended[back[-1], np.arange(m)])
    k = int(np.argmin([frames[-1] for frames in best]))  # the fewest buckets among the cheapest
    bounds, j = [], m - 1
    for previous in reversed(back[:k]):
        bounds.append(int(candidates[j]))
        j = previous[j]
    return sorted(bounds + [int(candidates[j])])


@dataclasses.dataclass
class IteratorState:
    """Where the training iterator stands: saved in checkpoints so a run resumes mid-epoch."""

    epoch: int = 0
    position: int = 0


class Batcher:
    def __init__(
        self, data: SequenceData, batch_size: int, *, num_buckets: int, seed: int = 0, bounds=None, label_len=None
    ):
        """bounds: the padded lengths (default: `bucket_bounds` of the data); label_len: L (default:
        the longest target); both fixed by the caller where several batchers must share shapes."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.frame_lengths = data.frame_lengths()
        self.bounds = bounds or bucket_bounds(self.frame_lengths, num_buckets, batch_size)
        self.label_len = max(data.longest_target(), 1)  # room for any pronunciation training may choose
        if label_len is not None:
            if label_len < self.label_len:
                raise ValueError(f"label_len={label_len} is shorter than the longest target ({self.label_len})")
            self.label_len = label_len
        if len(data) and self.frame_lengths.max() > self.bounds[-1]:
            raise ValueError(f"bounds={self.bounds} leave out sequences of {self.frame_lengths.max()} frames")
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
