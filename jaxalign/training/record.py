"""The run record: the console, metrics.jsonl and TensorBoard, the progress bar, and the
environment a run ran in. Only the first process writes (with several hosts)."""

import json
import math
import sys
import time
from pathlib import Path

import flax
import jax
import jaxlib
import numpy as np
import optax
from tqdm import tqdm


def console(message: str) -> None:
    """One line on the console, above the progress bar if there is one (from the first process)."""
    if jax.process_index() == 0:
        tqdm.write(f"jaxalign: {message}", file=sys.stderr)


class MetricsWriter:
    """Appends JSON lines to metrics.jsonl (the record) and scalars to TensorBoard (`tensorboard/`).

    Lines with split "timing" hold wall-clock numbers; all other lines are deterministic for a
    given config and seed on CPU. A metric that does not apply at a step is NaN and left out.
    """

    def __init__(self, run_dir: Path, resumed_from: int | None):
        """On resume from the checkpoint at step S, keeps what the run had written before saving it:
        lines of earlier steps and the validation line of step S; the rest is written again."""
        from tensorboardX import SummaryWriter

        self.path = run_dir / "metrics.jsonl"
        self.tensorboard = None
        if jax.process_index() != 0:  # with several processes, the first one keeps the record
            return
        lines = self.path.read_text().splitlines() if self.path.exists() and resumed_from is not None else []
        records = [json.loads(ln) for ln in lines if ln]
        kept = [r for r in records if r["step"] < resumed_from or (r["step"] == resumed_from and r["split"] == "valid")]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.tensorboard = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, step: int, split: str, **values) -> None:
        if self.tensorboard is None:  # not the first process
            return
        clean = {k: (np.asarray(v).item() if np.ndim(v) == 0 and hasattr(v, "dtype") else v) for k, v in values.items()}
        clean = {k: v for k, v in clean.items() if not (isinstance(v, float) and math.isnan(v))}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": int(step), "split": split, **clean}) + "\n")
        if split != "timing":
            for key, value in clean.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.tensorboard.add_scalar(f"{split}/{key}", value, step)

    def add_figure(self, tag: str, png: Path, step: int) -> None:
        import matplotlib.image

        if self.tensorboard is not None:
            self.tensorboard.add_image(tag, matplotlib.image.imread(png)[..., :3], step, dataformats="HWC")

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def write_environment(path: Path, mesh: dict | None) -> None:
    """Versions, devices and the data-parallel mesh: RNG streams and numerics change between JAX releases."""
    env = {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "device_count": jax.device_count(),
        "process_count": jax.process_count(),
    }
    if mesh:
        env["mesh"] = mesh
    path.write_text(json.dumps(env, indent=2) + "\n")


class Progress:
    """A one-line bar on a terminal; a log line every `every` steps otherwise (e.g. into a file).
    Throughput is wall time between updates (the loop reads each step's metrics one step later, so
    it keeps pace with the device), leaving out the steps that compiled."""

    def __init__(self, total: int, start: int, every: int, enabled: bool):
        self.tty = enabled and sys.stderr.isatty()
        self.enabled, self.every, self.total = enabled, every, total
        self.bar = tqdm(total=total, initial=start, desc="train", dynamic_ncols=True, disable=not self.tty)
        self.frames = 0
        self.seconds = 0.0
        self.clock = time.perf_counter()

    def update(self, step: int, frames: int, compiled: bool, loss: float | None) -> None:
        now = time.perf_counter()
        if not compiled:
            self.frames += frames
            self.seconds += now - self.clock
        self.clock = now
        rate = f"{self.frames / self.seconds:.0f}" if self.seconds > 0 else "-"
        self.bar.update(1)
        if loss is not None and self.tty:
            self.bar.set_postfix(loss=f"{loss:.3f}", frames_per_s=rate)
        elif loss is not None and self.enabled and not self.tty and (step + 1) % self.every == 0:
            console(f"step {step + 1}/{self.total} loss {loss:.3f} frames/s {rate}")

    def skip(self) -> None:
        """Leaves the time since the last update (evaluation, checkpointing) out of the throughput."""
        self.clock = time.perf_counter()

    @property
    def frames_per_second(self) -> float | None:
        return self.frames / self.seconds if self.seconds > 0 else None

    def close(self) -> None:
        self.bar.close()
