"""Data sources (digit strips, synthetic, bring-your-own arrays, TIMIT, spoken words, corpus folders), the one
audio front end (`audio.FrontEnd`) and the bucketing batcher."""

from jaxalign.data.arrays import DataFileError, load_arrays, read_arrays, to_sequences, validate_arrays, write_arrays
from jaxalign.data.audio import FrontEnd, read_audio
from jaxalign.data.batching import Batcher, IteratorState, bucket_bounds
from jaxalign.data.dataset import DataSplits, SequenceData
from jaxalign.data.digit_strips import DigitStripsSpec, load_digit_strips
from jaxalign.data.spoken_words import SpokenWordsError, SpokenWordsSpec, load_spoken_words
from jaxalign.data.synthetic import SyntheticSpec, load_synthetic
from jaxalign.data.timit import TimitError, TimitSpec, load_timit

__all__ = [
    "Batcher",
    "DataFileError",
    "DataSplits",
    "DigitStripsSpec",
    "FrontEnd",
    "IteratorState",
    "SequenceData",
    "SpokenWordsError",
    "SpokenWordsSpec",
    "SyntheticSpec",
    "TimitError",
    "TimitSpec",
    "bucket_bounds",
    "load_arrays",
    "load_digit_strips",
    "load_spoken_words",
    "load_synthetic",
    "load_timit",
    "read_arrays",
    "read_audio",
    "to_sequences",
    "validate_arrays",
    "write_arrays",
]
