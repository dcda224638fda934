"""Many-to-one: one label per sequence, smeared over all its frames with per-frame weights
(`setup.weighting`: last | uniform | linear | exponential towards the end)."""

import jax.numpy as jnp
import numpy as np

from jaxalign.errors import ConfigError
from jaxalign.setups.base import Setup
from jaxalign.setups.divergences import frame_cross_entropy, many_to_one_weights


class ManyToOne(Setup):
    name = "many_to_one"
    frame_metrics = False  # one label per sequence: there are no per-frame targets to score

    def __init__(self, config, num_classes: int):
        super().__init__(config, num_classes)
        self.weighting, self.decay = config.setup.weighting, config.setup.decay

    def check_data(self, splits) -> None:
        if splits.train.label_lengths().max() > 1:
            raise ConfigError(
                "setup=many_to_one needs one label per example; for digit strips set data.max_digits=1 (or use +experiment=many_to_one_digits)"
            )

    def divergence(self, log_probs_BxTxC, logits_BxTxC, batch, step):
        weights_BxT = (
            many_to_one_weights(batch["logit_paddings"], self.weighting, decay=self.decay) * batch["weights"][:, None]
        )
        targets_BxT = jnp.broadcast_to(batch["labels"][:, :1], weights_BxT.shape)
        total, _ = frame_cross_entropy(log_probs_BxTxC, targets_BxT, weights_BxT)
        sequences = jnp.sum(batch["weights"])
        return total / (sequences + (sequences == 0)), {}

    def reference(self, data, i: int) -> list[int]:
        return data.labels[i][:1].tolist()

    def hypothesis(self, example: dict) -> list[int]:
        """The class read at the last frame, after the net has seen the whole sequence."""
        return [int(example["frame_symbols"][-1])]

    def summary_metrics(self, hyps: list, refs: list) -> dict:
        return {"accuracy": float(np.mean([h == r for h, r in zip(hyps, refs)]))}
