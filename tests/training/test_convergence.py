"""Stopping once the alignments have converged: the check's counting, a run that stops early and
says why, a run that never converges, and a resume that stops where the uninterrupted run did."""

import json

import numpy as np
import pytest

from jaxalign.data import SequenceData
from jaxalign.training import train
from jaxalign.training.convergence import Convergence, probe_examples
from jaxalign.training.loop import Trainer
from tests.helpers import replace, tiny_config


def probe(lengths):
    features = [np.zeros((n, 2), np.float32) for n in lengths]
    return SequenceData(features=features, labels=[np.zeros(1, np.int32)] * len(lengths), alignments=None, vocab=["a"])


def test_quiet_checks_in_a_row_converge_and_a_loud_one_starts_the_count_again():
    config = tiny_config(trainer={"converge_churn": 0.1, "converge_every": 5, "converge_patience": 2})
    check = Convergence(config.trainer, probe([4, 6]), first_step=10)
    assert [s + 1 for s in range(30) if check.due(s)] == [10, 15, 20, 25, 30]
    a = [np.array([0, 0, 1, 1]), np.array([0, 1, 1, 2, 2, 2])]
    b = [np.array([0, 1, 1, 1]), np.array([0, 1, 1, 2, 2, 2])]  # 1 of 10 frames moved: not under 0.1
    assert check.update(a) is None and not check.converged
    assert check.update(b) == pytest.approx(0.1) and check.quiet == 0
    assert check.update(b) == 0.0 and check.quiet == 1 and not check.converged
    assert check.update(a) == pytest.approx(0.1) and check.quiet == 0
    assert check.update(a) == 0.0 and check.update(a) == 0.0 and check.converged
    restored = Convergence(config.trainer, probe([4, 6]), first_step=10)
    restored.load_flat(check.flat())
    assert restored.quiet == 2 and all((p == q).all() for p, q in zip(restored.previous, a))


def test_the_probe_is_a_fixed_draw_of_training_examples():
    assert (probe_examples(100, 8, seed=3) == probe_examples(100, 8, seed=3)).all()
    assert list(probe_examples(5, 64, seed=0)) == [0, 1, 2, 3, 4]


def lines(run_dir, split):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["split"] == split]


CONVERGING = {"steps": 200, "converge_churn": 0.99, "converge_every": 5, "converge_patience": 2, "checkpoint_every": 5}


@pytest.mark.slow
def test_a_run_stops_once_its_alignments_settle_and_says_why(tmp_path, capsys):
    train(tiny_config(trainer=CONVERGING), tmp_path / "settles")  # warm-up 4 steps: checks at 5, 10, 15
    stop = lines(tmp_path / "settles", "stop")
    assert [s["step"] for s in stop] == [15] and "converged" in stop[0]["reason"]
    assert [c["step"] for c in lines(tmp_path / "settles", "converge")] == [10, 15]
    assert (tmp_path / "settles" / "checkpoints" / "15").exists()
    assert "stopped at step 15: alignments converged" in capsys.readouterr().err

    train(tiny_config(trainer={**CONVERGING, "steps": 30, "converge_churn": 1e-9}), tmp_path / "never")
    assert [s["reason"] for s in lines(tmp_path / "never", "stop")] == ["trainer.steps=30 reached"]


@pytest.mark.slow
def test_a_resumed_run_stops_where_the_uninterrupted_one_did(tmp_path, monkeypatch):
    config = tiny_config(trainer={**CONVERGING, "converge_churn": 0.2, "converge_patience": 3})
    train(config, tmp_path / "whole")
    whole, stop = lines(tmp_path / "whole", "converge"), lines(tmp_path / "whole", "stop")[0]["step"]
    assert len(whole) >= 2 and stop < 200

    dispatch = Trainer.dispatch

    def interrupted(self, step):
        if step == stop - 3:  # after the checkpoint that holds the check before the last
            raise KeyboardInterrupt
        return dispatch(self, step)

    monkeypatch.setattr(Trainer, "dispatch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed")
    monkeypatch.setattr(Trainer, "dispatch", dispatch)
    train(replace(config, trainer={"resume": True}), tmp_path / "resumed")
    assert lines(tmp_path / "resumed", "stop")[-1] == lines(tmp_path / "whole", "stop")[0]
    assert lines(tmp_path / "resumed", "converge")[-1] == whole[-1]
