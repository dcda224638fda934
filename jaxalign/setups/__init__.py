"""The notes' setups behind one interface (`Setup`), chosen once from the config by `make_setup`.

Outside this package no code branches on a setup, schedule or initial-alignment name. Adding a
setup means one module here, one entry in `SETUPS` and one yaml in `conf/setup/`.
"""

from jaxalign.errors import ConfigError
from jaxalign.setups.alternatives import PRONUNCIATION_STARTS
from jaxalign.setups.base import Setup
from jaxalign.setups.divergences import (
    WEIGHTINGS,
    ctc_divergence,
    frame_cross_entropy,
    many_to_one_weights,
)
from jaxalign.setups.many_to_one import ManyToOne
from jaxalign.setups.one_to_one import OneToOne
from jaxalign.setups.order_sync import KERNELS, METHODS, TOPOLOGIES, GridKernels, OrderSync
from jaxalign.setups.schedules import INITS, SCHEDULES
from jaxalign.setups.seq2seq import ATTENTIONS, OneToMany, Seq2Seq
from jaxalign.setups.time_sync import TimeSync

SETUPS = {cls.name: cls for cls in (OneToOne, TimeSync, ManyToOne, OrderSync, Seq2Seq, OneToMany)}


def make_setup(config, num_classes: int, optional_symbol: int | None = None) -> Setup:
    """The setup object for a checked `Config` and a data set of `num_classes` symbols, whose targets
    may have an optional symbol (`SequenceData.optional_symbol`: only order_sync skips rows)."""
    if optional_symbol is None:
        return SETUPS[config.setup.name](config, num_classes)
    if config.setup.name != OrderSync.name:
        raise ConfigError(
            f"setup={config.setup.name}: this data set's targets have optional pauses between words "
            "(data.silence), which only setup=order_sync aligns"
        )
    return OrderSync(config, num_classes, optional_symbol)


def setup_for_data(config, data_info: dict, aligning: bool = False) -> Setup:
    """`make_setup` for a data set described by `SequenceData.info()` (e.g. a checkpoint's record of it).
    aligning: the setup a trained run aligns with: its pauses blocks of `align.aligned_pause_states`
    rows (a pause lasts that many frames at least), each row reading a sub-state column training
    learnt (`substate_grid`'s pause_columns); training's own blocks stay `align.pause_states`."""
    setup = make_setup(config, data_info["num_classes"], data_info.get("optional_symbol"))
    if aligning and setup.optional_symbol is not None:
        setup.pause_states = config.align.aligned_pause_states
    return setup


__all__ = [
    "ATTENTIONS",
    "KERNELS",
    "METHODS",
    "WEIGHTINGS",
    "GridKernels",
    "INITS",
    "PRONUNCIATION_STARTS",
    "SCHEDULES",
    "SETUPS",
    "TOPOLOGIES",
    "Setup",
    "ctc_divergence",
    "frame_cross_entropy",
    "make_setup",
    "setup_for_data",
    "many_to_one_weights",
]
