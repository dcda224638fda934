"""`ctc_forced_align`: CTC's topology as a grid with optional blank rows, against brute force and
against torchaudio's `forced_align` (where torchaudio is installed)."""

import jax
import numpy as np
import pytest

import jaxalign
from jaxalign.align.ctc import ctc_grid
from tests.reference import brute_optional, lengths


def ctc_batch(seed, batch=16, frames=30, labels_max=6, classes=5, repeats=True):
    """Random emissions (the blank is class 0) and targets of 1..labels_max labels in 1..C-1, with
    repeats, right-padded; some targets too long for their frames once their repeats need blanks."""
    rng = np.random.default_rng(seed)
    log_probs = np.asarray(jax.nn.log_softmax(2 * rng.normal(size=(batch, frames, classes)), axis=-1), np.float32)
    t_len = rng.integers(1, frames + 1, size=batch)
    u_len = rng.integers(1, labels_max + 1, size=batch)
    t_len[0], u_len[0] = frames, labels_max
    labels = rng.integers(1, classes, size=(batch, labels_max))
    if repeats:
        labels[1, :2] = labels[1, 0]  # a repeat: its blank is mandatory
        labels[2, :] = labels[2, 0]  # all the same: U + (U - 1) frames needed
        t_len[2], u_len[2] = 2 * labels_max - 1, labels_max
        t_len[3], u_len[3] = 2 * labels_max - 2, labels_max  # one frame short
        labels[3, :] = labels[3, 0]
    logit_pad = (np.arange(frames)[None] >= t_len[:, None]).astype(np.float32)
    label_pad = (np.arange(labels_max)[None] >= u_len[:, None]).astype(np.float32)
    return log_probs, logit_pad, labels.astype(np.int32), label_pad


def test_ctc_grid_has_optional_blanks_except_between_repeats():
    rows, pad, optional = (np.asarray(x) for x in ctc_grid(np.array([[3, 3, 4, 0]]), np.array([[0, 0, 0, 1]]), 0))
    assert rows[0, :7].tolist() == [0, 3, 0, 3, 0, 4, 0] and pad[0].tolist() == [0] * 7 + [1, 1]
    assert optional[0].tolist() == [1, 0, 0, 0, 1, 0, 1, 0, 0]


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("frames, labels_max", [(9, 3), (9, 1), (3, 3), (1, 1)])
def test_ctc_forced_align_is_the_best_path_of_ctc_s_topology(seed, frames, labels_max):
    log_probs, logit_pad, labels, label_pad = ctc_batch(
        seed, batch=8, frames=frames, labels_max=labels_max, classes=4, repeats=labels_max >= 2
    )
    ali = jaxalign.ctc_forced_align(log_probs, logit_pad, labels, label_pad, blank_id=0)
    grid = [np.asarray(x) for x in ctc_grid(labels, label_pad, 0)]
    frames = lengths(logit_pad)
    for b, (best, winners, _, _, any_path) in enumerate(brute_optional(log_probs, logit_pad, grid[0], *grid[1:])):
        assert bool(ali.feasible[b]) == any_path
        np.testing.assert_allclose(ali.score[b], best, rtol=1e-5)
        tokens = np.asarray(ali.tokens[b])
        if not any_path:
            assert np.all(tokens == -1) and np.all(np.asarray(ali.label_index[b]) == -1)
            continue
        assert tokens[: frames[b]].tolist() in [grid[0][b][rows].tolist() for rows in winners]
        assert np.all(tokens[frames[b] :] == -1)
        index = np.asarray(ali.label_index[b])
        on_label = index >= 0
        np.testing.assert_array_equal(tokens[on_label], labels[b][index[on_label]])
        assert np.all(tokens[: frames[b]][~on_label[: frames[b]]] == 0)  # the rest is blank


def test_ctc_forced_align_equals_torchaudio_on_random_emissions():
    torch = pytest.importorskip("torch")
    forced_align = pytest.importorskip("torchaudio.functional").forced_align
    log_probs, logit_pad, labels, label_pad = ctc_batch(7, batch=32, frames=40, labels_max=8, classes=6)
    ali = jaxalign.ctc_forced_align(log_probs, logit_pad, labels, label_pad, blank_id=0)
    frames, units = lengths(logit_pad), lengths(label_pad)
    compared = 0
    for b in range(len(frames)):
        if not bool(ali.feasible[b]):
            continue  # torchaudio raises for targets too long for their frames
        emissions = torch.from_numpy(log_probs[b : b + 1, : frames[b]].copy())
        targets = torch.from_numpy(labels[b : b + 1, : units[b]].copy())
        tokens, _ = forced_align(emissions, targets, blank=0)
        np.testing.assert_array_equal(
            np.asarray(ali.tokens[b, : frames[b]]), tokens[0].numpy(), err_msg=f"sequence {b}"
        )
        compared += 1
    assert compared >= 20


def test_a_blank_inside_the_targets_is_refused_outside_jit_and_aligned_as_a_label_under_it():
    log_probs, logit_pad, labels, label_pad = ctc_batch(0, batch=4, frames=12, labels_max=3, classes=4)
    labels = np.where(labels == 3, 1, labels).astype(np.int32)  # ids 1, 2
    labels[2, 1] = 0  # the blank, on a valid row of sequence 2
    with pytest.raises(ValueError, match=r"labels: example 2 row 1 is the blank \(0\)"):
        jaxalign.ctc_forced_align(log_probs, logit_pad, labels, label_pad, blank_id=0)
    jaxalign.ctc_forced_align(log_probs, logit_pad, labels, label_pad, blank_id=3)  # 0 is a label there
    # Under jit (documented): the blank is a mandatory label row of its own.
    ali = jax.jit(jaxalign.ctc_forced_align, static_argnames="blank_id")(log_probs, logit_pad, labels, label_pad)
    assert ali.feasible[2]
    index = np.asarray(ali.label_index[2])
    assert np.any(index == 1) and np.all(np.asarray(ali.tokens[2])[index == 1] == 0)


@pytest.mark.parametrize("blank_id, message", [(-1, "padding value of tokens"), (4, "not one of the 4 classes")])
def test_a_blank_id_outside_the_classes_is_refused_with_or_without_jit(blank_id, message):
    log_probs, logit_pad, labels, label_pad = ctc_batch(0, batch=4, frames=12, labels_max=3, classes=4)
    labels = np.where(labels == 3, 1, labels).astype(np.int32)  # ids 1, 2: none is the blank
    with pytest.raises(ValueError, match=f"blank_id={blank_id} .*{message}"):
        jaxalign.ctc_forced_align(log_probs, logit_pad, labels, label_pad, blank_id=blank_id)
    with pytest.raises(ValueError, match=f"blank_id={blank_id} .*{message}"):
        jax.jit(jaxalign.ctc_forced_align, static_argnames="blank_id")(
            log_probs, logit_pad, labels, label_pad, blank_id=blank_id
        )


@pytest.mark.parametrize("jitted", [False, True])
def test_an_empty_target_is_the_all_blank_path(jitted):
    """U_b = 0 (labels of shape (B, 0), or a padded target): the all-blank path, feasible, its score the
    blank's log-probs summed; no frames at all: infeasible."""
    log_probs, logit_pad, labels, label_pad = ctc_batch(1, batch=4, frames=6, labels_max=2, classes=4)
    logit_pad[3] = 1  # T_3 = 0
    align = jax.jit(jaxalign.ctc_forced_align, static_argnames="blank_id") if jitted else jaxalign.ctc_forced_align
    label_pad = label_pad.copy()
    label_pad[1] = 1  # U_1 = 0 beside nonempty targets
    for args in ((labels[:, :0], label_pad[:, :0]), (labels, label_pad)):
        ali = jax.tree.map(np.asarray, align(log_probs, logit_pad, *args, blank_id=0))
        frames = lengths(logit_pad)
        empty = [0, 1, 2] if args[0].shape[1] == 0 else [1]
        for b in empty:
            assert ali.feasible[b]
            assert np.all(ali.tokens[b, : frames[b]] == 0) and np.all(ali.tokens[b, frames[b] :] == -1)
            assert np.all(ali.label_index[b] == -1)
            np.testing.assert_allclose(ali.score[b], log_probs[b, : frames[b], 0].sum(), rtol=1e-6)
        assert not ali.feasible[3] and np.all(ali.tokens[3] == -1) and ali.score[3] == -np.inf
