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
    def __init__(self, directory: Path, every: int):
        self.manager = ocp.CheckpointManager(
            Path(directory).absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=2, save_interval_steps=1, enable_async_checkpointing=False),
        )
        self.every = every

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, meta: dict, store: dict | None = None) -> None:
        items = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta)}
        if store is not None:
            items["store"] = ocp.args.StandardSave(store)
        self.manager.save(step, args=ocp.args.Composite(**items), force=True)
        self.manager.wait_until_finished()

    def restore(self, state_like, store_like: dict | None = None):
        """Latest checkpoint -> (state, meta, store or None), shaped like the given templates."""
        step = self.latest_step()
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
        items = {"state": ocp.args.StandardRestore(abstract), "meta": ocp.args.JsonRestore()}
        if store_like is not None:
            items["store"] = ocp.args.StandardRestore(jax.tree.map(np.asarray, store_like))
        try:
            out = self.manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as err:  # orbax raises many types; one message names the directory
            raise CheckpointError(f"cannot restore checkpoint step {step} from {self.manager.directory}: {err}") from None
        return out["state"], out["meta"], out.get("store") if store_like is not None else None

    def close(self) -> None:
        self.manager.close()
