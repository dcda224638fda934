"""The forced-alignment application, above the kernels: a trained run loaded for use (`run`), a
corpus folder aligned into TextGrids (`corpus`), `.npz` sequences aligned (`sequences`), the
writers and their one clock (`export`), the rules of an output folder (`output_dir`) and the
command line `jaxalign-align` (`cli`)."""

from jaxalign.aligner.corpus import align_corpus, align_corpus_dir
from jaxalign.aligner.export import Clock, Interval
from jaxalign.aligner.run import Run, load_run, plot_run_alignment
from jaxalign.aligner.sequences import align_file

__all__ = [
    "Clock",
    "Interval",
    "Run",
    "align_corpus",
    "align_corpus_dir",
    "align_file",
    "load_run",
    "plot_run_alignment",
]
