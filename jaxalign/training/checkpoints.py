"""Orbax checkpoints of the whole training state: params, optimizer state, step, the data iterator's
position, the realignment bookkeeping and (per_epoch / realign_list) the stored alignments.
Randomness needs no saving: each step's key is fold_in(seed key, step)."""

from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
    """A checkpoint directory that exists but cannot be restored."""


class Checkpoints:
    def __init__(self, directory: Path, max_to_keep: int = 2):
        """Keeps the newest `max_to_keep` checkpoints (trainer.keep_checkpoints)."""
        self.manager = ocp.CheckpointManager(
            Path(directory).absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, save_interval_steps=1, enable_async_checkpointing=False),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, meta: dict, extras: dict[str, np.ndarray]) -> None:
        items = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta), "extras": ocp.args.StandardSave(extras)}
        self.manager.save(step, args=ocp.args.Composite(**items), force=True)
        self.manager.wait_until_finished()

    def restore(self, state_like, extras_like: dict[str, np.ndarray]):
        """Latest checkpoint -> (state, meta, extras), shaped like the given templates."""
        step = self.latest_step()
        items = {
            "state": ocp.args.StandardRestore(jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)),
            "meta": ocp.args.JsonRestore(),
            "extras": ocp.args.StandardRestore(jax.tree.map(np.asarray, extras_like)),
        }
        try:
            out = self.manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as err:  # orbax raises many types; one message names the directory
            raise CheckpointError(f"cannot restore checkpoint step {step} from {self.manager.directory}: {err}") from None
        return out["state"], out["meta"], {k: np.asarray(v) for k, v in out["extras"].items()}

    def close(self) -> None:
        self.manager.close()
