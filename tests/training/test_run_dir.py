"""What a run directory promises: a finished run's record is never rewritten, a resume continues the
run as recorded or is refused untouched, one process at a time, and no stale FAILED beside DONE."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxalign.config import ConfigError
from jaxalign.training import train
from jaxalign.training.run_dir import ResumeRefused, RunDirBusy, hold
from tests.helpers import compose_config, replace, tiny_config

CLI = ["+debug=tiny", "data=synthetic", "data.num_train=64", "data.num_valid=16", "data.num_test=16"]
CLI += ["trainer.steps=8", "trainer.eval_every=4", "trainer.checkpoint_every=4", "trainer.batch_size=8"]


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    env = dict(os.environ, JAXALIGN_CACHE_DIR=str(tmp_path_factory.mktemp("cache")), JAX_PLATFORMS="cpu")
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def cli(args, env):
    command = [sys.executable, "-m", "jaxalign.train", *CLI, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def snapshot(run_dir: Path, leave_out=()) -> dict[str, str]:
    """{relative path: sha256} of every file under `run_dir`."""
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.name not in leave_out
    }


@pytest.mark.slow
def test_a_finished_run_dir_is_never_rewritten(cli_env, tmp_path):
    run = tmp_path / "run"
    assert cli([f"hydra.run.dir={run}"], cli_env).returncode == 0
    before = snapshot(run)
    assert {".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml", "DONE"} <= set(before)
    for change in (["model.hidden=32"], ["trainer.resume=true", "optim.learning_rate=0.1"], ["seed=3"]):
        again = cli([*change, f"hydra.run.dir={run}"], cli_env)
        assert again.returncode == 0 and "already DONE; skipping" in again.stderr
    assert snapshot(run) == before  # config, overrides, metrics, checkpoints, figures: byte for byte


@pytest.mark.slow
def test_a_resume_continues_as_recorded_or_is_refused_untouched(tmp_path):
    config = tiny_config()  # 12 steps, checkpoints at 6 and 12
    train(config, tmp_path)
    shutil.rmtree(tmp_path / "checkpoints" / "12")  # as if killed after the step-6 checkpoint
    before = snapshot(tmp_path, leave_out=(".lock",))  # the lock file names its last holder
    refusals = {
        "optim.learning_rate=0.1 (the run used 0.003)": replace(
            config, trainer={"resume": True}, optim={"learning_rate": 0.1}
        ),
        "model.hidden=32 (the run used 16)": replace(config, trainer={"resume": True}, model={"hidden": 32}),
        "trainer.steps=20 (the run used 12)": replace(config, trainer={"resume": True, "steps": 20}),
        "holds a checkpoint at step 6 of an unfinished run: pass trainer.resume=true": config,
    }
    for message, changed in refusals.items():
        with pytest.raises(ResumeRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
            train(changed, tmp_path)
    assert snapshot(tmp_path, leave_out=(".lock",)) == before
    # A change to the bookkeeping is allowed, applied, and recorded in the start line.
    train(replace(config, trainer={"resume": True, "log_every": 1}), tmp_path)
    starts = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"start"' in ln]
    assert starts[-1]["resumed_from"] == 6 and starts[-1]["changed"] == {"trainer.log_every": 1}
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"train"' in ln]
    assert steps[-6:] == list(range(6, 12))  # every step logged after the resume


@pytest.mark.slow
def test_a_second_process_is_refused_in_one_line_and_touches_nothing(cli_env, tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "jaxalign.train", *CLI, "trainer.steps=60", f"hydra.run.dir={run}"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 240
        while not (run / "metrics.jsonl").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.1)
        assert first.poll() is None, "the first run ended before the second could start"
        second = cli(["trainer.steps=60", f"hydra.run.dir={run}"], cli_env)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{run} is in use by" in lines[0] and f'"pid": {first.pid}' in lines[0], lines
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert (run / "DONE").exists() and not (run / "FAILED").exists()
    records = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["split"] == "train"]
    assert train_steps == sorted(set(train_steps))  # one run's lines, once each
    assert sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit()) == [56, 60]


@pytest.mark.slow
def test_the_lock_is_reentrant_within_a_process_and_names_its_holder(tmp_path):
    probe = "import sys, time\nfrom jaxalign.training.run_dir import hold\nwith hold(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(30)\n"
    holder = subprocess.Popen([sys.executable, "-c", probe, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirBusy, match=f'is in use by .*"pid": {holder.pid}'):
            with hold(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with hold(tmp_path), hold(tmp_path):  # free again, and re-entrant
        pass


@pytest.mark.slow
def test_a_successful_resume_leaves_no_stale_failed(cli_env, tmp_path):
    run = tmp_path / "run"
    assert cli(["trainer.steps=4", f"hydra.run.dir={run}"], cli_env).returncode == 0
    (run / "DONE").unlink()
    (run / "FAILED").write_text("RuntimeError: an earlier attempt\n")
    assert cli(["trainer.steps=4", "trainer.resume=true", f"hydra.run.dir={run}"], cli_env).returncode == 0
    assert (run / "DONE").exists() and not (run / "FAILED").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"optim.learning_rate": "nan"}, "optim.learning_rate=nan must be a finite number > 0"),
        ({"optim.learning_rate": "inf"}, "optim.learning_rate=inf must be a finite number > 0"),
        ({"model.dropout": "nan"}, "model.dropout=nan"),
        ({"data": "arrays"}, "data.path is required"),
        ({"data": "timit"}, "data.root is required"),
        ({"data.num_train": 0}, "data.num_train=0 must be >= 1"),
        ({"data.num_train": 0, "align.states_per_symbol": 1}, "data.num_train=0 must be >= 1"),
    ],
)
def test_values_that_cannot_train_are_named_before_any_training(overrides, message):
    with pytest.raises(ConfigError, match=message):
        compose_config(overrides)
