"""experiments/figures.py and jaxalign.experiment.results: tables and figures rebuilt from run
directories alone, byte-identically; seed aggregation checked on hand-made metrics lines."""

import csv
import importlib.util
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from jaxalign.experiment import results

REPO = Path(__file__).resolve().parents[2]
FIGURES = REPO / "experiments" / "figures.py"

# A tiny real sweep: 2 schedules x 2 seeds, three kept checkpoints each (steps 2, 4, 6).
SWEEP = ["+debug=tiny", "data=synthetic", "data.num_train=32", "data.num_valid=8", "data.num_test=8", "trainer.steps=6",
         "trainer.eval_every=3", "trainer.checkpoint_every=2", "trainer.keep_checkpoints=3", "align.schedule=per_step,ctc", "seed=0,1"]  # fmt: skip


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """This checkout's jaxalign first on the path (figures.py runs from experiments/)."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = dict(
        os.environ, PYTHONPATH=path, JAX_PLATFORMS="cpu", JAXALIGN_CACHE_DIR=str(tmp_path_factory.mktemp("cache"))
    )
    env.pop("HYDRA_FULL_ERROR", None)
    env.pop(
        "XLA_FLAGS", None
    )  # one CPU device, as a user's run: conftest's fake devices are for the multi-device tests
    return env


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, env):
    folder = tmp_path_factory.mktemp("sweep") / "multirun"
    done = subprocess.run([sys.executable, "-m", "jaxalign.train", "-m", *SWEEP, f"hydra.sweep.dir={folder}"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list(folder.glob("*/DONE"))) == 4, done.stderr[-3000:]
    return folder


def figures(args, env):
    return subprocess.run(
        [sys.executable, str(FIGURES), *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def read_csv(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


@pytest.mark.slow
def test_figures_from_a_tiny_sweep_are_byte_identical_and_grouped_by_schedule(sweep, env, tmp_path):
    outputs = []
    for name in ("first", "second"):
        result = figures([sweep, "--out", tmp_path / name], env)
        assert result.returncode == 0, result.stderr
        outputs.append(tmp_path / name)
    first, second = outputs
    for name in ("results.md", "results.csv", "runs.csv", "curves.png", "churn.png"):
        assert (first / name).stat().st_size > 0, name
        assert (first / name).read_bytes() == (second / name).read_bytes(), (
            f"{name} differs between two runs of figures.py"
        )

    rows = read_csv(first / "results.csv")
    assert [row["align.schedule"] for row in rows] == ["per_step", "ctc"]  # sweep order, seed aggregated away
    assert all(row["n"] == "2" for row in rows)
    assert "seed" not in rows[0]
    for row in rows:
        for metric in ("label_error_rate", "alignment_accuracy", "boundary_error", "seconds"):
            assert row[f"{metric}_mean"] and row[f"{metric}_std"], (metric, row)

    # the CSV's mean and std are those of the runs' own test lines
    runs = {}
    for path in sweep.glob("*/metrics.jsonl"):
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        schedule = [
            o
            for o in (path.parent / ".hydra" / "overrides.yaml").read_text().split()
            if o.startswith("align.schedule=")
        ][0]
        runs.setdefault(schedule.split("=")[1], []).append(
            next(x for x in lines if x["split"] == "test")["label_error_rate"]
        )
    for row in rows:
        values = runs[row["align.schedule"]]
        assert float(row["label_error_rate_mean"]) == pytest.approx(statistics.fmean(values), abs=1e-6)
        assert float(row["label_error_rate_std"]) == pytest.approx(statistics.stdev(values), abs=1e-6)

    table = (first / "results.md").read_text()
    assert "| align.schedule | n |" in table
    body = [line for line in table.splitlines() if line.startswith("| per_step") or line.startswith("| ctc")]
    assert len(body) == 2 and all(" ± " in line and "| 2 |" in line for line in body), table
    assert "alignment_test" not in table and "Common to all runs:" in table and "`trainer.steps=6`" in table


@pytest.mark.slow
def test_keep_checkpoints_keeps_every_step_for_the_alignment_figures(sweep, env, tmp_path, monkeypatch):
    """trainer.keep_checkpoints=3 keeps steps 2, 4, 6; figures.py draws each for one run per schedule
    through jaxalign.aligner.run.plot_run_alignment (stubbed here)."""
    for run in sweep.glob("*/checkpoints"):
        assert sorted(int(p.name) for p in run.iterdir() if p.name.isdigit()) == [2, 4, 6]
    spec = importlib.util.spec_from_file_location("figures_script", FIGURES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    calls = []

    def fake_plot(run_dir, out_path, step=None):
        calls.append((Path(run_dir).name, step))
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        Path(out_path).write_bytes(b"png")

    import jaxalign.aligner.run

    monkeypatch.setattr(jaxalign.aligner.run, "plot_run_alignment", fake_plot)
    assert module.main([str(sweep), "--out", str(tmp_path)]) == 0
    seed0 = {p.parent.parent.name for p in sweep.glob("*/.hydra/overrides.yaml") if "seed=0" in p.read_text()}
    assert sorted(calls) == sorted((name, step) for name in seed0 for step in (2, 4, 6))
    assert sorted(p.name for p in (tmp_path / "alignment").iterdir()) == [
        f"schedule=ctc_step00000{s}.png" for s in (2, 4, 6)] + [f"schedule=per_step_step00000{s}.png" for s in (2, 4, 6)]  # fmt: skip


@pytest.mark.slow
def test_failed_and_unfinished_runs_are_named_and_left_out(sweep, env, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    (copy / "1" / "DONE").unlink()
    (copy / "1" / "FAILED").write_text("TrainingDiverged: loss became nan at step 4\n")
    (copy / "3" / "DONE").unlink()
    result = figures([copy, "--out", tmp_path / "out", "--no-alignment"], env)
    assert result.returncode == 0, result.stderr
    assert "run 1 FAILED (TrainingDiverged: loss became nan at step 4)" in result.stderr
    assert "run 3 is unfinished (no DONE)" in result.stderr
    assert [row["n"] for row in read_csv(tmp_path / "out" / "results.csv")] == ["1", "1"]
    table = (tmp_path / "out" / "results.md").read_text()
    assert "- `1`: FAILED" in table and "- `3`: unfinished" in table
    statuses = {row["run"]: row["status"] for row in read_csv(tmp_path / "out" / "runs.csv")}
    assert statuses == {"0": "done", "1": "failed", "2": "done", "3": "unfinished"}


@pytest.mark.slow
def test_a_folder_without_runs_is_a_clear_error(env, tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    result = figures([tmp_path / "empty", "--out", tmp_path / "out"], env)
    assert result.returncode != 0
    assert "no run directories" in result.stderr and str(tmp_path / "empty") in result.stderr
    assert not (tmp_path / "out").exists()


# -- aggregation on hand-made run directories ------------------------------------------------------


def make_run(folder: Path, overrides: list[str], test: dict, seconds: float, status="DONE", valid=()):
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    lines = [{"step": 0, "split": "timing", "event": "start"}, *valid, {"step": 10, "split": "test", **test},
             {"step": 10, "split": "timing", "event": "end", "seconds": seconds}]  # fmt: skip
    (folder / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    if status:
        (folder / status).write_text("{}\n")


@pytest.mark.parametrize(
    "values, mean, std, n",
    [
        ([0.1, 0.2, 0.3], 0.2, 0.1, 3),  # sample std (ddof=1)
        ([2.0, 4.0], 3.0, 2**0.5, 2),
        ([0.5], 0.5, None, 1),  # one value: no spread
        ([1.0, None, float("nan"), 3.0], 2.0, 2**0.5, 2),  # missing values are skipped
    ],
)
def test_aggregate(values, mean, std, n):
    stats = results.aggregate(values)
    assert stats.mean == pytest.approx(mean) and stats.n == n
    assert stats.std == (None if std is None else pytest.approx(std))


def test_aggregate_of_nothing_is_none():
    assert results.aggregate([None, float("nan")]) is None


def test_summarize_groups_by_the_swept_overrides_and_aggregates_seeds(tmp_path):
    runs = [
        (["+experiment=x", "align.schedule=per_step", "seed=0"], {"label_error_rate": 0.10, "alignment_accuracy": 0.90}, 10.0),
        (["+experiment=x", "align.schedule=per_step", "seed=1"], {"label_error_rate": 0.20, "alignment_accuracy": 0.80}, 20.0),
        (["+experiment=x", "align.schedule=per_step", "seed=2"], {"label_error_rate": 0.30, "alignment_accuracy": 0.70}, 30.0),
        (["+experiment=x", "align.schedule=ctc", "seed=0"], {"label_error_rate": 0.50}, 5.0),
        (["+experiment=x", "align.schedule=ctc", "seed=1"], {"label_error_rate": 0.70}, 7.0),
    ]  # fmt: skip
    for i, (overrides, test, seconds) in enumerate(runs):
        make_run(tmp_path / str(i), overrides, test, seconds)
    make_run(
        tmp_path / "10",
        ["+experiment=x", "align.schedule=ctc", "seed=2"],
        {"label_error_rate": 0.9},
        9.0,
        status="FAILED",
    )
    found = results.find_runs([tmp_path])
    assert [r.name for r in found] == ["0", "1", "2", "3", "4", "10"]  # natural order
    keys = results.swept_keys(found)
    assert keys == ["align.schedule"]
    rows = results.summarize(found, keys)
    assert [(r["align.schedule"], r["n"]) for r in rows] == [("per_step", 3), ("ctc", 2)]  # the failed run is left out
    per_step, ctc = rows
    assert per_step["label_error_rate"] == results.Stats(pytest.approx(0.2), pytest.approx(0.1), 3)
    assert per_step["seconds"].mean == pytest.approx(20.0) and per_step["seconds"].std == pytest.approx(10.0)
    assert ctc["label_error_rate"].mean == pytest.approx(0.6) and ctc["alignment_accuracy"] is None
    assert results.to_csv(rows, keys).splitlines() == [
        "align.schedule,n,label_error_rate_mean,label_error_rate_std,alignment_accuracy_mean,alignment_accuracy_std,seconds_mean,seconds_std",
        "per_step,3,0.200000,0.100000,0.800000,0.100000,20.000000,10.000000",
        "ctc,2,0.600000,0.141421,,,6.000000,1.414214",
    ]
    table = results.to_markdown(rows, keys, found)
    assert "| per_step | 3 | 20.00 ± 10.00 | 80.00 ± 10.00 | 20.0 ± 10.0 |" in table
    assert "| ctc | 2 | 60.00 ± 14.14 | – | 6.0 ± 1.4 |" in table
    assert "Common to all runs: `+experiment=x`." in table and "- `10`: FAILED" in table


def test_curve_is_the_mean_over_runs_with_min_max_spread(tmp_path):
    for seed, values in enumerate([(0.5, 0.7), (0.3, 0.9)]):
        valid = [{"step": step, "split": "valid", "alignment_accuracy": v} for step, v in zip((5, 10), values)]
        make_run(tmp_path / str(seed), [f"seed={seed}"], {}, 1.0, valid=valid)
    steps, mean, low, high = results.curve(results.find_runs([tmp_path]), "valid", "alignment_accuracy")
    assert steps == [5, 10]
    assert mean == pytest.approx([0.4, 0.8]) and low == pytest.approx([0.3, 0.7]) and high == pytest.approx([0.5, 0.9])
    assert results.curve(results.find_runs([tmp_path]), "realign", "alignment_churn") is None


def test_group_choices_and_missing_keys_count_as_swept_settings(tmp_path):
    make_run(tmp_path / "0", ["model=gru2", "seed=0"], {"frame_accuracy": 0.7}, 1.0)
    make_run(tmp_path / "1", ["model=bigru2", "seed=0", "+schedule=ctc"], {"frame_accuracy": 0.9}, 1.0)
    found = results.find_runs([tmp_path])
    keys = results.swept_keys(found)
    assert keys == ["model", "schedule"]
    assert [results.group_label(keys, v) for v, _ in results.group_runs(found, keys)] == [
        "model=gru2, schedule=-",
        "model=bigru2, schedule=ctc",
    ]
