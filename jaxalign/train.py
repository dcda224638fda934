"""`jaxalign-train`: the Hydra entry point. Kept short; the logic lives in `jaxalign.training`."""

import dataclasses
import difflib
import json
import os
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from jaxalign.config import DATA_CONFIGS, Config, ConfigError, register_configs, to_config
from jaxalign.runtime import configure_jax

register_configs()
CONFIG_PATH = "pkg://jaxalign.conf"  # the repo's conf/, shipped inside the package (pyproject.toml)


def expected_errors():
    from jaxalign.data import DataFileError, TimitError
    from jaxalign.training import TrainingDiverged
    from jaxalign.training.checkpoints import CheckpointError

    return (ConfigError, DataFileError, TimitError, FileNotFoundError, CheckpointError, TrainingDiverged)


def known_keys() -> set[str]:
    """Every dotted key of the schemas (data keys of every data source; nested sections such as
    trainer.distributed by their leaves)."""

    def leaves(prefix: str, kinds) -> set[str]:
        fields = [f for kind in kinds if dataclasses.is_dataclass(kind) for f in dataclasses.fields(kind)]
        if not fields:
            return {prefix}
        return set().union(*(leaves(f"{prefix}.{f.name}", [f.type]) for f in fields))

    keys = set()
    for section in dataclasses.fields(Config):
        keys |= leaves(section.name, DATA_CONFIGS.values() if section.name == "data" else [section.type])
    return keys


def check_override_keys(args: list[str]) -> None:
    """Exits with one line naming an unknown key and its closest known keys, where Hydra would
    answer a typo such as `trainer.step=10` with advice to append it."""
    keys = known_keys()
    for arg in args:
        key = arg.split("=", 1)[0]
        if "=" not in arg or key.startswith(("+", "~", "-", "hydra")) or "/" in key or "." not in key:
            continue  # flags, additions, deletions, Hydra's own keys and group choices (setup=...)
        if key not in keys:
            close = difflib.get_close_matches(key, sorted(keys), n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else "; `jaxalign-train --help` lists the keys"
            print(f"jaxalign-train: unknown key {key!r}{hint}", file=sys.stderr)
            sys.exit(2)


@hydra.main(version_base=None, config_path=CONFIG_PATH, config_name="config")
def run(cfg: DictConfig):
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    if (run_dir / "DONE").exists():
        print(f"jaxalign-train: {run_dir} is already DONE; skipping", file=sys.stderr)
        return json.loads((run_dir / "DONE").read_text()).get("label_error_rate")
    rank = int(os.environ.get("SLURM_PROCID", "0"))  # only the first process writes DONE and FAILED
    try:
        config = to_config(cfg)
        rank = config.trainer.distributed.process_id or rank
        configure_jax(config.trainer.distributed)
        import jax

        rank = jax.process_index()
        from jaxalign.training import train

        final = train(config, run_dir)
    except Exception as err:
        known = isinstance(err, expected_errors())
        detail = f"{type(err).__name__}: {err}" if known else traceback.format_exc()
        if rank == 0:
            (run_dir / "FAILED").write_text(detail + "\n")
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or (not known and not multirun):
            raise
        print(f"jaxalign-train: {err} (run dir {run_dir})", file=sys.stderr)
        if multirun:
            return None  # one failed job must not stop the sweep
        sys.exit(1)
    if rank == 0:
        (run_dir / "DONE").write_text(json.dumps(final) + "\n")
    return final.get("label_error_rate")


def follower_overrides(args: list[str]) -> list[str]:
    """Hydra overrides that keep a process other than the first (trainer.distributed.process_id > 0)
    from writing into the run dir it shares with the first: no .hydra/ and no train.log."""
    ids = [a.split("=", 1)[1] for a in args if a.lstrip("+").startswith("trainer.distributed.process_id=")]
    if not ids or ids[-1].strip() in ("0", ""):
        return []
    extra = [] if any(a.startswith("hydra.output_subdir=") for a in args) else ["hydra.output_subdir=null"]
    return extra + ([] if any(a.startswith("hydra/job_logging=") for a in args) else ["hydra/job_logging=stdout"])


def main():
    """The console entry point `jaxalign-train`."""
    check_override_keys(sys.argv[1:])
    sys.argv += follower_overrides(sys.argv[1:])
    run()


if __name__ == "__main__":
    main()
