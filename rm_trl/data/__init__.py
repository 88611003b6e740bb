"""Data layer: loading, format detection and validation, tokenization with a length policy, collation."""

from .arguments import DataArguments
from .collators import RewardDataCollator
from .formats import PAIRWISE_SCHEMA, Layout, ParsedRow, RowSchema, split_implicit_prompt
from .loading import DataLoadError, load_data, load_train_eval, read_file, split_by_prompt
from .pipeline import PreparedData, prepare_dataset, prepare_for_scoring
from .report import DataReport, DataValidationError, RowProblem
from .tokenize import SequenceTemplate, fit_to_length

__all__ = [
    "PAIRWISE_SCHEMA",
    "DataArguments",
    "DataLoadError",
    "DataReport",
    "DataValidationError",
    "Layout",
    "ParsedRow",
    "PreparedData",
    "RewardDataCollator",
    "RowProblem",
    "RowSchema",
    "SequenceTemplate",
    "fit_to_length",
    "load_data",
    "load_train_eval",
    "prepare_dataset",
    "prepare_for_scoring",
    "read_file",
    "split_by_prompt",
    "split_implicit_prompt",
]
