"""What a run directory promises: one run at a time, a record that says what was used, and a
finished run that no later command rewrites.

- `hold(run_dir)`: an exclusive lock (`fcntl.flock` on `RUN_DIR/.lock`, which names its holder), so
  a second process is refused in one line and touches nothing. With several processes of one run,
  only the first takes it.
- `check_resume(config, run_dir, latest_step)`: `trainer.resume=false` refuses a run dir that holds a
  checkpoint; `trainer.resume=true` continues from the latest one (or starts at step 0 where there is
  none), and only if the config equals the one recorded, up to the keys in `RESUMABLE`.
"""

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from omegaconf import OmegaConf

from jaxalign.config import load_config
from jaxalign.errors import ResumeRefused, RunDirBusy

# Keys a resume may change: they steer the bookkeeping (logging, evaluation, checkpoints, the
# processes), not what is trained. Any other change would make the run's record say something that
# was not used (e.g. optim.learning_rate: the optimizer state holds the rate the run started with).
RESUMABLE = (
    "trainer.resume",
    "trainer.progress",
    "trainer.log_every",
    "trainer.eval_every",
    "trainer.checkpoint_every",
    "trainer.keep_checkpoints",
    "trainer.beam_width",
    "trainer.distributed.",
)
LOCK_NAME = ".lock"


_held: dict[Path, int] = {}  # run dirs this process holds, with how many `hold`s are open on each


def holder(run_dir) -> str | None:
    """Who holds `run_dir`'s lock right now (e.g. a run still training), or None: free, or no lock file."""
    path = Path(run_dir) / LOCK_NAME
    if not path.is_file() or Path(run_dir).absolute() in _held:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
    finally:
        os.close(fd)  # releases a lock taken here


@contextlib.contextmanager
def hold(run_dir, *, busy=RunDirBusy, rule: str = "a run dir takes one run at a time"):
    """Holds `run_dir`'s lock for the block (re-entrant within a process); raises `busy` naming
    the holder and the `rule` when another process has it. Creates the folder if needed (the lock
    of any folder one process at a time writes: a run dir, an alignment output folder)."""
    run_dir = Path(run_dir).absolute()
    if run_dir in _held:
        _held[run_dir] += 1
        try:
            yield
        finally:
            _held[run_dir] -= 1
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            raise busy(f"{run_dir} is in use by {owner}; {rule}") from None
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode() + b"\n", 0)
        _held[run_dir] = 1
        try:
            yield
        finally:
            del _held[run_dir]
    finally:
        os.close(fd)  # releases the lock


def _flat(config) -> dict:
    return _flatten(OmegaConf.to_container(OmegaConf.structured(config)))


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_changes(recorded, config) -> dict[str, tuple]:
    """{key: (recorded value, new value)} for every key on which two `Config`s differ."""
    old, new = _flat(recorded), _flat(config)
    return {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}


def check_resume(config, run_dir, latest_step: int | None) -> dict[str, tuple]:
    """Raises ResumeRefused where the run cannot start or go on in `run_dir` as configured (a
    ConfigError: the recorded config cannot be read); returns the changes of `RESUMABLE` keys a
    resume brings (empty otherwise)."""
    run_dir = Path(run_dir)
    if latest_step is None:
        return {}
    if not config.trainer.resume:
        raise ResumeRefused(
            f"{run_dir} holds a checkpoint at step {latest_step} of an unfinished run: pass trainer.resume=true "
            "to continue it, or choose another hydra.run.dir"
        )
    recorded = load_config(run_dir / ".hydra" / "config.yaml")
    changes = config_changes(recorded, config)
    refused = {k: v for k, v in changes.items() if not k.startswith(RESUMABLE)}
    if refused:
        listed = ", ".join(f"{k}={new!r} (the run used {old!r})" for k, (old, new) in refused.items())
        raise ResumeRefused(
            f"trainer.resume=true continues {run_dir} as recorded, but {listed}; drop the change, or train it in a new "
            "hydra.run.dir"
        )
    return {k: v for k, v in changes.items() if k != "trainer.resume"}
