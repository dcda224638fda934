"""The probability of a pause after each word: counted off the run's own alignments of its training
set (`jaxalign.training.pauses`), smoothed as MFA smooths its silence probabilities, and written
into and read back from MFA's dictionary columns."""

import numpy as np
import pytest

from jaxalign.data import Batcher
from jaxalign.data.dataset import SequenceData
from jaxalign.data.dictionary import (
    PAUSE_FLOOR,
    PAUSE_PRIOR_COUNT,
    dictionary_text,
    estimated_pause_probabilities,
    read_dictionary_with_probabilities,
)
from jaxalign.setups import setup_for_data
from jaxalign.training.pauses import pause_counts
from tests.helpers import tiny_config

VOCAB = ["sil", "a", "b", "c"]
SIL, A, B, C = range(4)


def test_pause_probabilities_are_mfa_smoothed_towards_the_overall_rate_and_kept_off_0_and_1():
    counts = {"x": [(3, 4), (0, 0)], "y": [(0, 6)], "z": [(1, 10)]}
    overall = 4 / 20
    got = estimated_pause_probabilities(counts)
    assert got["x"] == [
        pytest.approx((3 + PAUSE_PRIOR_COUNT * overall) / (4 + PAUSE_PRIOR_COUNT)),
        pytest.approx(overall),
    ]
    assert got["y"] == [pytest.approx(PAUSE_PRIOR_COUNT * overall / (6 + PAUSE_PRIOR_COUNT))]
    assert estimated_pause_probabilities({"w": [(0, 50)], "v": [(0, 3)]}) == {"w": [PAUSE_FLOOR], "v": [PAUSE_FLOOR]}
    assert estimated_pause_probabilities({"w": [(9, 9)]}) == {"w": [1 - PAUSE_FLOOR]}


def test_pause_columns_are_written_in_mfas_order_and_read_back(tmp_path):
    entries = {"one": [["a", "c"], ["a", "b"]], "two": [["d", "b"]], "three": [["c"]]}
    path = tmp_path / "dictionary.txt"
    path.write_text(dictionary_text(entries, {"one": [0.5, 1.0]}, {"one": [0.25, 0.5], "two": [0.125]}))
    assert path.read_text().splitlines() == [
        "one\t0.5\t0.25\ta c",
        "one\t1\t0.5\ta b",
        "three\tc",
        "two\t1\t0.125\td b",
    ]
    read = read_dictionary_with_probabilities(path, "sil")
    assert read.entries == entries
    assert read.probabilities == {"one": [0.5, 1.0], "two": [1.0]}
    assert read.pause_after == {"one": [0.25, 0.5], "two": [0.125]}


def test_mfas_silence_corrections_are_read_past_and_a_line_without_the_column_has_none(tmp_path):
    path = tmp_path / "dictionary.txt"
    path.write_text("the\t0.99\t0.12\t1.04\t0.96\tD @\nthe\t1.0\tD i:\nand\tA n d\n")
    read = read_dictionary_with_probabilities(path, "sil")
    assert read.entries == {"the": [["D", "@"], ["D", "i:"]], "and": [["A", "n", "d"]]}
    assert read.probabilities == {"the": [0.99, 1.0]} and read.pause_after == {"the": [0.12, None]}


def test_pause_counts_read_the_pauses_between_words_off_the_path(monkeypatch):
    """Frames that say their symbol (the net's logits are the features): the path through each grid
    is what the frames say, so the counts are the pauses spoken between words. The edges' silences
    are not counted; a word with alternatives counts under the pronunciation chosen for it."""
    spoken = [  # (words, frames, target)
        (["x", "y"], [SIL, A, A, SIL, SIL, B, B, SIL], [SIL, A, SIL, B, SIL]),
        (["x", "y"], [SIL, A, A, B, B], [SIL, A, SIL, B, SIL]),
        (["x", "y", "z"], [A, A, B, B, C, C, SIL], [SIL, A, SIL, B, SIL, C, SIL]),
        (["x", "y"], [C, C, SIL, SIL, B, B], [SIL, C, SIL, B, SIL]),  # x spoken as its second pronunciation
    ]
    features = [20.0 * np.eye(len(VOCAB), dtype=np.float32)[frames] for _, frames, _ in spoken]
    labels = [np.asarray(target, np.int32) for *_, target in spoken]
    alternatives = [None, None, None, [("x", [[A], [C]]), ("y", [[B]])]]
    data = SequenceData(features, labels, None, VOCAB, SIL, alternatives=alternatives, words=[w for w, *_ in spoken])
    config = tiny_config(align={"states_per_symbol": 1})
    setup = setup_for_data(config, data.info())
    monkeypatch.setattr("jaxalign.training.pauses.forward", lambda graphdef, params, batch: batch["features"])
    choice = np.zeros((len(data), 3), np.int32)
    choice[3] = [1, 0, 0]
    paused, occurrences = pause_counts(
        data, Batcher(data, 2, num_buckets=1), setup, None, None, step=100, choice=choice
    )
    assert dict(occurrences) == {("x", 0): 3, ("y", 0): 1, ("x", 1): 1}  # a last word is followed by none
    assert dict(paused) == {("x", 0): 1, ("y", 0): 0, ("x", 1): 1}
