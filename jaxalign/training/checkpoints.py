"""Orbax checkpoints of the whole training state: params, optimizer state, step, the data iterator's
position, the realignment bookkeeping and (per_epoch / realign_list) the stored alignments.
Randomness needs no saving: each step's key is fold_in(seed key, step)."""

from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxalign.errors import CheckpointError


def _reason(err: Exception) -> str:
    """The first line of an orbax / TensorStore error, without the spec dump it may append."""
    text = str(err).split("See full TensorStore details")[0].strip() or type(err).__name__
    return text.splitlines()[0].rstrip(" .:")


class Checkpoints:
    def __init__(self, directory: Path, *, max_to_keep: int, create: bool = True):
        """Keeps the newest `max_to_keep` checkpoints (trainer.keep_checkpoints). create=False: only
        read; a missing directory is a CheckpointError, not a new folder."""
        if not create and not Path(directory).is_dir():
            raise CheckpointError(f"no checkpoints under {directory}")
        self.manager = ocp.CheckpointManager(
            Path(directory).absolute(),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep, save_interval_steps=1, enable_async_checkpointing=False, create=create
            ),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, meta: dict, extras: dict[str, np.ndarray]) -> None:
        items = {
            "state": ocp.args.StandardSave(state),
            "meta": ocp.args.JsonSave(meta),
            "extras": ocp.args.StandardSave(extras),
        }
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
            raise CheckpointError(
                f"cannot restore checkpoint step {step} from {self.manager.directory}: {_reason(err)}"
            ) from None
        return out["state"], out["meta"], {k: np.asarray(v) for k, v in out["extras"].items()}

    def _existing(self, step: int | None) -> int:
        steps = self.manager.all_steps()
        step = self.latest_step() if step is None else step
        if step not in steps:
            raise CheckpointError(
                f"no checkpoint step {step} under {self.manager.directory} (steps: {sorted(steps) or 'none'})"
            )
        return step

    def restore_state(self, state_like, step: int | None = None):
        """(state, meta) of checkpoint `step` (default: the latest), without the loop's extras."""
        step = self._existing(step)
        items = {
            "state": ocp.args.StandardRestore(jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)),
            "meta": ocp.args.JsonRestore(),
        }
        try:
            out = self.manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as err:
            raise CheckpointError(
                f"cannot restore checkpoint step {step} from {self.manager.directory}: {_reason(err)}"
            ) from None
        return out["state"], out["meta"]

    def restore_meta(self, step: int | None = None) -> dict:
        """The JSON meta of checkpoint `step` (default: the latest) alone: no template needed."""
        step = self._existing(step)
        try:
            return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as err:
            raise CheckpointError(
                f"cannot read checkpoint step {step} from {self.manager.directory}: {_reason(err)}"
            ) from None

    def close(self) -> None:
        self.manager.close()
