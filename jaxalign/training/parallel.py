"""Data parallelism: the batch is split over all visible devices along a one-axis mesh ("data"),
parameters and optimizer state are replicated; `jax.jit` then runs one SPMD program whose gradient
mean is an all-reduce. On by default whenever more than one device is visible. Across processes,
call `jax.distributed.initialize()` first (`jaxalign.runtime.configure_jax` does, given
trainer.distributed or under SLURM), and every process's devices join the mesh."""

import jax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxalign.errors import ConfigError


class DataParallel:
    def __init__(self, batch_size: int):
        count = jax.device_count()
        # Auto axes: XLA propagates the batch sharding through the step (gathers, scans) by itself.
        self.mesh = jax.make_mesh((count,), ("data",), axis_types=(jax.sharding.AxisType.Auto,)) if count > 1 else None
        if self.mesh is not None and batch_size % count:
            raise ConfigError(
                f"trainer.batch_size={batch_size} must be a multiple of the {count} devices the batch is split over"
            )

    @property
    def shape(self) -> dict[str, int] | None:
        """{"data": devices}, or None on one device."""
        return dict(self.mesh.shape) if self.mesh is not None else None

    def batch(self, batch: dict):
        """Host batch (leading axis B) -> global arrays split over the devices along B. Every process
        builds the same batch (same seed), and each places only the rows of its own devices."""
        if self.mesh is None:
            return batch
        sharding = NamedSharding(self.mesh, P("data"))
        return jax.tree.map(lambda x: jax.make_array_from_callback(x.shape, sharding, lambda index: x[index]), batch)

    def replicate(self, tree):
        """The same values on every device of the mesh. Through the host: arrays restored from a
        checkpoint sit on one device of this process, and JAX moves no such array onto other
        processes' devices (each process puts its own copy on its own devices)."""
        return tree if self.mesh is None else jax.device_put(jax.device_get(tree), NamedSharding(self.mesh, P()))

    def to_host(self, tree):
        """Outputs of a step (arrays on the mesh) -> numpy arrays of the whole batch, on every
        process: with several processes, the rows on other processes' devices are gathered (every
        process must call this, in the same order)."""

        def get(x):
            if isinstance(x, jax.Array) and not x.is_fully_addressable:
                return multihost_utils.process_allgather(x, tiled=True)  # the global value
            return jax.device_get(x)

        return jax.tree.map(get, tree)
