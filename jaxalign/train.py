"""`jaxalign-train`: the Hydra entry point. Kept short; the logic lives in `jaxalign.training`."""

import contextlib
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
from omegaconf import DictConfig, OmegaConf

from jaxalign.config import DATA_CONFIGS, Config, register_configs, to_config
from jaxalign.errors import JaxalignError
from jaxalign.runtime import configure_jax

register_configs()
CONFIG_PATH = "pkg://jaxalign.conf"  # the repo's conf/, shipped inside the package (pyproject.toml)


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
    groups = dict(arg.split("=", 1) for arg in args if "=" in arg and "." not in arg.split("=", 1)[0])
    for arg in args:
        key = arg.split("=", 1)[0]
        if groups.get("data") == "corpus" and key.lstrip("+") == "data.path":
            folder = arg.split("=", 1)[1]
            print(
                f"jaxalign-train: data=corpus reads its corpus folder from data.root={folder} "
                "(data.path is the .npz file of data=arrays)",
                file=sys.stderr,
            )
            sys.exit(2)
        if "=" not in arg or key.startswith(("+", "~", "-", "hydra")) or "/" in key or "." not in key:
            continue  # flags, additions, deletions, Hydra's own keys and group choices (setup=...)
        if key not in keys:
            close = difflib.get_close_matches(key, sorted(keys), n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else "; `jaxalign-train --help` lists the keys"
            print(f"jaxalign-train: unknown key {key!r}{hint}", file=sys.stderr)
            sys.exit(2)


def hydra_record(hydra_cfg) -> dict[str, str]:
    """Hydra's own files of the run record (`hydra.output_subdir` is null, so that Hydra writes
    nothing into a run dir before it is known to be this run's), for the Trainer to write on a
    fresh start: the overrides (which `experiments/figures.py` groups by) and the Hydra config."""
    return {
        ".hydra/overrides.yaml": OmegaConf.to_yaml(hydra_cfg.overrides.task),
        ".hydra/hydra.yaml": OmegaConf.to_yaml({"hydra": hydra_cfg}),
    }


def rank_of(cfg: DictConfig) -> int:
    """This process's rank, before JAX starts: trainer.distributed.process_id, else SLURM's."""
    given = OmegaConf.select(cfg, "trainer.distributed.process_id", default=0)
    return given if isinstance(given, int) and given > 0 else int(os.environ.get("SLURM_PROCID", "0"))


@hydra.main(version_base=None, config_path=CONFIG_PATH, config_name="config")
def run(cfg: DictConfig):
    """One job. A DONE run dir is skipped untouched; a run dir in use by another process is refused
    untouched; only the first process writes DONE and FAILED, and never for a refused resume."""
    from jaxalign.training.run_dir import RunDirBusy, hold

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    first = rank_of(cfg) == 0

    def done():
        if not (run_dir / "DONE").exists():
            return False
        print(f"jaxalign-train: {run_dir} is already DONE; skipping", file=sys.stderr)
        return True

    def fail(err):
        return report_failure(err, run_dir, first=first, multirun=multirun)

    if done():
        return json.loads((run_dir / "DONE").read_text()).get("label_error_rate")
    try:
        with hold(run_dir) if first else contextlib.nullcontext():
            if done():  # finished while this process waited to start
                return json.loads((run_dir / "DONE").read_text()).get("label_error_rate")
            try:
                config = to_config(cfg)
                configure_jax(config.trainer.distributed)
                from jaxalign.training import train

                final = train(config, run_dir, record=hydra_record(hydra_cfg))
            except Exception as err:
                return fail(err)
            if first:
                (run_dir / "FAILED").unlink(missing_ok=True)  # an earlier attempt's, now resumed to the end
                (run_dir / "DONE").write_text(json.dumps(final) + "\n")
            return final.get("label_error_rate")
    except RunDirBusy as err:
        return fail(err)


def report_failure(err: Exception, run_dir: Path, *, first: bool, multirun: bool) -> None:
    """A run that raised `err`: FAILED in the run dir (by the first process; not where the run dir
    was another run's), then a `JaxalignError` (or a missing file) is one line and exit status 1 (in
    a sweep the other jobs go on); anything else is a bug and keeps its traceback."""
    from jaxalign.errors import ResumeRefused, RunDirBusy

    known = isinstance(err, (JaxalignError, FileNotFoundError))
    if first and not isinstance(err, (ResumeRefused, RunDirBusy)):
        detail = f"{type(err).__name__}: {err}" if known else traceback.format_exc()
        (run_dir / "FAILED").write_text(detail + "\n")
    if os.environ.get("HYDRA_FULL_ERROR") == "1" or (not known and not multirun):
        raise err
    print(f"jaxalign-train: {err} (run dir {run_dir})", file=sys.stderr)
    if not multirun:
        sys.exit(1)  # in a sweep, one failed job must not stop the others


def main():
    """The console entry point `jaxalign-train`."""
    check_override_keys(sys.argv[1:])
    run()


if __name__ == "__main__":
    main()
