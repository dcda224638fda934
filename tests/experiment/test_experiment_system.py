"""Resume, determinism, sweeps with fault isolation, and clear failures."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxalign import load_run
from jaxalign.data import load_synthetic, write_arrays
from jaxalign.data.load import load_splits
from jaxalign.data.synthetic import SyntheticSpec
from jaxalign.decoding import edit_distance
from jaxalign.training import TrainingDiverged, train
from jaxalign.training.checkpoints import CheckpointError
from tests.helpers import compose_config, replace, tiny_config


def deterministic_lines(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock ("timing") lines."""
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [ln for ln in lines if ln["split"] != "timing"]


@pytest.mark.slow
def test_same_config_and_seed_give_identical_metrics(tmp_path):
    config = tiny_config(align={"schedule": "per_epoch"})
    train(config, tmp_path / "a")
    train(config, tmp_path / "b")
    assert deterministic_lines(tmp_path / "a") == deterministic_lines(tmp_path / "b")
    env = json.loads((tmp_path / "a" / "environment.json").read_text())
    assert {"jax", "jaxlib", "flax", "optax", "device_kind"} <= set(env)
    train(tiny_config(align={"schedule": "per_epoch"}, seed=1), tmp_path / "c")
    assert deterministic_lines(tmp_path / "c") != deterministic_lines(tmp_path / "a")


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["per_step", "per_epoch"])
def test_resume_from_intermediate_checkpoint_is_exact(tmp_path, schedule):
    config = tiny_config(
        align={"schedule": schedule, "warmup_steps": 2}, trainer={"eval_every": 4, "checkpoint_every": 6}
    )
    final = train(config, tmp_path / "full")
    shutil.copytree(tmp_path / "full", tmp_path / "cut")
    shutil.rmtree(tmp_path / "cut" / "checkpoints" / "12")  # as if killed after the step-6 checkpoint
    resumed = train(replace(config, trainer={"resume": True}), tmp_path / "cut")
    assert resumed == final
    assert deterministic_lines(tmp_path / "cut") == deterministic_lines(tmp_path / "full")
    starts = [json.loads(ln) for ln in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines() if '"start"' in ln]
    assert starts[-1]["resumed_from"] == 6


@pytest.mark.slow
def test_resume_without_checkpoint_starts_at_step_0_and_says_so(tmp_path, capsys):
    """So a sweep restarted with trainer.resume=true runs the jobs that never started, too."""
    train(tiny_config(trainer={"resume": True, "steps": 6}), tmp_path)
    assert "trainer.resume=true, but there is no checkpoint" in capsys.readouterr().err
    starts = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"start"' in ln]
    assert [s["resumed_from"] for s in starts] == [0]


@pytest.mark.slow
@pytest.mark.parametrize("broken", ["state", "state/ocdbt.process_0"])  # all of it; the array data alone
def test_unreadable_checkpoint_is_explained(tmp_path, broken):
    config = tiny_config(trainer={"steps": 6, "checkpoint_every": 6})
    train(config, tmp_path)
    for f in (tmp_path / "checkpoints" / "6" / broken).rglob("*"):
        if f.is_file():
            f.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot restore checkpoint step 6") as failure:
        train(replace(config, trainer={"resume": True}), tmp_path)
    assert "\n" not in str(failure.value)  # one line, not orbax's dump


@pytest.mark.slow
def test_non_finite_loss_stops_with_last_finite_metrics_saved(tmp_path):
    config = tiny_config(
        optim={"name": "sgd", "learning_rate": 1e38, "clip_norm": 0.0}, trainer={"steps": 40, "eval_every": 40}
    )
    with pytest.raises(TrainingDiverged, match="at step"):
        train(config, tmp_path)
    lines = deterministic_lines(tmp_path)
    assert lines[-1]["split"] == "failed"
    assert all(np.isfinite(ln["loss"]) for ln in lines if ln["split"] == "train")


# --- the command line ----------------------------------------------------------------------------------

BASE = ["+debug=tiny", "trainer.steps=8", "trainer.eval_every=4", "trainer.checkpoint_every=4", "trainer.batch_size=8"]
TINY = [*BASE, "data=synthetic", "data.num_train=64", "data.num_valid=16", "data.num_test=16"]


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    env = dict(os.environ, JAXALIGN_CACHE_DIR=str(tmp_path_factory.mktemp("cache")), JAX_PLATFORMS="cpu")
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def cli(args, env, **kw):
    return subprocess.run(
        [sys.executable, "-m", "jaxalign.train", *args], env=env, capture_output=True, text=True, timeout=600, **kw
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["trainer.stepz=3"], "stepz"),
        (["trainer.steps=many"], "steps"),
        (["align.schedule=sometimes"], "align.schedule"),
        (["data=arrays", "data.path=/no/such/file.npz"], "data.path: no such file"),
        (["data=timit", "data.root=/no/such/corpus"], "data.root"),
    ],
)
def test_cli_failures_are_one_clear_message(args, message, cli_env, tmp_path):
    result = cli([*(BASE if args[0].startswith("data=") else TINY), *args, f"hydra.run.dir={tmp_path}"], cli_env)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_rejects_a_malformed_data_file(cli_env, tmp_path):
    data = load_synthetic(SyntheticSpec(num_train=8, num_valid=0, num_test=0)).train
    features = [f.copy() for f in data.features]
    features[3][1, 0] = np.nan
    path = write_arrays(tmp_path / "bad.npz", features, data.labels)
    result = cli([*BASE, "data=arrays", f"data.path={path}", f"hydra.run.dir={tmp_path / 'run'}"], cli_env)
    assert result.returncode != 0 and "features: example 3 has a NaN" in result.stderr
    assert "Traceback" not in result.stderr
    assert "features: example 3" in (tmp_path / "run" / "FAILED").read_text()


@pytest.mark.slow
def test_multirun_isolates_a_failing_job_and_skips_finished_ones_on_rerun(cli_env, tmp_path):
    sweep = [*TINY, "align.states_per_symbol=1,0", f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=${hydra.job.num}"]
    result = cli(["-m", *sweep], cli_env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "0" / "DONE").exists() and not (tmp_path / "0" / "FAILED").exists()
    assert "align.states_per_symbol=0" in (tmp_path / "1" / "FAILED").read_text()
    done_time = (tmp_path / "0" / "DONE").stat().st_mtime
    again = cli(["-m", *sweep], cli_env)
    assert again.returncode == 0 and "already DONE; skipping" in again.stderr
    assert (tmp_path / "0" / "DONE").stat().st_mtime == done_time


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_matches_uninterrupted_run(cli_env, tmp_path):
    args = [
        *TINY,
        "trainer.steps=40",
        "trainer.eval_every=10",
        "trainer.checkpoint_every=10",
        "align.schedule=per_epoch",
    ]
    assert cli([*args, f"hydra.run.dir={tmp_path / 'full'}"], cli_env).returncode == 0
    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxalign.train", *args, f"hydra.run.dir={cut}"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (cut / "checkpoints" / "20").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "DONE").exists(), "the run finished before it could be killed"
    assert cli([*args, f"hydra.run.dir={cut}", "trainer.resume=true"], cli_env).returncode == 0
    assert deterministic_lines(cut) == deterministic_lines(tmp_path / "full")
    assert json.loads((cut / "DONE").read_text()) == json.loads((tmp_path / "full" / "DONE").read_text())


# --- found by running it as a new user -------------------------------------------------------------


@pytest.mark.slow
def test_a_small_data_file_trains(tmp_path):
    """40 sequences, 6 features, 5 classes, the default batch of 32: fewer buckets and a partial
    last batch padded with weight-0 rows, instead of 'no full batch'."""
    rng = np.random.default_rng(0)
    labels = [rng.integers(0, 5, size=int(rng.integers(1, 4))) for _ in range(40)]
    features = [rng.normal(size=(4 * len(y) + int(rng.integers(0, 30)), 6)).astype(np.float32) for y in labels]
    path = write_arrays(tmp_path / "small.npz", features, labels)
    config = compose_config(
        {
            "data": "arrays",
            "data.path": str(path),
            "model": "gru",
            "model.hidden": 8,
            "trainer.steps": 6,
            "trainer.eval_every": 6,
            "trainer.checkpoint_every": 6,
            "trainer.progress": False,
        }
    )
    assert config.trainer.batch_size == 32
    final = train(config, tmp_path / "run")
    # The rate is over the 4 test sequences, not the 28 weight-0 rows padding their batch: decode
    # them from the saved run and count the edits.
    test = load_splits(config.data).test
    assert len(test) == 4
    hyps = [out["hypothesis"] for out in load_run(tmp_path / "run").outputs(test.features)]
    errors = sum(edit_distance(h, r) for h, r in zip(hyps, test.labels))
    assert final["label_error_rate"] == pytest.approx(errors / sum(len(r) for r in test.labels))
    recorded = [ln for ln in deterministic_lines(tmp_path / "run") if ln["split"] == "test"]
    assert [ln["label_error_rate"] for ln in recorded] == [final["label_error_rate"]]
    train_lines = [ln for ln in deterministic_lines(tmp_path / "run") if ln["split"] == "train"]
    assert train_lines and all(np.isfinite(ln["loss"]) for ln in train_lines)


@pytest.mark.slow
def test_a_run_shorter_than_its_warmup_says_it_never_realigns(tmp_path, capsys):
    train(tiny_config(align={"warmup_steps": 20}), tmp_path)
    assert "never realigns" in capsys.readouterr().err
    warnings = [ln for ln in deterministic_lines(tmp_path) if ln["split"] == "warning"]
    assert warnings and "align.warmup_steps=20 >= trainer.steps=12" in warnings[0]["message"]


@pytest.mark.slow
def test_a_misspelt_key_names_the_closest_known_keys(cli_env, tmp_path):
    result = cli([*TINY, "trainer.step=10", f"hydra.run.dir={tmp_path}"], cli_env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "jaxalign-train: unknown key 'trainer.step'; did you mean trainer.steps or trainer.resume or trainer.batch_size?"
    ]


def test_the_readme_python_examples_run(tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```python\n")[1:]]
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


@pytest.mark.slow
def test_a_non_editable_install_finds_its_configs(tmp_path):
    """pip install . (no -e): the wheel carries conf/ as jaxalign.conf, found from any directory."""
    repo = Path(__file__).resolve().parents[2]
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "wheel"), str(repo)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "wheel").glob("jaxalign-*.whl"))
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    (tmp_path / "elsewhere").mkdir()
    probe = (
        "import jaxalign.train, jaxalign.training; from hydra import compose, initialize_config_module\n"
        "with initialize_config_module('jaxalign.conf', version_base=None):\n"
        "    cfg = compose(config_name='config', overrides=['+experiment=order_sync_ctc'])\n"
        "print(jaxalign.train.__file__, cfg.align.schedule)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path / "elsewhere",
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=str(tmp_path / "site")),
    )
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "site") in result.stdout and result.stdout.strip().endswith("ctc")


PARALLEL_PROBE = """
import json, sys
from jaxalign.training import train
from tests.helpers import tiny_config
final = train(tiny_config(align={"schedule": sys.argv[2]}, trainer={"batch_size": 8}), sys.argv[1])
print(json.dumps(final))
"""


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["per_step", "per_epoch"])
def test_data_parallel_over_four_devices_matches_one_device(tmp_path, schedule):
    """The batch split over 4 fake CPU devices gives the metrics of 1 device (float tolerance)."""
    finals = {}
    for devices in (1, 4):
        env = dict(
            os.environ,
            JAX_PLATFORMS="cpu",
            XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
            JAXALIGN_CACHE_DIR=str(tmp_path / "cache"),
        )
        run = subprocess.run(
            [sys.executable, "-c", PARALLEL_PROBE, str(tmp_path / str(devices)), schedule],
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr
        finals[devices] = json.loads(run.stdout.strip().splitlines()[-1])
    assert finals[1].keys() == finals[4].keys()
    for key in finals[1]:
        assert finals[4][key] == pytest.approx(finals[1][key], abs=1e-6), key
    losses = {
        d: [ln["loss"] for ln in deterministic_lines(tmp_path / str(d)) if ln["split"] == "train"] for d in (1, 4)
    }
    np.testing.assert_allclose(losses[4], losses[1], rtol=1e-4)
    env4 = json.loads((tmp_path / "4" / "environment.json").read_text())
    assert env4["mesh"] == {"data": 4} and "mesh" not in json.loads((tmp_path / "1" / "environment.json").read_text())


@pytest.mark.slow
def test_the_pallas_kernels_refuse_a_batch_split_over_devices(tmp_path):
    probe = "import sys\nfrom jaxalign.training import train\nfrom tests.helpers import tiny_config\ntrain(tiny_config(align={'kernel': 'pallas'}), sys.argv[1])"
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    run = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode != 0 and "align.kernel=pallas runs on one device, but the batch is split over 2" in run.stderr
