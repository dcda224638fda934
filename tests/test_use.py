"""Using a trained run: `jaxalign-align` (alignments to npz / CTM / TextGrid, --evaluate, one-line
errors), `jaxalign.load_run`, the alignment figures rebuilt from a run directory, and
`jaxalign-train --help`. One tiny run is trained for the whole module."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from praatio import textgrid

import jaxalign
from jaxalign.aligner import cli as align_cli
from jaxalign.aligner import plot_run_alignment
from jaxalign.config import load_config
from jaxalign.data import write_arrays
from jaxalign.data.load import load_splits
from jaxalign.plots import COLUMN_WIDTH_IN, DPI
from jaxalign.training import train
from tests.helpers import tiny_config

ROOT = Path(__file__).resolve().parents[1]
FRAME_SHIFT = 0.025
SKIPPED = (2, 4)  # in the file below: a target longer than its input, and one too long once k=2 sub-states each


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    train(tiny_config(), path)  # 12 steps, checkpoints at 6 and 12
    return path


@pytest.fixture(scope="module")
def data_file(run_dir, tmp_path_factory):
    """Five sequences of the run's own test data, two of them too long to align (SKIPPED)."""
    test = load_splits(load_config(run_dir / ".hydra" / "config.yaml").data).test
    feats = [
        test.features[0],
        test.features[1],
        np.zeros((2, 6), np.float32),
        test.features[3],
        np.ones((3, 6), np.float32),
    ]
    labels = [test.labels[0], test.labels[1], np.array([0, 1, 2]), test.labels[3], np.array([1, 2])]
    alis = [test.alignments[0], test.alignments[1], np.zeros(2, int), test.alignments[3], np.array([0, 1, 1])]
    path = write_arrays(tmp_path_factory.mktemp("data") / "mine.npz", feats, labels, alignments=alis, vocab=test.vocab)
    return path, feats, labels, alis, test.vocab


def run_module(module: str, *args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_python_started_run_leaves_a_loadable_config(run_dir):
    assert load_config(run_dir / ".hydra" / "config.yaml") == tiny_config()


@pytest.mark.slow
def test_align_cli_writes_npz_ctm_and_textgrids_and_evaluates(run_dir, data_file, tmp_path):
    path, feats, labels, alis, vocab = data_file
    out = tmp_path / "out"
    proc = run_module(
        "jaxalign.aligner.cli",
        run_dir,
        path,
        "--out",
        out,
        "--format",
        "npz,ctm,textgrid",
        "--frame-shift",
        FRAME_SHIFT,
        "--evaluate",
    )
    assert proc.returncode == 0, proc.stderr
    skipped = [line for line in proc.stderr.splitlines() if "skipped sequence" in line]
    assert [int(line.split("skipped sequence ")[1].split(":")[0]) for line in skipped] == list(SKIPPED)
    kept = [i for i in range(len(feats)) if i not in SKIPPED]

    with np.load(out / "alignments.npz") as npz:
        positions = {int(k[len("seq_") :]): npz[k] for k in npz.files}
    assert sorted(positions) == kept
    for i in kept:  # monotone paths from row 0 to the last row, as the Python API gives them
        p = positions[i]
        assert p.shape == (len(feats[i]),) and p[0] == 0 and p[-1] == len(labels[i]) - 1
        assert set(np.diff(p)) <= {0, 1}
    api = jaxalign.load_run(run_dir).align([feats[i] for i in kept], [labels[i] for i in kept])
    for i, p in zip(kept, api):
        np.testing.assert_array_equal(positions[i], p)

    def expected(i):  # (start, end, label) per row of the path
        p = positions[i]
        return [
            (
                np.flatnonzero(p == r)[0] * FRAME_SHIFT,
                (np.flatnonzero(p == r)[-1] + 1) * FRAME_SHIFT,
                vocab[labels[i][r]],
            )
            for r in range(len(labels[i]))
        ]

    for i in kept:
        grid = textgrid.openTextgrid(str(out / "textgrids" / f"seq_{i:05d}.TextGrid"), includeEmptyIntervals=False)
        tier = grid.getTier("phones")
        got = [(e.start, e.end, e.label) for e in tier.entries]
        assert [g[2] for g in got] == [e[2] for e in expected(i)]
        np.testing.assert_allclose([g[:2] for g in got], [e[:2] for e in expected(i)], atol=1e-9)
        assert tier.maxTimestamp == pytest.approx(len(feats[i]) * FRAME_SHIFT)

    ctm = [line.split() for line in (out / "alignments.ctm").read_text().splitlines()]
    assert all(len(fields) == 5 and fields[1] == "1" for fields in ctm)
    for i in kept:
        rows = [(float(f[2]), float(f[2]) + float(f[3]), f[4]) for f in ctm if f[0] == f"seq_{i:05d}"]
        assert [r[2] for r in rows] == [e[2] for e in expected(i)]
        np.testing.assert_allclose([r[:2] for r in rows], [e[:2] for e in expected(i)], atol=1e-6)

    metrics = dict(line.split() for line in proc.stdout.splitlines())
    assert {"alignment_accuracy", "boundary_error", "label_error_rate"} <= set(metrics)
    correct = sum(int(np.sum(positions[i] == alis[i])) for i in kept)
    assert float(metrics["alignment_accuracy"]) == pytest.approx(correct / sum(len(alis[i]) for i in kept), abs=1e-4)
    assert int(metrics["sequences"]) == len(kept)


@pytest.mark.slow
def test_align_cli_run_dir_without_checkpoint_fails_in_one_line(run_dir, data_file, tmp_path):
    empty = tmp_path / "run"
    shutil.copytree(run_dir / ".hydra", empty / ".hydra")
    proc = run_module("jaxalign.aligner.cli", empty, data_file[0], "--out", tmp_path / "out")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"jaxalign-align: error: no checkpoints under {empty / 'checkpoints'}"]
    assert not (empty / "checkpoints").exists() and not (tmp_path / "out").exists()


def bad_inputs(run_dir, data_file, tmp_path):
    """{case: (run dir, data file, words the one error line must hold)}"""
    path, feats, labels, alis, vocab = data_file
    other = tmp_path / "time_sync"
    shutil.copytree(run_dir / ".hydra", other / ".hydra")
    config = other / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("name: order_sync", "name: time_sync"))
    wide = write_arrays(tmp_path / "wide.npz", [np.zeros((5, 7), np.float32)], [np.array([0])])
    five = write_arrays(tmp_path / "five.npz", feats, labels, vocab=[*vocab, "extra"])
    ids = write_arrays(tmp_path / "ids.npz", [np.zeros((5, 6), np.float32)], [np.array([0, 7])])
    corrupt = tmp_path / "corrupt"
    shutil.copytree(run_dir / ".hydra", corrupt / ".hydra")
    (corrupt / ".hydra" / "config.yaml").write_text("setup: {name: order_sync\nmodel: [")
    too_long = write_arrays(tmp_path / "too_long.npz", [np.zeros((2, 6), np.float32)], [np.array([0, 1, 2])])
    (tmp_path / "a_file").write_text("")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "alignments.ctm").write_text("an earlier run's\n")
    return {
        "corrupt config": (corrupt, path, "config.yaml is not a readable config"),
        "nothing to align": (run_dir, too_long, "none of its 1 sequences can be aligned"),
        "out under a file": (run_dir, path, "a_file is a file, not a folder", tmp_path / "a_file" / "out"),
        "out not empty": (run_dir, path, "is not empty; pass --overwrite", tmp_path / "used"),
        "feature size": (run_dir, wide, "features have 7 columns but the model"),
        "class count": (run_dir, five, "vocab has 5 classes but"),
        "class id": (run_dir, ids, "labels use class id 7"),
        "not aligning": (other, path, "setup=time_sync, which gives no alignments"),
        "no data file": (run_dir, tmp_path / "missing.npz", "no such file"),
        "no run": (tmp_path / "nowhere", path, "no config at"),
    }


def test_align_cli_bad_input_gives_one_line_and_status_1(run_dir, data_file, tmp_path, capsys):
    for case, (run, data, words, *out) in bad_inputs(run_dir, data_file, tmp_path).items():
        with pytest.raises(SystemExit) as exit_info:
            align_cli.main([str(run), str(data), "--out", str(out[0] if out else tmp_path / "out")])
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 1, case
        if case == "nothing to align":  # the model ran: its line and the skipped sequence come first
            lines = lines[-1:]
        assert len(lines) == 1 and lines[0].startswith("jaxalign-align: error:") and words in lines[0], (case, lines)
    assert not (tmp_path / "out").exists()  # no failure left an output folder
    assert (tmp_path / "used" / "alignments.ctm").read_text() == "an earlier run's\n"  # nor touched one


@pytest.mark.slow
def test_align_cli_overwrite_replaces_every_earlier_output(run_dir, data_file, tmp_path):
    path, feats, labels, alis, vocab = data_file
    out = tmp_path / "out"
    assert run_module("jaxalign.aligner.cli", run_dir, path, "--out", out, "--evaluate").returncode == 0
    assert len(list((out / "textgrids").iterdir())) == len(feats) - len(SKIPPED)
    (out / "notes.txt").write_text("mine\n")
    one = write_arrays(tmp_path / "one.npz", feats[:1], labels[:1], alignments=alis[:1], vocab=vocab)
    again = run_module("jaxalign.aligner.cli", run_dir, one, "--out", out, "--format", "textgrid", "--overwrite")
    assert again.returncode == 0, again.stderr
    # Only the second file's sequence is left: no stale npz, CTM, metrics or TextGrids; other files stay.
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["notes.txt", "textgrids"]
    assert [p.name for p in (out / "textgrids").iterdir()] == ["seq_00000.TextGrid"]


@pytest.mark.slow
@pytest.mark.parametrize("shift", ["nan", "inf", "-0.01", "0"])
def test_align_cli_refuses_a_frame_shift_that_is_not_a_finite_positive_number(shift, run_dir, data_file, tmp_path):
    proc = run_module(
        "jaxalign.aligner.cli", run_dir, data_file[0], "--out", tmp_path / "out", f"--frame-shift={shift}"
    )
    assert proc.returncode == 2 and "--frame-shift must be a finite number of seconds > 0" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_long_recording_is_aligned_in_a_band_as_the_full_grid_would(run_dir, monkeypatch, capsys):
    """Above the long-recording thresholds the net runs in overlapping windows and the alignment is
    banded (thresholds lowered here so a few test sequences end to end count as long): the path is
    the full grid's best path over the same log-probs."""
    from jaxalign.align.grid import substate_labels
    from jaxalign.aligner import run as inference

    run = jaxalign.load_run(run_dir)
    test = load_splits(run.config.data).test
    features = np.concatenate(test.features[:6])
    labels = np.concatenate(test.labels[:6])
    monkeypatch.setattr(inference, "LONG_FRAMES", len(features) - 1)
    monkeypatch.setattr(inference, "CHUNK_FRAMES", 40)
    monkeypatch.setattr(inference, "CHUNK_OVERLAP", 20)
    (positions,) = run.align([features], [labels])
    assert "aligned in a band around a first pass" in capsys.readouterr().err
    k, classes = run.setup.states_per_symbol, run.num_classes
    symbol_lp = run.chunked_log_probs(features)[:, : classes * k]
    symbol_lp = symbol_lp - np.logaddexp.reduce(symbol_lp, axis=1, keepdims=True)
    rows, row_pad = substate_labels(labels[None], np.zeros((1, len(labels))), k)
    full = jaxalign.viterbi_align(symbol_lp[None], np.zeros((1, len(features))), np.asarray(rows), np.asarray(row_pad))
    np.testing.assert_array_equal(positions, np.asarray(full.positions[0]) // k)


def test_the_python_api_refuses_what_it_would_answer_wrongly(run_dir, data_file, tmp_path):
    run = jaxalign.load_run(run_dir, step="6")  # a step given as text, e.g. from a command line
    assert run.step == 6
    _, feats, labels, _, _ = data_file
    RunError = jaxalign.errors.RunError
    with pytest.raises(RunError, match="needs the labels"):
        run.align(feats[:1], None)
    with pytest.raises(RunError, match="sequence 0 has dtype float64; symbol ids must be integers"):
        run.align(feats[:1], [labels[0].astype(np.float64) + 0.5])
    with pytest.raises(RunError, match="step='six' is not a checkpoint step"):
        jaxalign.load_run(run_dir, step="six")
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / ".hydra" / "config.yaml").write_text("- not\n- a mapping\n")
    with pytest.raises(jaxalign.config.ConfigError, match="is not a readable config"):
        jaxalign.load_run(broken)


@pytest.mark.slow
def test_load_run_gives_log_probs_decodes_and_alignments(run_dir, data_file):
    run = jaxalign.load_run(run_dir)
    _, feats, labels, _, vocab = data_file
    assert run.step == 12 and run.vocab == vocab and run.feature_dim == 6
    log_probs = run.log_probs(feats)
    assert [lp.shape for lp in log_probs] == [(len(x), run.setup.num_outputs) for x in feats]
    for lp in log_probs:
        np.testing.assert_allclose(np.exp(lp).sum(axis=1), 1.0, rtol=1e-5)
    decoded = run.decode(feats)
    assert len(decoded) == len(feats) and all(0 <= s < run.num_classes for hyp in decoded for s in hyp)
    positions = run.align(feats, labels)
    for i, p in enumerate(positions):
        assert p.shape == (len(feats[i]),) and p.dtype == np.int32
        assert (p == -1).all() if i in SKIPPED else (p[0] == 0 and p[-1] == len(labels[i]) - 1)
    earlier = jaxalign.load_run(run_dir, step=6)
    assert earlier.step == 6 and not np.allclose(earlier.log_probs(feats[:1])[0], log_probs[0])
    with pytest.raises(jaxalign.errors.RunError, match="sequence 1 has 7 features per frame"):
        run.log_probs([feats[0], np.zeros((4, 7))])


def test_plot_run_alignment_rebuilds_the_training_figures(run_dir, tmp_path):
    paths = plot_run_alignment(run_dir, tmp_path)
    assert [p.name for p in paths] == [f"alignment_test_{i}.png" for i in range(3)]
    for path in paths:  # same checkpoint, same batches: the very figures training wrote
        assert path.read_bytes() == (run_dir / "figures" / path.name).read_bytes()
        assert matplotlib.image.imread(path).shape[1] == round(COLUMN_WIDTH_IN * DPI)
    assert [p.name for p in plot_run_alignment(run_dir, tmp_path / "fig.png", step=6)] == [
        f"fig_{i}.png" for i in range(3)
    ]


@pytest.mark.slow
def test_train_help_lists_groups_keys_and_examples():
    proc = run_module("jaxalign.train", "--help")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "jaxalign-train: train a recurrent net" in text and "Examples:" in text
    for group in ("setup: ", "model: ", "data: ", "optim: ", "experiment: "):
        assert any(line.startswith(group) for line in text.splitlines()), group
    assert "order_sync" in text and "digit_strips" in text and "bigru" in text
    keys = ["setup", "model", "data", "optim", "align.schedule", "align.init", "align.warmup_steps", "align.states_per_symbol",
            "align.method", "trainer.steps", "trainer.batch_size", "trainer.resume", "optim.learning_rate", "seed"]  # fmt: skip
    starts = {line.split()[0] for line in text.splitlines() if line.strip()}
    assert set(keys) <= starts, set(keys) - starts


@pytest.mark.slow
def test_boundary_report_breaks_the_run_s_own_boundary_error_down_by_phone(run_dir, tmp_path):
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "boundary_report.py"), run_dir, "--out", out],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    metrics = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    test = [m for m in metrics if m["split"] == "test"][-1]
    assert report["scores"]["alignment_accuracy"] == pytest.approx(test["alignment_accuracy"])
    if report["boundaries"]:
        assert report["mean_abs"] == pytest.approx(test["boundary_error"])
        assert sum(r["share_of_error"] for r in report["by_symbol"]) <= 1 + 1e-6
        assert 0 <= report["offset_removed"] <= report["mean_abs"] + 1e-6
    assert "| entered phone |" in done.stdout
