"""From a raw dataset to tokenized rows: detect the layout, validate, parse, tokenize, apply the length policy.

Each loss family supplies a `RowSchema` (how to detect its layout and parse one row); the rest is shared. Every
row that is not kept is counted in the split's `DataReport`, with example row numbers.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from .formats import ChatRenderer, Layout, ParsedRow, RowSchema
from .report import DataReport, DataValidationError, RowProblem
from .tokenize import (
    IDENTICAL_AFTER_TRUNCATION,
    OK,
    OVERLENGTH,
    TRUNCATED_STATUSES,
    SequenceTemplate,
    fit_to_length,
    has_conflicting_duplicate,
    shared_prefix_length,
)

logger = logging.getLogger(__name__)

ROW = "row"
PROMPT_IDS = "prompt_ids"
RESPONSE_IDS = "response_ids"
LENGTH = "length"  # tokens of the row (prompt once + every response): what length-grouped batching sorts by
MAX_PROBLEMS_SHOWN = 10


@dataclass(frozen=True)
class PreparedData:
    dataset: Dataset
    report: DataReport
    layout: Layout
    template: SequenceTemplate

    @property
    def target_names(self) -> tuple[str, ...]:
        return self.layout.targets


def is_prepared(dataset: Dataset) -> bool:
    return PROMPT_IDS in dataset.column_names and RESPONSE_IDS in dataset.column_names


def prepare_dataset(
    dataset: Dataset,
    schema: RowSchema,
    tokenizer,
    *,
    split: str,
    max_length: int | None,
    truncation: str,
    invalid_rows: str,
    append_eos: bool | None,
    num_proc: int | None = None,
    parse_options: dict[str, Any] | None = None,
    duplicate_rows: str = "keep",
    conflicting_rows: str = "keep",
) -> PreparedData:
    """Validate, parse and tokenize `dataset`; raise or count every row that cannot be used as is."""
    if len(dataset) == 0:
        raise DataValidationError(f"the {split} dataset is empty")
    options = dict(parse_options or {})
    layout = schema.detect(dataset.column_names, dataset[0], **options)
    renderer = ChatRenderer(tokenizer) if layout.conversational else None
    template = SequenceTemplate.for_tokenizer(tokenizer, append_eos=append_eos, conversational=layout.conversational)
    targets = layout.targets
    report = DataReport(split=split, rows_in=len(dataset))
    report.settings = {
        "format": layout.describe(),
        "max_length": max_length,
        "truncation": truncation,
        "invalid_rows": invalid_rows,
        "prefix_tokens": tokenizer.convert_ids_to_tokens(list(template.prefix)),
        "suffix_tokens": tokenizer.convert_ids_to_tokens(list(template.suffix)),
    }
    logger.info("%s data: %s", split, layout.describe())

    def parse_batch(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        out: dict[str, list] = {ROW: [], "_prompt": [], "_responses": [], "_problems": []}
        out.update({name: [] for name in targets})
        columns = list(batch)
        for offset, index in enumerate(indices):
            row = {c: batch[c][offset] for c in columns}
            parsed = schema.parse(row, index, layout, renderer=renderer, **options)
            out[ROW].append(index)
            if isinstance(parsed, ParsedRow):
                out["_prompt"].append(parsed.prompt)
                out["_responses"].append(parsed.responses)
                out["_problems"].append("")
                for name in targets:
                    out[name].append(parsed.targets[name])
            else:
                out["_prompt"].append("")
                out["_responses"].append([])
                out["_problems"].append(json.dumps([p.__dict__ for p in parsed]))
                for name in targets:
                    out[name].append(None)
        return out

    parsed = dataset.map(
        parse_batch,
        with_indices=True,
        batched=True,
        remove_columns=dataset.column_names,
        num_proc=num_proc,
        desc=f"Validating {split} data",
    )
    problems = [RowProblem(**p) for cell in parsed["_problems"] if cell for p in json.loads(cell)]
    if problems:
        bad_rows = sorted({p.row for p in problems})
        if invalid_rows == "error":
            shown = "\n".join(f"  {p}" for p in problems[:MAX_PROBLEMS_SHOWN])
            raise DataValidationError(
                f"{len(bad_rows)} invalid row(s) in the {split} data (rows are 0-based), first problems:\n{shown}\n"
                "Fix the data, or set `invalid_rows: skip` (`--invalid_rows skip`) to skip such rows; skipped rows "
                "are counted in the log and in data_report.json.",
                problems,
            )
        first_reason: dict[int, RowProblem] = {}
        for p in problems:
            first_reason.setdefault(p.row, p)
        for p in first_reason.values():
            report.invalid[p.reason] += 1
        for reason in report.invalid:
            report.note_rows(f"invalid:{reason}", [r for r, p in first_reason.items() if p.reason == reason])
        parsed = parsed.filter(lambda cell: not cell, input_columns="_problems", num_proc=num_proc)

    parsed = _handle_duplicates(parsed, targets, report, split, duplicate_rows, conflicting_rows)

    budget = None if max_length is None else max_length - template.num_special
    if budget is not None and budget < 2:
        raise ValueError(f"max_length={max_length} leaves no room once the special tokens are added")

    def tokenize_batch(batch: dict[str, list]) -> dict[str, list]:
        # Each sequence is tokenized as one text, prompt + response, exactly as a consumer (TRL, a PPO pipeline,
        # `tokenizer(prompt + response)`) will tokenize it; the tokens all responses share form the prompt part.
        prompts = tokenizer(batch["_prompt"], add_special_tokens=False)["input_ids"]
        joint = [p + r for p, responses in zip(batch["_prompt"], batch["_responses"]) for r in responses]
        joint_ids = tokenizer(joint, add_special_tokens=False)["input_ids"] if joint else []
        out: dict[str, list] = {PROMPT_IDS: [], RESPONSE_IDS: [], LENGTH: [], "_status": []}
        pos = 0
        for i, (prompt_alone, responses) in enumerate(zip(prompts, batch["_responses"])):
            sequences = joint_ids[pos : pos + len(responses)]
            pos += len(responses)
            n = shared_prefix_length(sequences, cap=len(prompt_alone))
            prompt_ids, response_ids = sequences[0][:n], [s[n:] for s in sequences]
            prompt_ids, response_ids, status = fit_to_length(prompt_ids, response_ids, budget, truncation)
            labels = next((batch[n][i] for n in targets if isinstance(batch[n][i], list)), None)
            if status != OVERLENGTH and has_conflicting_duplicate(response_ids, labels):
                status = IDENTICAL_AFTER_TRUNCATION if status != OK else "identical_tokens"
            out[PROMPT_IDS].append(list(template.prefix) + prompt_ids)
            out[RESPONSE_IDS].append([r + list(template.suffix) for r in response_ids])
            out[LENGTH].append(len(out[PROMPT_IDS][-1]) + sum(len(r) for r in out[RESPONSE_IDS][-1]))
            out["_status"].append(status)
        return out

    tokenized = parsed.map(
        tokenize_batch,
        batched=True,
        remove_columns=["_prompt", "_responses", "_problems"],
        num_proc=num_proc,
        desc=f"Tokenizing {split} data",
    )
    statuses = Counter(tokenized["_status"])
    rows_by_status: dict[str, list[int]] = {}
    if len(statuses) > 1 or OK not in statuses:
        for row, status in zip(tokenized[ROW], tokenized["_status"]):
            if status != OK:
                rows_by_status.setdefault(status, []).append(row)
    if statuses.get(OVERLENGTH) and truncation == "error":
        rows = rows_by_status[OVERLENGTH]
        raise DataValidationError(
            f"{len(rows)} row(s) of the {split} data do not fit in max_length={max_length} tokens, e.g. rows "
            f"{rows[:MAX_PROBLEMS_SHOWN]}. Raise max_length, or choose a truncation policy: "
            "truncate_prompt (keep responses whole, cut the prompt from the left), keep_start, or drop."
        )
    for status, rows in rows_by_status.items():
        if status in TRUNCATED_STATUSES:
            report.truncated[status] += len(rows)
        else:
            reason = "overlength" if status == OVERLENGTH else status
            report.dropped[reason] += len(rows)
        report.note_rows(status, rows)
    _check_last_token_not_pad(tokenized, tokenizer.pad_token_id, split)
    dropped = set(rows_by_status) - set(TRUNCATED_STATUSES)
    if dropped:
        tokenized = tokenized.filter(lambda s: s not in dropped, input_columns="_status", num_proc=num_proc)
    tokenized = tokenized.remove_columns("_status")
    report.rows_out = len(tokenized)
    if report.rows_out == 0:
        raise DataValidationError(f"no usable rows left in the {split} data: {report.summary()}")
    log = logger.warning if (report.invalid or report.dropped or report.truncated or report.flagged) else logger.info
    log("Data report: %s", report.summary())
    return PreparedData(tokenized, report, layout, template)


def _row_label(responses: list[str], targets: dict[str, Any]) -> tuple:
    """What a row says about its responses, independent of the order they are listed in: each response with its
    rank (ranked) or position (pairwise: chosen first), plus the row's scalar targets (scores, margin)."""
    per_response = next((v for v in targets.values() if isinstance(v, list)), range(len(responses)))
    scalars = tuple(
        None if (isinstance(v, float) and v != v) else v for v in targets.values() if not isinstance(v, list)
    )
    return tuple(sorted(zip(responses, per_response))), scalars


def _handle_duplicates(
    parsed: Dataset, targets: tuple[str, ...], report: DataReport, split: str, duplicates: str, conflicts: str
) -> Dataset:
    """Find repeated rows (same prompt and responses, same label) and conflicting ones (same prompt and responses,
    different labels: A > B in one row and B > A in another, or two scores for one response); apply the policies."""
    columns = parsed.select_columns(["row", "_prompt", "_responses", *targets]).to_dict()
    first_label: dict[tuple, tuple] = {}
    first_row: dict[tuple, int] = {}
    duplicate, conflicting = [], set()
    for i, (row, prompt, responses) in enumerate(zip(columns["row"], columns["_prompt"], columns["_responses"])):
        key = (prompt, tuple(sorted(responses)))
        label = _row_label(responses, {name: columns[name][i] for name in targets})
        if key not in first_label:
            first_label[key], first_row[key] = label, row
        elif first_label[key] == label:
            duplicate.append(row)
        else:
            conflicting.update((first_row[key], row))
    conflicting_rows = sorted(conflicting)
    if conflicting_rows and conflicts == "error":
        raise DataValidationError(
            f"{len(conflicting_rows)} rows of the {split} data give the same prompt and responses different labels, "
            f"e.g. rows {conflicting_rows[:MAX_PROBLEMS_SHOWN]}. Set `conflicting_rows: keep` or `drop`."
        )
    drop: set[int] = set()
    for name, rows, policy in (("duplicate", duplicate, duplicates), ("conflicting", conflicting_rows, conflicts)):
        if not rows:
            continue
        report.note_rows(name, rows)
        if policy == "drop":
            report.dropped[name] += len(rows)
            drop.update(rows)
        else:
            report.flagged[name] += len(rows)
    if drop:
        parsed = parsed.filter(lambda row: row not in drop, input_columns=ROW)
    return parsed


def _check_last_token_not_pad(dataset: Dataset, pad_token_id: int | None, split: str) -> None:
    """The standard sequence-classification head reads the reward at the last token that is not the pad token,
    so a sequence must never end with the pad token; otherwise training and export would disagree."""
    if pad_token_id is None:
        return
    for row, prompt_ids, responses in zip(dataset[ROW], dataset[PROMPT_IDS], dataset[RESPONSE_IDS]):
        for response in responses:
            last = response[-1] if response else (prompt_ids[-1] if prompt_ids else None)
            if last == pad_token_id:
                raise DataValidationError(
                    f"row {row} of the {split} data ends with the pad token (id {pad_token_id}); the reward would "
                    "be read at the wrong token. Choose another pad token (`pad_token`) or remove it from the text."
                )
