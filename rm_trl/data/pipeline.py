"""From a raw dataset to tokenized rows: detect the layout, validate, parse, tokenize, apply the length policy.

Each loss family supplies a `RowSchema` (how to detect its layout and parse one row); the rest is shared. Every
row that is not kept is counted in the split's `DataReport`, with example row numbers, and named in
`PreparedData.not_kept`. `purpose="score"` prepares data for scoring instead of training: rules that only matter
for learning (ties, identical responses, duplicates, targets) are off, and invalid rows are marked, not raised.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset

from .formats import FORMATS, ChatRenderer, Layout, RowSchema
from .formats.pairwise import DEFAULT_TURN_MARKERS
from .formats.stepwise import DEFAULT_STEP_SEPARATOR, STEPWISE, steps_cut_after_error
from .report import DataReport, DataValidationError
from .steps import STEPS_DROPPED_COLUMN, StepTokens, resolve_step_separator
from .tokenize import (
    LENGTH,
    OK,
    OVERLENGTH,
    PROMPT_IDS,
    RESPONSE_IDS,
    REWARD_POSITIONS,
    STATUS,
    TRUNCATED_STATUSES,
    SequenceTemplate,
    tokenize_rows,
)
from .validate import (
    MAX_PROBLEMS_SHOWN,
    PROBLEMS,
    ROW,
    apply_invalid_policy,
    describe_data,
    detect_layout,
    parse_rows,
    row_problems,
)

logger = logging.getLogger(__name__)

__all__ = [
    "LENGTH",
    "PROMPT_IDS",
    "RESPONSE_IDS",
    "REWARD_POSITIONS",
    "ROW",
    "PreparedData",
    "prepare_dataset",
    "prepare_for_scoring",
]


@dataclass(frozen=True)
class PreparedData:
    dataset: Dataset
    report: DataReport
    layout: Layout
    template: SequenceTemplate
    not_kept: dict[int, str] = field(default_factory=dict)  # source row -> why it is not in `dataset`

    @property
    def target_names(self) -> tuple[str, ...]:
        return self.layout.targets


def is_prepared(dataset: Dataset) -> bool:
    return {PROMPT_IDS, RESPONSE_IDS} <= set(dataset.column_names)  # without positions: the outcome rule


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
    purpose: str = "train",
) -> PreparedData:
    """Validate, parse and tokenize `dataset`; raise or count every row that cannot be used as is."""
    if purpose not in ("train", "score"):
        raise ValueError(f"purpose={purpose!r}; expected 'train' or 'score'")
    training = purpose == "train"
    where = describe_data(dataset, split)
    if len(dataset) == 0:
        raise DataValidationError(f"the {split} dataset is empty" + (where[len(f"the {split} data") :]))
    options = {**(parse_options or {}), "training": training}
    layout = detect_layout(schema, dataset, options, where)
    renderer = ChatRenderer(tokenizer) if layout.conversational else None
    template = SequenceTemplate.for_tokenizer(tokenizer, append_eos=append_eos, conversational=layout.conversational)
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
    policy = invalid_rows if training else "mark"
    not_kept: dict[int, str] = {}

    parsed = parse_rows(
        dataset, schema, layout, options, renderer=renderer, num_proc=num_proc, desc=f"Validating {split} data"
    )
    parsed = apply_invalid_policy(parsed, row_problems(parsed), policy, report, where, not_kept, num_proc)
    steps = _step_tokens(layout, tokenizer, options, report)
    if steps is not None and training and options.get("after_first_error") == "truncate":
        cut = steps_cut_after_error(dataset, parsed[ROW], parsed["labels"])
        if cut:
            report.steps_dropped["after_first_error"] += cut
    if training:
        parsed = _handle_duplicates(parsed, layout.targets, report, split, duplicate_rows, conflicting_rows)

    budget = None if max_length is None else max_length - template.num_special
    if budget is not None and budget < 2:
        raise ValueError(f"max_length={max_length} leaves no room once the special tokens are added")
    tokenized = tokenize_rows(
        parsed.remove_columns(PROBLEMS),
        tokenizer,
        template,
        layout,
        budget,
        truncation,
        training=training,
        num_proc=num_proc,
        desc=f"Tokenizing {split} data",
        steps=steps,
    )
    # responses that tokenize to nothing (control or zero-width characters) are empty responses: invalid rows
    tokenized = apply_invalid_policy(tokenized, row_problems(tokenized), policy, report, where, not_kept, num_proc)
    statuses = Counter(tokenized[STATUS])
    rows_by_status: dict[str, list[int]] = {}
    if len(statuses) > 1 or (statuses and OK not in statuses):
        for row, status in zip(tokenized[ROW], tokenized[STATUS]):
            if status != OK:
                rows_by_status.setdefault(status, []).append(row)
    if statuses.get(OVERLENGTH) and truncation == "error" and training:
        rows = rows_by_status[OVERLENGTH]
        raise DataValidationError(
            f"{len(rows)} row(s) of {where} do not fit in max_length={max_length} tokens, e.g. rows "
            f"{rows[:MAX_PROBLEMS_SHOWN]}. Raise max_length, or choose a truncation policy: "
            "truncate_prompt (keep responses whole, cut the prompt from the left), keep_start, or drop."
        )
    for status, rows in rows_by_status.items():
        if status in TRUNCATED_STATUSES:
            report.truncated[status] += len(rows)
        else:
            reason = "overlength" if status == OVERLENGTH else status
            report.dropped[reason] += len(rows)
            not_kept.update((row, f"dropped: {reason.replace('_', ' ')}") for row in rows)
        report.note_rows(status, rows)
    ending_with_pad = _rows_ending_with_pad(tokenized, tokenizer.pad_token_id)
    if ending_with_pad and training:
        raise DataValidationError(
            f"row {ending_with_pad[0]} of {where} ends with the pad token (id {tokenizer.pad_token_id}); the reward "
            "would be read at the wrong token. Choose another pad token (`pad_token`) or remove it from the text."
        )
    for row in ending_with_pad:  # scoring: mark the row instead of reading the reward at the wrong token
        not_kept[row] = f"dropped: the sequence ends with the pad token (id {tokenizer.pad_token_id})"
        report.dropped["ends_with_pad"] += 1
    dropped = set(rows_by_status) - set(TRUNCATED_STATUSES)
    if dropped or ending_with_pad:
        pad_rows = set(ending_with_pad)
        tokenized = tokenized.filter(
            lambda row, s: s not in dropped and row not in pad_rows, input_columns=[ROW, STATUS], num_proc=num_proc
        )
    if STEPS_DROPPED_COLUMN in tokenized.column_names:
        lost = sum(tokenized[STEPS_DROPPED_COLUMN])
        if lost:
            report.steps_dropped["overlength"] += lost
        tokenized = tokenized.remove_columns(STEPS_DROPPED_COLUMN)
    tokenized = tokenized.remove_columns([STATUS, PROBLEMS])
    report.rows_out = len(tokenized)
    if report.rows_out == 0 and training:
        raise DataValidationError(f"no usable rows left in {where}: {report.summary()}")
    log = logger.warning if (report.invalid or report.dropped or report.truncated or report.flagged) else logger.info
    log("Data report: %s", report.summary())
    return PreparedData(tokenized, report, layout, template, not_kept)


def prepare_for_scoring(
    dataset: Dataset,
    kind: str,
    tokenizer,
    *,
    max_length: int | None,
    append_eos: bool | None,
    truncation: str = "truncate_prompt",
    turn_markers: tuple[str, ...] | None = None,
    num_proc: int | None = None,
    parse_options: dict[str, Any] | None = None,
) -> PreparedData:
    """Prepare `kind` data (pairwise, rated, ranked, stepwise) for scoring, as `rm-trl score` does: every row that
    can be scored is kept; the rest are in `not_kept`, each with the field at fault. Targets are not read;
    `parse_options` are the format's own (stepwise: the model's `step_separator` and `steps_as_prefixes`)."""
    if turn_markers is None:
        turn_markers = DEFAULT_TURN_MARKERS
    return prepare_dataset(
        dataset,
        FORMATS[kind].schema,
        tokenizer,
        split="input",
        max_length=max_length,
        truncation=truncation,
        invalid_rows="mark",
        append_eos=append_eos,
        num_proc=num_proc,
        parse_options={"turn_markers": tuple(turn_markers), **(parse_options or {})},
        purpose="score",
    )


def _row_label(responses: list[str], targets: dict[str, Any]) -> tuple:
    """What a row says about its responses, independent of the order they are listed in: each response with its
    rank (ranked) or position (pairwise: chosen first), plus the row's other targets (scores, margin; a
    per-position list such as stepwise `labels` as a whole), NaN read as missing."""

    def plain(v: Any) -> Any:
        if isinstance(v, list):
            return tuple(plain(x) for x in v)
        return None if (isinstance(v, float) and v != v) else v

    per_response = next(
        (v for v in targets.values() if isinstance(v, list) and len(v) == len(responses)), range(len(responses))
    )
    scalars = tuple(plain(v) for v in targets.values() if v is not per_response)
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


def _step_tokens(layout: Layout, tokenizer, options: dict[str, Any], report: DataReport) -> StepTokens | None:
    """A stepwise layout's separator, resolved to its one token id (an error when the tokenizer lacks it)."""
    if layout.kind != STEPWISE:
        return None
    separator = options.get("step_separator", DEFAULT_STEP_SEPARATOR)
    steps = StepTokens(separator, resolve_step_separator(tokenizer, separator), bool(options.get("steps_as_prefixes")))
    report.settings.update(step_separator=separator, steps_as_prefixes=steps.as_prefixes)
    return steps


def _rows_ending_with_pad(dataset: Dataset, pad_token_id: int | None) -> list[int]:
    """The standard sequence-classification head reads the reward at the last token that is not the pad token,
    so a sequence must never end with the pad token; otherwise training and export would disagree."""
    if pad_token_id is None:
        return []
    rows = []
    for row, prompt_ids, responses in zip(dataset[ROW], dataset[PROMPT_IDS], dataset[RESPONSE_IDS]):
        for response in responses:
            last = response[-1] if response else (prompt_ids[-1] if prompt_ids else None)
            if last == pad_token_id:
                rows.append(row)
                break
    return rows
