"""Training on the pronunciation each recording is spoken with, where its dictionary lists several.

A word with several pronunciations starts out trained on the first listed
(`align.pronunciation_start=first`), or on one drawn uniformly per occurrence (`random`: every
listed phone trained from the start, but the drawn labels are a fixed point of the re-choice as
much as the first-listed ones are; measured worse, docs/aligner.md). Every
`align.pronunciation_every` steps after the warm-up (and, under a stored schedule, right before each
realignment of the whole training set, so the stored paths fit the targets), the model's log-probs
of each training example with such a word go through its pronunciation graph
(`jaxalign.setups.alternatives`: the branches side by side, the Viterbi choosing one per
occurrence), and the chosen pronunciations become the example's target in `SequenceData.labels`,
which every schedule (per_step, full_sum, ctc, the stored ones) reads from. This is hard EM over
the pronunciations, as Kaldi's training realigns with the lexicon's alternatives in its graphs.

The choice is scored by the local aligner (`align.aligner_context`: an MLP over a few frames) where
the run has one, else by the model. A bidirectional net hears the whole utterance and soon learns
to hear each word as the pronunciation it is trained on (the listed first), whatever was said; the
frame-local aligner cannot memorise a word's pronunciation from its context, so its evidence stays
acoustic.

Full-sum training (`align.schedule=full_sum`, or its warm-up `align.init=full_sum_warmup`) need
commit to no pronunciation: each batch carries its examples' pronunciation graphs
(`PronunciationGraphs`) and the loss sums over every path through every listed pronunciation (soft
EM), so the phones that only a second pronunciation uses are trained from the first step, in
proportion to how well they fit. The hard choice is still made every `align.pronunciation_every`
steps (and at the end of a full-sum warm-up) for what reads `labels`: a per-step schedule after
the warm-up, the run's dictionary probabilities, evaluation.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxalign.align.graph import Graph, graph_from_arcs
from jaxalign.data import Batcher, SequenceData
from jaxalign.setups.alternatives import align_alternatives, alternatives_graph
from jaxalign.training.outputs import per_example
from jaxalign.training.step import forward


class PronunciationChoice:
    """The chosen pronunciation of every word of the training examples that have alternatives."""

    def __init__(
        self, data: SequenceData, batcher: Batcher, setup, graphdef, every: int, start: str, seed: int, at_warmup=False
    ):
        self.data, self.batcher, self.setup, self.every = data, batcher, setup, every
        self.at_warmup = at_warmup  # also choose when the warm-up ends (one that summed over every pronunciation)
        self.branching = [i for i, words in enumerate(data.alternatives) if words is not None]
        most_words = max((len(data.alternatives[i]) for i in self.branching), default=0)
        self.choice = np.zeros((len(data), most_words), np.int32)  # index into each word's alternatives
        if start == "random":
            rng = np.random.default_rng(seed)
            for i in self.branching:
                options = [len(prons) for _, prons in data.alternatives[i]]
                self.choice[i, : len(options)] = rng.integers(0, options)
                data.labels[i] = self.target(i)

        def log_probs(params, batch):
            if setup.aligner_context is None:
                logits = forward(graphdef, params, batch)
            else:
                logits = nnx.merge(graphdef, params).aligner_logits(batch["features"], batch["logit_paddings"])
            return {"log_probs": jax.nn.log_softmax(logits.astype(jnp.float32))}

        self._log_probs = jax.jit(log_probs)

    def due(self, step: int) -> bool:
        """Whether the pronunciations are re-chosen before step `step` (the per-step cadence)."""
        warmup = self.setup.warmup_steps
        return (step > warmup and step % self.every == 0) or (self.at_warmup and step == warmup > 0)

    def update(self, params) -> float:
        """Re-chooses with the current model; returns the share of the branching words whose choice changed."""
        log_probs = {
            i: out["log_probs"]
            for i, out in per_example(lambda b: self._log_probs(params, b), self.batcher, self.branching)
        }
        found = align_alternatives(
            self.setup,
            [log_probs[i] for i in self.branching],
            [[prons for _, prons in self.data.alternatives[i]] for i in self.branching],
            self.data.optional_symbol,
        )
        changed = words = 0
        for i, chosen in zip(self.branching, found):
            if chosen is None:  # no path through the graph: the example keeps its target
                continue
            old = self.choice[i, : len(chosen.choice)]
            changed += int(np.sum(old != chosen.choice))
            words += sum(len(prons) > 1 for _, prons in self.data.alternatives[i])
            old[:] = chosen.choice
            self.data.labels[i] = chosen.labels
        return changed / max(words, 1)

    def target(self, i: int) -> np.ndarray:
        """Example i's target with its chosen pronunciations: pause, word, pause, ..., pause."""
        pause = self.data.optional_symbol
        labels = [pause]
        for (_, prons), j in zip(self.data.alternatives[i], self.choice[i]):
            labels += [*prons[j], pause]
        return np.asarray(labels, np.int32)

    def counts(self) -> dict[str, list[int]]:
        """{word: how often each of its pronunciations is the one chosen} over the training examples."""
        out: dict[str, list[int]] = {}
        for i in self.branching:
            for (word, prons), j in zip(self.data.alternatives[i], self.choice[i]):
                if len(prons) > 1:
                    out.setdefault(word, [0] * len(prons))[j] += 1
        return out

    # -- checkpoints ------------------------------------------------------------------------

    def flat(self) -> dict[str, np.ndarray]:
        return {"choice": self.choice}

    def load_flat(self, saved: dict[str, np.ndarray]) -> None:
        self.choice = np.asarray(saved["choice"], np.int32)
        for i in self.branching:
            self.data.labels[i] = self.target(i)


class PronunciationGraphs:
    """Every training example's pronunciation graph (`alternatives_graph`: each word's listed
    pronunciations side by side, the optional pauses between them; an example without alternatives
    gets its grid's graph), padded to the most states (S) and arcs into a state (K) of the training
    set, so each batch's `Graph` has one shape: the train step compiles once per length bucket."""

    def __init__(self, data: SequenceData, setup):
        silence = data.optional_symbol
        layouts = []
        for i, words in enumerate(data.alternatives):
            prons = [p for _, p in words] if words is not None else [[w] for w in _words(data.labels[i], silence)]
            layouts.append(alternatives_graph(setup, prons, silence))
        graphs = [graph_from_arcs([g.emissions], [g.arcs], [g.start], [g.final]) for g in layouts]
        states = max(g.emissions.shape[1] for g in graphs)
        arcs = max(g.arcs.shape[2] for g in graphs)
        pad = {
            "emissions": -1,
            "arcs": -1,
            "arc_weights": 0.0,
            "stay_weights": -np.inf,
            "start": -np.inf,
            "final": -np.inf,
        }
        self.arrays = {}  # field -> (N, S[, K]) over the training set
        for field, fill in pad.items():
            parts = []
            for g in graphs:
                x = np.asarray(getattr(g, field))[0]
                widths = [(0, states - x.shape[0])] + ([(0, arcs - x.shape[1])] if x.ndim == 2 else [])
                parts.append(np.pad(x, widths, constant_values=fill))
            self.arrays[field] = np.stack(parts)

    def batch(self, index) -> Graph:
        """The graphs of the examples `index` (a batch's `index`, filler rows included)."""
        return Graph(**{field: x[np.asarray(index)] for field, x in self.arrays.items()})


def _words(labels: np.ndarray, silence: int) -> list[list[int]]:
    """A target `pause, word, pause, ..., word, pause` -> its words' symbols."""
    words, current = [], []
    for s in labels.tolist()[1:]:
        if s == silence:
            words.append(current)
            current = []
        else:
            current.append(s)
    return words
