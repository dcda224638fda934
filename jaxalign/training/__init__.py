"""Training: the jitted step, evaluation, the alignment store, checkpoints, the run record and the loop."""

from jaxalign.training.loop import Trainer, TrainingDiverged, train
from jaxalign.training.step import TrainState, make_eval_fn, make_train_step

__all__ = ["TrainState", "Trainer", "TrainingDiverged", "make_eval_fn", "make_train_step", "train"]
