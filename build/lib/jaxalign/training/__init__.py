"""Training: the jitted step, evaluation, the alignment store, checkpoints and the loop."""

from jaxalign.training.loop import Trainer, TrainingDiverged, train
from jaxalign.training.step import TrainState, make_eval_fn, make_optimizer, make_train_step

__all__ = ["TrainState", "Trainer", "TrainingDiverged", "make_eval_fn", "make_optimizer", "make_train_step", "train"]
