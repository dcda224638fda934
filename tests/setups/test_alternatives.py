"""Pronunciation alternatives as parallel branches (`jaxalign.setups.alternatives`) on synthetic
log-probs: the graph is the grid with one pronunciation a word, and the Viterbi picks the spoken one."""

from types import SimpleNamespace

import numpy as np
import pytest

from jaxalign.align.graph import graph_from_arcs
from jaxalign.align.grid import substate_grid
from jaxalign.setups.alternatives import align_alternatives, alternatives_graph

SIL = 0
SETUP = SimpleNamespace(
    states_per_symbol=2, optional_symbol=SIL, num_classes=8, pause_states=1, pause_columns=None, pause_probability=0.5
)


def log_probs_of(classes, num_classes=8, k=2):
    """(T, C k) log-probs where frame t is sure of the sub-state class `classes[t]`."""
    lp = np.full((len(classes), num_classes * k), np.log(0.01 / (num_classes * k - 1)), np.float32)
    lp[np.arange(len(classes)), classes] = np.log(0.99)
    return lp


def frames_of(symbols, each=2, k=2):
    """Sub-state classes of symbols spoken in order, `each` frames per sub-state (a pause: one row)."""
    out = []
    for s in symbols:
        out += [s * k] * each if s == SIL else [s * k + j for j in range(k) for _ in range(each)]
    return out


@pytest.mark.parametrize("m, p", [(1, 0.5), (3, 0.2)])
def test_one_pronunciation_a_word_is_the_grid(m, p):
    """The graph of one pronunciation a word is `Grid.graph` of the target, state for state, arc
    for arc and weight for weight (pause blocks of m rows, weighted by p)."""
    setup = SimpleNamespace(**{**vars(SETUP), "pause_states": m, "pause_probability": p})
    prons = [[[1, 2]], [[3]], [[4, 5, 1]]]
    layout = alternatives_graph(setup, prons, SIL)
    graph = graph_from_arcs([layout.emissions], [layout.arcs], [layout.start], [layout.final])
    labels = np.array([[SIL, 1, 2, SIL, 3, SIL, 4, 5, 1, SIL]])
    expected = substate_grid(labels, np.zeros(labels.shape), 2, SIL, m).graph(p)
    used = graph.emissions.shape[1]
    assert used == int(np.sum(np.asarray(expected.emissions) >= 0))
    for name in ("emissions", "arcs", "arc_weights", "stay_weights", "start", "final"):
        want = np.asarray(getattr(expected, name))[:, :used]
        got = np.asarray(getattr(graph, name))
        if name == "arc_weights":  # where there is no arc the weight is not read
            want, got = np.where(np.asarray(expected.arcs)[:, :used] >= 0, want, 0), np.where(graph.arcs >= 0, got, 0)
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=name)


def test_the_spoken_pronunciation_is_chosen_when_listed_second():
    """Word 1 has a wrong first pronunciation (other phones, another length) and the spoken one
    second; word 2 has two and the first is spoken. Pauses are skipped or taken as the frames say."""
    prons = [[[6, 7, 6], [1, 2]], [[3, 4], [5]]]
    spoken = frames_of([SIL, 1, 2, 3, 4, SIL])  # no pause between the words
    (found,) = align_alternatives(SETUP, [log_probs_of(spoken)], [prons], SIL)
    assert found.choice == [1, 0]
    np.testing.assert_array_equal(found.labels, [SIL, 1, 2, SIL, 3, 4, SIL])
    expected = [0, 0] + [1] * 4 + [2] * 4 + [4] * 4 + [5] * 4 + [6, 6]  # the middle pause (index 3) skipped
    np.testing.assert_array_equal(found.positions, expected)


def test_each_occurrence_chooses_for_itself_in_a_batch():
    prons = [[[1, 2], [3]], [[1, 2], [3]]]
    first = frames_of([SIL, 3, SIL, 1, 2])
    second = frames_of([1, 2, 3, SIL], each=3)
    found = align_alternatives(SETUP, [log_probs_of(first), log_probs_of(second)], [prons, prons], SIL)
    assert [f.choice for f in found] == [[1, 0], [0, 1]]
    np.testing.assert_array_equal(found[0].labels, [SIL, 3, SIL, 1, 2, SIL])
    np.testing.assert_array_equal(found[1].labels, [SIL, 1, 2, SIL, 3, SIL])
    assert len(found[0].positions) == len(first) and len(found[1].positions) == len(second)
    assert found[1].positions[0] == 1 and found[1].positions[-1] == 5


def test_recordings_split_into_several_calls_give_the_same_paths():
    prons = [[[1, 2], [3]], [[1, 2], [3]]]
    spoken = [frames_of([SIL, 3, SIL, 1, 2]), frames_of([1, 2, 3, SIL], each=3), frames_of([3, 1, 2], each=4)]
    lps = [log_probs_of(s) for s in spoken]
    together = align_alternatives(SETUP, lps, [prons] * 3, SIL)
    apart = align_alternatives(SETUP, lps, [prons] * 3, SIL, max_cells=1)
    assert [f.choice for f in together] == [[1, 0], [0, 1], [1, 0]]
    for a, b in zip(together, apart):
        assert a.choice == b.choice
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.labels, b.labels)


def test_pronunciation_weights_decide_where_the_frames_cannot():
    """Frames that hear both pronunciations equally well: the unweighted graph keeps the first
    (the tie-break), a log-probability weight on the second's arcs makes it the choice; a weight
    the frames outweigh does not."""
    prons = [[[1], [2]]]
    lp = log_probs_of(frames_of([SIL, 1, SIL]))
    lp[:, 4:6] = lp[:, 2:4]  # symbol 2's sub-states as likely as symbol 1's
    ((tied,), (weighted,)) = (
        align_alternatives(SETUP, [lp], [prons], SIL),
        align_alternatives(SETUP, [lp], [prons], SIL, weights=[[[np.log(0.2), 0.0]]]),
    )
    assert tied.choice == [0] and weighted.choice == [1]
    (heard,) = align_alternatives(
        SETUP, [log_probs_of(frames_of([SIL, 1, SIL]))], [prons], SIL, weights=[[[np.log(0.2), 0.0]]]
    )
    assert heard.choice == [0]


def test_pause_after_a_pronunciation_weighs_its_arcs_into_and_past_the_next_pause():
    """pause_after p on a word's branch: its arcs into the pause between it and the next word carry
    log p, its arcs past that pause log(1 - p); None keeps align.pause_probability, as do the
    recording's first and last pauses; all None is the unweighted graph."""
    prons = [[[1], [2, 4]], [[3]]]
    plain = alternatives_graph(SETUP, prons, SIL)
    assert alternatives_graph(SETUP, prons, SIL, pause_after=[[None, None], [None]]) == plain
    layout = alternatives_graph(SETUP, prons, SIL, pause_after=[[0.9, None], [0.3]])
    ends = {1: 2, 2: 6}  # rows: pause 0, branch 0's two sub-states 1-2, branch 1's four 3-6
    pause, word_1 = 7, 8  # the pause between the words, then word 1's first row
    weights = {(a, b): w for a, b, *w in layout.arcs}
    assert weights[ends[1], pause] == [pytest.approx(np.log(0.9))]
    assert weights[ends[1], word_1] == [pytest.approx(np.log(0.1))]
    half = [pytest.approx(np.log(0.5))]
    assert weights[ends[2], pause] == half and weights[ends[2], word_1] == half
    assert layout.final == plain.final and layout.start == plain.start  # the last word's 0.3 is not a junction


def test_a_pause_the_frames_leave_open_goes_as_the_word_probability_says():
    """Between two words two frames as likely silence as the first word's last sub-state: a high
    probability of a pause after the word takes them as a pause, a low one leaves the pause out."""
    prons = [[[1]], [[3]]]
    lp = log_probs_of(frames_of([SIL, 1, SIL, 3, SIL]))
    lp[6:8, 3] = lp[6:8, 0]  # the pause's two frames heard as well as symbol 1's second sub-state
    (often,), (seldom,) = (
        align_alternatives(SETUP, [lp], [prons], SIL, pause_after=[[[p], [None]]]) for p in (0.99, 0.01)
    )
    assert 2 in often.positions[6:8] and 2 not in seldom.positions  # the pause (target index 2) or none
