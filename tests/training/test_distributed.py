"""Multi-process data parallelism on one machine: 2 processes x 2 CPU devices (gloo collectives over
127.0.0.1) train what 1 process x 4 devices trains, only the first process writes the run record,
and the pair resumes from its own checkpoint."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxalign.errors import ConfigError
from jaxalign.runtime import cache_dir
from jaxalign.train import check_override_keys, known_keys
from tests.helpers import compose_config

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 240  # per run; a pair whose partner died would otherwise wait for JAX's 5-minute timeouts
# The TINY config of tests/helpers.py on the command line, with a realignment from step 2 and every
# loss logged.
ARGS = [
    "+debug=tiny",
    "setup=order_sync",
    "model=gru",
    "model.hidden=16",
    "data=synthetic",
    "data.num_train=64",
    "data.num_valid=16",
    "data.num_test=16",
    "data.num_classes=4",
    "data.feature_dim=6",
    "data.max_symbols=3",
    "data.min_duration=2",
    "data.max_duration=4",
    "data.noise=0.3",
    "trainer.batch_size=8",
    "trainer.num_buckets=1",
    "trainer.eval_every=4",
    "trainer.checkpoint_every=4",
    "trainer.log_every=1",
    "align.warmup_steps=2",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(run_dir: Path, cache: Path, devices: int, args: list[str]) -> subprocess.Popen:
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        JAXALIGN_CACHE_DIR=str(cache),
    )
    env.pop("HYDRA_FULL_ERROR", None)
    command = [sys.executable, "-m", "jaxalign.train", *ARGS, *args, f"hydra.run.dir={run_dir}"]
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_all(procs: list[subprocess.Popen]) -> None:
    """Waits for every process (killing all of them past TIMEOUT_S) and asserts each succeeded."""
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=TIMEOUT_S)[0])
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        raise
    finally:
        for proc in procs:
            proc.wait()
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-4000:]


def pair(run_dir: Path, cache: Path, args: list[str]) -> list[subprocess.Popen]:
    """Two processes of two CPU devices each, sharing one run dir as on a cluster."""
    coordinator = f"127.0.0.1:{free_port()}"
    shared = [f"trainer.distributed.coordinator={coordinator}", "trainer.distributed.num_processes=2", *args]
    return [launch(run_dir, cache, 2, [*shared, f"trainer.distributed.process_id={rank}"]) for rank in (0, 1)]


def records(run_dir: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


def losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in records(run_dir) if r["split"] == "train"]


def test_distributed_keys_are_known_to_the_command_line(capsys):
    assert {f"trainer.distributed.{k}" for k in ("coordinator", "num_processes", "process_id")} <= known_keys()
    check_override_keys(["trainer.distributed.coordinator=127.0.0.1:1234", "trainer.distributed.process_id=1"])
    with pytest.raises(SystemExit):
        check_override_keys(["trainer.distributed.coordinater=127.0.0.1:1234"])
    assert "did you mean trainer.distributed.coordinator" in capsys.readouterr().err


@pytest.mark.parametrize(
    "values, message",
    [
        ({"num_processes": 0}, "trainer.distributed.num_processes=0 must be >= 1"),
        ({"coordinator": "h:1", "num_processes": 2, "process_id": 2}, "trainer.distributed.process_id=2"),
        ({"process_id": -1}, "trainer.distributed.process_id=-1"),
        ({"num_processes": 2}, "trainer.distributed.coordinator"),
    ],
)
def test_distributed_config_errors_name_the_key(values, message):
    overrides = {f"trainer.distributed.{k}": v for k, v in values.items()}
    with pytest.raises(ConfigError, match=re.escape(message)):
        compose_config(overrides)


def test_the_cache_root_is_jaxalign_cache_dir_or_home(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXALIGN_CACHE_DIR", str(tmp_path))
    assert (
        cache_dir("xla") == tmp_path / "xla"
        and cache_dir("spoken_words", "a.npz") == tmp_path / "spoken_words" / "a.npz"
    )
    monkeypatch.delenv("JAXALIGN_CACHE_DIR")
    assert cache_dir() == Path.home() / ".cache" / "jaxalign"


def test_an_unknown_nested_key_is_named():
    with pytest.raises(ConfigError, match=r"unknown key trainer\.distributed\.bogus"):
        compose_config({"+trainer.distributed.bogus": 1})


@pytest.mark.slow
def test_two_processes_train_like_one_with_all_devices_and_resume(tmp_path):
    cache = tmp_path / "cache"
    two, one = tmp_path / "two", tmp_path / "one"
    # The pair and one process of 4 devices train 8 steps side by side (to save time); then the pair
    # is set back to its step-4 checkpoint, as if killed after it, and resumes from there.
    wait_all([*pair(two, cache, ["trainer.steps=8"]), launch(one, cache, 4, ["trainer.steps=8"])])
    shutil.rmtree(two / "checkpoints" / "8")
    (two / "DONE").unlink()
    wait_all(pair(two, cache, ["trainer.steps=8", "trainer.resume=true"]))  # from the pair's own checkpoint

    # (a) the same losses, step by step, and the resumed run went on from step 4
    steps = [r["step"] for r in records(two) if r["split"] == "train"]
    assert steps == list(range(8))
    np.testing.assert_allclose(losses(two), losses(one), rtol=1e-4)
    assert [r["resumed_from"] for r in records(two) if r.get("event") == "start"] == [0, 4]
    # (b) what the run ran on
    env_two = json.loads((two / "environment.json").read_text())
    env_one = json.loads((one / "environment.json").read_text())
    assert (env_two["process_count"], env_two["device_count"], env_two["mesh"]) == (2, 4, {"data": 4})
    assert (env_one["process_count"], env_one["device_count"], env_one["mesh"]) == (1, 4, {"data": 4})
    # (c) the run record was written once, by process 0: no line twice, one TensorBoard file per
    # run, Hydra's files from process 0 alone, and nothing but what a one-process run leaves
    keys = [(r["step"], r["split"], r.get("event")) for r in records(two) if r["split"] != "realign"]
    assert len(keys) == len(set(keys))
    assert len(list((two / "tensorboard").iterdir())) == 2  # the first 8 steps, and the resumed run
    overrides = (two / ".hydra" / "overrides.yaml").read_text()
    assert "trainer.distributed.process_id=0" in overrides and "process_id=1" not in overrides
    top = {p.name for p in two.iterdir()}
    assert (
        top
        == {p.name for p in one.iterdir()}
        == {
            ".hydra",
            ".lock",
            "DONE",
            "checkpoints",
            "environment.json",
            "figures",
            "metrics.jsonl",
            "tensorboard",
        }
    )
    assert sorted(p.name for p in (two / "figures").iterdir()) == [f"alignment_test_{i}.png" for i in range(3)]
    # (d) every process saved its part of the checkpoints; the latest is the resumed run's last step
    assert sorted(int(p.name) for p in (two / "checkpoints").iterdir() if p.name.isdigit()) == [4, 8]
    done = json.loads((two / "DONE").read_text())
    assert done == pytest.approx(json.loads((one / "DONE").read_text()), abs=1e-6)
    assert (cache / "xla").is_dir()  # the compilation cache lives under the cache root
