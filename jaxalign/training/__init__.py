"""Training: the jitted step, alignment schedules, evaluation, checkpoints and the loop."""

from jaxalign.training.loop import TrainingDiverged, train
from jaxalign.training.step import StepSpec, TrainState, make_eval_fn, make_optimizer, make_train_step

__all__ = ["StepSpec", "TrainState", "TrainingDiverged", "make_eval_fn", "make_optimizer", "make_train_step", "train"]
