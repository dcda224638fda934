"""Time-synchronous many-to-many: one target symbol per input frame (uni- or bidirectional net)."""

from jaxalign.errors import ConfigError
from jaxalign.setups.base import Setup, merge_repeats
from jaxalign.setups.divergences import frame_cross_entropy


class TimeSync(Setup):
    name = "time_sync"

    def check_data(self, splits) -> None:
        if splits.train.alignments is None:
            raise ConfigError(f"setup={self.name} needs per-frame labels: the data has no true alignments")

    def divergence(self, log_probs_BxTxC, logits_BxTxC, batch, step):
        valid_BxT = (batch["logit_paddings"] == 0) & (batch["weights"][:, None] > 0)
        total, count = frame_cross_entropy(
            log_probs_BxTxC, batch["frame_labels"], valid_BxT.astype(log_probs_BxTxC.dtype)
        )
        return total / (count + (count == 0)), {}

    def reference(self, data, i: int) -> list[int]:
        # The net emits merged frame labels, so repeats cannot be told apart (the notes' point).
        return merge_repeats(data.frame_labels(i))
