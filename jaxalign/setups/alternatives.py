"""Words with several pronunciations, aligned as parallel branches: the Viterbi chooses one per
occurrence (`jaxalign-align` on a corpus, and training: `jaxalign.training.pronunciations`).

A recording's graph (`alternatives_graph`) is the grid of its target with each word replaced by its
pronunciations side by side: `pause word_1 pause word_2 ... pause`, where every pronunciation of a
word is entered from the pause before it and, the pause skipped, from the last state of every
pronunciation of the word before; it leaves into the pause after it and, skipped, into every
pronunciation of the next word. Each symbol's states and classes are the setup's own grid rows
(`substate_grid`: k sub-states a phone, a block of `align.pause_states` rows for the optional pause,
entered or skipped whole), so with one pronunciation per word the graph IS `Grid.graph` of today's
target, state for state and arc for arc, and `graph_viterbi` finds the grid's path (same tie-break). The chosen path is turned back
into today's representation: the chosen pronunciations' target, each frame's index in it, and the
index of each word's pronunciation in its dictionary list.

The arcs that enter a pause carry log p and those that skip one log(1 - p) (`align.pause_probability`,
as in `Grid.graph`; between two words, p may instead be the probability of a pause after the
pronunciation the arc leaves, MFA's silence probability column, which a run's training re-estimates
into its dictionary.txt); the arcs into a pronunciation carry its log-probability where the dictionary
gives MFA's probability column (`read_dictionary_with_probabilities`; a run's dictionary.txt has the
probabilities its training chose, `jaxalign.training.pronunciations`), else nothing. Unknown words (`spn`, `jaxalign.aligner.unknown`)
and long recordings (band alignment, `jaxalign.align.long`, which takes no graphs) keep the first
pronunciation.
"""

from typing import NamedTuple

import numpy as np

from jaxalign.align.graph import graph_from_arcs, graph_viterbi
from jaxalign.align.grid import target_grid

PRONUNCIATION_STARTS = ("random", "first")  # align.pronunciation_start: what training trains on before its first choice
MAX_CELLS = 64_000_000  # frames x graph states of one graph_viterbi call (its one-byte backpointers)


class Chosen(NamedTuple):
    """One recording's alignment through its pronunciation graph.

    choice:    per word, the index of the chosen pronunciation in the word's list.
    labels:    (L,) int32 the target of the chosen pronunciations (`Utterance.target`'s layout).
    positions: (T,) int32 each frame's index in `labels` (as `Run.outputs`' positions).
    """

    choice: list[int]
    labels: np.ndarray
    positions: np.ndarray


class _Layout(NamedTuple):
    emissions: list[int]  # class of each state
    arcs: list[tuple]  # (source, target) or (source, target, log-weight)
    start: dict[int, float]  # start state -> log-weight
    final: dict[int, float]  # final state -> log-weight
    kinds: list[tuple]  # per state: ("pause", i) or ("phone", word, branch, phone index)


def alternatives_graph(setup, pronunciations, silence_id: int, weights=None, pause_after=None) -> _Layout:
    """The left-to-right graph of one recording (module docstring). pronunciations: per word, its
    pronunciations as lists of symbol ids (at least one each); weights: per word, a log-weight for
    each of its pronunciations (on every arc into the branch), or None (0); pause_after: per word,
    for each of its pronunciations the probability of a pause between it and the next word (MFA's
    silence probability; None: `align.pause_probability`), or None. The states are the rows of the
    setup's grid (`substate_grid` with the setup's `states_per_symbol`, `optional_symbol` and
    `pause_states`) over all the branches' symbols in order; a pause block the grid marks optional
    may be skipped whole."""
    symbols, kinds = [silence_id], [("pause", 0)]
    for i, prons in enumerate(pronunciations):
        for j, phones in enumerate(prons):
            symbols += phones
            kinds += [("phone", i, j, m) for m in range(len(phones))]
        symbols.append(silence_id)
        kinds.append(("pause", i + 1))
    width = max(64, 1 << (len(symbols) - 1).bit_length())  # a few padded widths: a few compilations
    rows, label_of, optional = target_grid(
        symbols, setup.states_per_symbol, setup.optional_symbol, width, setup.pause_states, setup.pause_columns
    )
    skippable = optional is not None
    enter, skip = (np.log(setup.pause_probability), np.log1p(-setup.pause_probability)) if skippable else (0.0, 0.0)
    first = {int(s): int(np.flatnonzero(label_of == s)[0]) for s in np.unique(label_of)}
    last = {int(s): int(np.flatnonzero(label_of == s)[-1]) for s in np.unique(label_of)}
    pause_label = {kind[1]: s for s, kind in enumerate(kinds) if kind[0] == "pause"}
    ends = {}  # word -> (branch, last state) of each of its branches
    for s, kind in enumerate(kinds):
        if kind[0] == "phone" and kind[3] == len(pronunciations[kind[1]][kind[2]]) - 1:
            ends.setdefault(kind[1], []).append((kind[2], last[s]))

    def pause_weights(word, branch):  # (enter, skip) of the pause after `word` left from `branch`
        p = None if pause_after is None or word + 1 >= len(pronunciations) else pause_after[word][branch]
        return (enter, skip) if p is None else (np.log(p), np.log1p(-p))

    arcs, start = [], {}
    for r in range(len(rows)):
        s = int(label_of[r])
        if r != first[s]:
            arcs.append((r - 1, r))
            continue
        kind = kinds[s]
        if kind[0] == "phone" and kind[3] > 0:
            arcs.append((last[s - 1], r))
            continue
        word = kind[1]  # a branch's first phone: word `word`; a pause: the one after word - 1
        if kind[0] == "phone":  # from the pause before it, or past that pause where it may be skipped
            prior = 0.0 if weights is None else float(weights[word][kind[2]])
            arcs.append((last[pause_label[word]], r, prior))
            if skippable:
                arcs += [(e, r, pause_weights(word - 1, j)[1] + prior) for j, e in ends.get(word - 1, [])]
                if word == 0:
                    start[r] = skip + prior
        else:  # a pause, entered from every branch of the word before it
            arcs += [(e, r, pause_weights(word - 1, j)[0]) for j, e in ends.get(word - 1, [])]
            if word == 0:
                start[r] = enter
    final = {len(rows) - 1: 0.0}
    if skippable:
        final.update({e: skip for _, e in ends[len(pronunciations) - 1]})
    state_kinds = [kinds[int(s)] for s in label_of]
    return _Layout([int(c) for c in rows], arcs, start, final, state_kinds)


def _chosen(layout: _Layout, pronunciations, states_T, silence_id: int) -> Chosen:
    """A path of states -> the chosen pronunciations, their target and each frame's index in it."""
    choice = [0] * len(pronunciations)
    for s in np.unique(states_T):
        kind = layout.kinds[int(s)]
        if kind[0] == "phone":
            choice[kind[1]] = kind[2]
    labels, begin, pause_at = [silence_id], [], [0]
    for prons, j in zip(pronunciations, choice):
        begin.append(len(labels))
        labels += prons[j]
        pause_at.append(len(labels))
        labels.append(silence_id)

    def index(kind):
        return pause_at[kind[1]] if kind[0] == "pause" else begin[kind[1]] + kind[3]

    table = np.array([index(kind) for kind in layout.kinds], np.int32)
    return Chosen(choice, np.asarray(labels, np.int32), table[np.asarray(states_T)])


def align_alternatives(
    setup, log_probs, pronunciations, silence_id: int, max_cells: int = MAX_CELLS, weights=None, pause_after=None
) -> list[Chosen | None]:
    """The best path of each recording through its pronunciation graph, by batched `graph_viterbi`
    calls (recordings of similar length together, at most `max_cells` frames x states of one-byte
    backpointers a call).

    log_probs: per recording (T_i, C') the run's log-probs (`Run.outputs`' `log_probs`); the search
    reads their sub-state columns renormalised, the CTC blank left out (as the grid's forced
    alignment does in `OrderSync.decode`). pronunciations: per recording, per word, its
    pronunciations as symbol-id lists. weights: per recording, `alternatives_graph`'s weights (e.g.
    the log of MFA's pronunciation probabilities), or None; pause_after: per recording,
    `alternatives_graph`'s pause_after, or None. Returns per recording a `Chosen`, or None where no
    path fits."""
    weights = weights or [None] * len(pronunciations)
    pause_after = pause_after or [None] * len(pronunciations)
    layouts = [
        alternatives_graph(setup, prons, silence_id, w, pauses)
        for prons, w, pauses in zip(pronunciations, weights, pause_after)
    ]
    out: list[Chosen | None] = [None] * len(layouts)
    group: list[int] = []
    for i in sorted(range(len(layouts)), key=lambda i: len(log_probs[i])):
        wider = [*group, i]
        cells = len(wider) * len(log_probs[i]) * max(len(layouts[j].emissions) for j in wider)
        if group and cells > max_cells:
            _align_group(setup, log_probs, pronunciations, layouts, group, silence_id, out)
            wider = [i]
        group = wider
    if group:
        _align_group(setup, log_probs, pronunciations, layouts, group, silence_id, out)
    return out


def _align_group(setup, log_probs, pronunciations, layouts, group, silence_id, out) -> None:
    """One `graph_viterbi` call over the recordings `group`; their `Chosen` into `out`."""
    width = setup.num_classes * setup.states_per_symbol
    graph = graph_from_arcs(
        [layouts[i].emissions for i in group],
        [layouts[i].arcs for i in group],
        [layouts[i].start for i in group],
        [layouts[i].final for i in group],
    )
    frames = max(len(log_probs[i]) for i in group)
    batch_lp = np.zeros((len(group), frames, width), np.float32)
    paddings = np.ones((len(group), frames), np.float32)
    for b, i in enumerate(group):
        symbol_lp = np.asarray(log_probs[i], np.float32)[:, :width]
        batch_lp[b, : len(symbol_lp)] = symbol_lp - np.logaddexp.reduce(symbol_lp, axis=1, keepdims=True)
        paddings[b, : len(symbol_lp)] = 0
    found = graph_viterbi(batch_lp, paddings, graph)
    states, feasible = np.asarray(found.states), np.asarray(found.feasible)
    for b, i in enumerate(group):
        if feasible[b]:
            out[i] = _chosen(layouts[i], pronunciations[i], states[b, : len(log_probs[i])], silence_id)
