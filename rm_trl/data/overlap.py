"""Evaluation rows that also appear in the training data: counted, and dropped or refused as the user chose."""

from __future__ import annotations

import dataclasses
import logging

from datasets import Dataset

from .pipeline import PreparedData
from .report import DataValidationError
from .tokenize import PROMPT_IDS, RESPONSE_IDS
from .validate import ROW

logger = logging.getLogger(__name__)
OVERLAP_POLICIES = ("warn", "drop", "error")


def _row_keys(data: Dataset) -> list[tuple]:
    """A row as tokens: its prompt and its responses in any order."""
    return [(tuple(p), tuple(sorted(map(tuple, rs)))) for p, rs in zip(data[PROMPT_IDS], data[RESPONSE_IDS])]


def check_eval_overlap(train: Dataset, evaluation: PreparedData, policy: str) -> PreparedData:
    """Count evaluation rows whose prompt and responses appear, token for token, in the (tokenized) training
    data, and shared prompts, in the eval report; `policy` is `eval_overlap`: warn (keep, flagged), drop, error."""
    train_keys = set(_row_keys(train))
    train_prompts = {key[0] for key in train_keys}
    data = evaluation.dataset
    eval_keys = _row_keys(data)
    overlap = [row for row, key in zip(data[ROW], eval_keys) if key in train_keys]
    shared_prompts = sum(key[0] in train_prompts for key in eval_keys)
    report = evaluation.report
    report.settings["overlap_with_train"] = {"rows": len(overlap), "prompts": shared_prompts}
    if not overlap:
        return evaluation
    message = f"{len(overlap)} evaluation rows also appear in the training data (e.g. rows {overlap[:10]})"
    if policy == "error":
        raise DataValidationError(message + "; set `eval_overlap: warn` or `drop`")
    report.note_rows("overlap_with_train", overlap)
    logger.warning("%s: %s", message, "dropped from evaluation" if policy == "drop" else "kept")
    if policy != "drop":
        report.flagged["overlap_with_train"] += len(overlap)
        return evaluation
    report.dropped["overlap_with_train"] += len(overlap)
    drop = set(overlap)
    data = data.filter(lambda row: row not in drop, input_columns=ROW)
    report.rows_out = len(data)
    return dataclasses.replace(evaluation, dataset=data)
