"""`jaxalign-train`: the Hydra entry point. Kept short; the logic lives in `jaxalign.training`."""

import json
import logging
import os
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from jaxalign.config import ConfigError, register_configs, to_config

register_configs()
# The repo's conf/ (the package is installed editable, as the README says).
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def configure_jax(cache_dir: Path, xla_flags: str) -> None:
    """Set before JAX initialises its backend; later changes are silently ignored (jax #19213)."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # sweeps share a GPU's memory
    if xla_flags and xla_flags not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {xla_flags}".strip()
    import absl.logging
    import jax

    absl.logging.set_verbosity(absl.logging.WARNING)  # orbax logs every save at INFO
    logging.getLogger("jax").setLevel(logging.WARNING)  # Hydra's INFO root level would show backend probing

    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def expected_errors():
    from jaxalign.data import DataFileError, TimitError
    from jaxalign.training import TrainingDiverged
    from jaxalign.training.checkpoints import CheckpointError

    return (ConfigError, DataFileError, TimitError, FileNotFoundError, CheckpointError, TrainingDiverged)


@hydra.main(version_base=None, config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig):
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    if (run_dir / "DONE").exists():
        print(f"jaxalign-train: {run_dir} is already DONE; skipping", file=sys.stderr)
        return json.loads((run_dir / "DONE").read_text()).get("label_error_rate")
    try:
        config = to_config(cfg)
        configure_jax(Path(os.environ.get("JAXALIGN_CACHE_DIR", Path.home() / ".cache" / "jaxalign" / "xla")), config.xla_flags)
        from jaxalign.training import train

        final = train(config, run_dir)
    except Exception as err:
        known = isinstance(err, expected_errors())
        detail = f"{type(err).__name__}: {err}" if known else traceback.format_exc()
        (run_dir / "FAILED").write_text(detail + "\n")
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or (not known and not multirun):
            raise
        print(f"jaxalign-train: {err} (run dir {run_dir})", file=sys.stderr)
        if multirun:
            return None  # one failed job must not stop the sweep
        sys.exit(1)
    (run_dir / "DONE").write_text(json.dumps(final) + "\n")
    return final.get("label_error_rate")


if __name__ == "__main__":
    main()
