"""One-to-one: an MLP applied to each frame on its own (no memory), scanned over a series."""

from jaxalign.errors import ConfigError
from jaxalign.setups.base import check_no_ctc
from jaxalign.setups.time_sync import TimeSync


class OneToOne(TimeSync):
    """Same targets and divergence as time_sync; only the model differs."""

    name = "one_to_one"

    @classmethod
    def check_config(cls, config) -> None:
        if config.model.kind != "mlp":
            raise ConfigError(f"setup=one_to_one with model.kind={config.model.kind}: one_to_one uses model=mlp")
        check_no_ctc(cls.name, config.align)
