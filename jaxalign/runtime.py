"""The process around JAX: where the project caches things, and JAX's set-up before its first use.

Both command lines (`jaxalign-train`, `jaxalign-align`) call `configure_jax` before anything touches
JAX; the Python API (`jaxalign.training.train`) leaves JAX as the caller set it up.
"""

import logging
import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The project's cache root, `$JAXALIGN_CACHE_DIR` if set, else `~/.cache/jaxalign`, joined with
    `parts`: compiled XLA programs live in `cache_dir("xla")`, generated data sets beside them
    (`cache_dir("spoken_words")`)."""
    root = os.environ.get("JAXALIGN_CACHE_DIR") or Path.home() / ".cache" / "jaxalign"
    return Path(root).expanduser().joinpath(*parts)


def configure_jax(distributed=None) -> None:
    """Sets what must be set before JAX initialises its backend (later changes are silently ignored,
    jax #19213), then joins the processes of a multi-process run.

    `distributed` is a `DistributedConfig` (trainer.distributed) or None. With a coordinator, this
    process calls `jax.distributed.initialize(coordinator, num_processes, process_id)`; without one,
    under SLURM with more than one task (hydra/launcher=slurm_gpu), `jax.distributed.initialize()`
    reads the coordinator and ranks from SLURM's variables. Either must come before any other JAX
    call. On CPU the processes exchange collectives over gloo (`jax_cpu_collectives_implementation`,
    the default in jax 0.10, set here for older releases; `JAX_CPU_COLLECTIVES_IMPLEMENTATION=mpi` wins).
    """
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # sweeps share a GPU's memory
    import absl.logging
    import jax

    absl.logging.set_verbosity(absl.logging.WARNING)  # orbax logs every save at INFO
    logging.getLogger("jax").setLevel(logging.WARNING)  # Hydra's INFO root level would show backend probing

    if os.environ.get("JAX_CPU_COLLECTIVES_IMPLEMENTATION") is None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # used only by a multi-process CPU run
    if jax.distributed.is_initialized():
        pass  # a later job of a multirun in the same process (the basic launcher)
    elif distributed is not None and distributed.coordinator:
        jax.distributed.initialize(distributed.coordinator, distributed.num_processes, distributed.process_id)
    elif int(os.environ.get("SLURM_NTASKS", "1")) > 1:  # one task per GPU (hydra/launcher=slurm_gpu)
        jax.distributed.initialize()  # coordinator, process count and id from SLURM's variables
    jax.config.update("jax_compilation_cache_dir", str(cache_dir("xla")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
