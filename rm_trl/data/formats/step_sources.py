"""Source formats of step labels, converted to `stepwise` rows (`formats/stepwise.py`) by the registry's converters.

Math-Shepherd (`math_shepherd`): one text holding the problem and the solution, a step tag after each step, and the
same text with `+` (correct) or `-` (wrong) in place of each tag:

    {"input": "Problem ... Step 1: ... ки\\nStep 2: ... ки", "label": "Problem ... Step 1: ... +\\nStep 2: ... -"}

The tag is `step_tag` (default `ки`). The prompt is the text before the first `Step 1:`; each step is the text up to
its tag, kept exactly (whitespace included), so `prompt + "".join(steps)` is the input without its tags. Both texts
must agree outside the tags; a mismatch, a tag whose label is neither `+` nor `-`, a row without `Step 1:` or
without tags, and text after the last tag (a step without a label) are row problems naming the step. Whitespace
after the last tag is dropped.

PRM800K (`prm800k`): step ratings -1 (wrong), 0 (neutral), 1 (correct), null (unrated: masked), either flat

    {"prompt": str, "completions": [step, ...], "ratings": [-1 | 0 | 1 | null, ...]}

or the native nested JSON of openai/prm800k:

    {"question": {"problem": str, ...}, "label": {"steps": [{"completions": [{"text", "rating"}, ...],
     "chosen_completion": int | null, "human_completion": ...}, ...]}}

where each step's completion is the chosen one (`chosen_completion`), else the first completion that has a rating
(human-written completions are not used; a step with neither is a row problem). Rating 0 maps by `neutral_rating`:
`positive` (true), `negative` (false) or `masked` (null, the default: a neutral step neither helps nor hurts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from datasets import Dataset

from ...metrics import Evaluation
from ...metrics.stepwise import stepwise_metrics
from ..report import DataValidationError, RowProblem
from .common import ChatRenderer, Layout, ParsedRow, RowSchema, require_columns
from .spec import ColumnSignature, FeedbackFormat, ScoredRows
from .stepwise import STEPWISE, detect_stepwise_layout, evaluate_stepwise, parse_stepwise_row, write_step_scores

if TYPE_CHECKING:
    from ..arguments import DataArguments

MATH_SHEPHERD = "math_shepherd"
PRM800K = "prm800k"
DEFAULT_STEP_TAG = "ки"
FIRST_STEP = "Step 1:"
NEUTRAL_RATINGS = ("masked", "positive", "negative")
_NEUTRAL = {"positive": True, "negative": False, "masked": None}

StepRow = dict[str, Any]  # {"prompt", "completions", "labels"}


def math_shepherd_row(
    row: dict[str, Any], index: int, step_tag: str = DEFAULT_STEP_TAG, training: bool = True
) -> StepRow | list[RowProblem]:
    """One Math-Shepherd row as a stepwise row, or its problems (see the module docstring). When scoring
    (`training=False`) the label text is not read and may be absent."""

    def problem(field: str, reason: str, message: str) -> list[RowProblem]:
        return [RowProblem(index, field, reason, message)]

    if not isinstance(step_tag, str) or not step_tag:
        raise ValueError(f"step_tag={step_tag!r} must be a non-empty text")
    text = row.get("input")
    label = row.get("label") if training else "".join(p + "+" for p in str(text).split(step_tag)[:-1])
    if not training and isinstance(text, str):
        label += text.split(step_tag)[-1]
    for name, value in (("input", text), ("label", label)):
        if not isinstance(value, str):
            got = "None" if value is None else type(value).__name__
            return problem(name, "wrong_type" if value is not None else "missing", f"expected text, got {got}")
    pieces = text.split(step_tag)
    if len(pieces) < 2:
        return problem("input", "no_steps", f"no step tag {step_tag!r} in the input")
    if pieces[-1].strip():
        return problem("input", "unlabelled_step", f"text after the last step tag {step_tag!r} has no label")
    pos, labels = 0, []
    for k, piece in enumerate(pieces[:-1]):
        if label[pos : pos + len(piece)] != piece:
            return problem(
                f"label (step {k})", "label_mismatch", "the label text differs from the input before this tag"
            )
        pos += len(piece)
        mark = label[pos : pos + 1]
        if mark not in ("+", "-"):
            return problem(f"label (step {k})", "bad_label", f"expected '+' or '-' where the tag is, got {mark!r}")
        labels.append(mark == "+")
        pos += 1
    if label[pos:] != pieces[-1]:
        return problem("label", "label_mismatch", "the label text differs from the input after the last tag")
    head = pieces[0]
    start = head.find(FIRST_STEP)
    if start < 0:
        return problem("input", "no_first_step", f"no {FIRST_STEP!r} before the first tag: cannot tell the prompt")
    steps = [head[start:], *pieces[1:-1]]
    return {"prompt": head[:start], "completions": steps, "labels": labels}


def _rating(value: Any, neutral: str) -> tuple[bool, bool | None]:
    """(valid, label) of one PRM800K rating."""
    if value is None:
        return True, None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in (-1, 0, 1):
        return False, None
    return True, {1: True, -1: False}.get(int(value), _NEUTRAL[neutral])


def _native_steps(row: dict[str, Any], index: int) -> tuple[str, list[Any], list[Any]] | list[RowProblem]:
    """Prompt, step texts and ratings of a native PRM800K row."""
    question, label = row.get("question"), row.get("label")
    problem_text = question.get("problem") if isinstance(question, dict) else None
    if not isinstance(problem_text, str):
        return [RowProblem(index, "question.problem", "missing", "expected the problem's text")]
    steps = label.get("steps") if isinstance(label, dict) else None
    if not isinstance(steps, list):
        return [RowProblem(index, "label.steps", "wrong_type", "expected a list of steps")]
    texts, ratings = [], []
    for k, step in enumerate(steps):
        where = f"label.steps[{k}]"
        options = step.get("completions") if isinstance(step, dict) else None
        if not isinstance(options, list) or not all(isinstance(c, dict) for c in options):
            return [RowProblem(index, where, "wrong_type", "expected a step with a list of completions")]
        chosen = step.get("chosen_completion")
        if isinstance(chosen, int) and not isinstance(chosen, bool) and 0 <= chosen < len(options):
            picked = options[chosen]
        else:
            picked = next((c for c in options if c.get("rating") is not None), None)
        if picked is None:
            return [RowProblem(index, where, "no_completion", "no chosen or rated completion for this step")]
        texts.append(picked.get("text"))
        ratings.append(picked.get("rating"))
    return problem_text, texts, ratings


def prm800k_row(
    row: dict[str, Any], index: int, neutral_rating: str = "masked", training: bool = True
) -> StepRow | list[RowProblem]:
    """One PRM800K row (flat or native) as a stepwise row, or its problems (see the module docstring). When scoring
    (`training=False`) ratings are not read and may be absent."""
    if neutral_rating not in NEUTRAL_RATINGS:
        raise ValueError(f"neutral_rating={neutral_rating!r}; expected one of {NEUTRAL_RATINGS}")
    if "question" in row:
        native = _native_steps(row, index)
        if isinstance(native, list):
            return native
        prompt, steps, ratings = native
        rating_field = "label.steps[{}].rating"
    else:
        prompt, steps, ratings = row.get("prompt"), row.get("completions"), row.get("ratings")
        rating_field = "ratings[{}]"
        if not training and isinstance(steps, list):
            ratings = [None] * len(steps)
        if not isinstance(ratings, list) or not isinstance(steps, list) or len(ratings) != len(steps):
            n = len(steps) if isinstance(steps, list) else "?"
            got = len(ratings) if isinstance(ratings, list) else type(ratings).__name__
            return [RowProblem(index, "ratings", "length_mismatch", f"expected {n} ratings (one per step), got {got}")]
    labels = []
    for k, value in enumerate(ratings):
        valid, label = _rating(value, neutral_rating)
        if not valid:
            message = f"expected a rating -1, 0, 1 or null, got {value!r:.40}"
            return [RowProblem(index, rating_field.format(k), "bad_rating", message)]
        labels.append(label)
    return {"prompt": prompt, "completions": steps, "labels": labels}


def _source_parse(convert, **defaults):
    """A source format's `parse`: the row converted, then checked as a stepwise row (same problems)."""

    def parse(
        row: dict[str, Any], index: int, layout: Layout, *, renderer: ChatRenderer | None, **options: Any
    ) -> ParsedRow | list[RowProblem]:
        keys = {k: options.get(k, v) for k, v in defaults.items()}
        keys["training"] = options.get("training", True)
        converted = convert(row, index, **keys)
        if isinstance(converted, list):
            return converted
        step_layout = Layout(STEPWISE, conversational=False, targets=layout.targets, fields=layout.fields)
        return parse_stepwise_row(converted, index, step_layout, renderer=renderer, **options)

    return parse


def _detect(required: tuple[str, ...], alternative: tuple[str, ...] = ()):
    def detect(column_names: Sequence[str], features: dict[str, Any], *, training: bool = True, **options: Any):
        kind = MATH_SHEPHERD if "input" in required else PRM800K
        columns = alternative if alternative and set(alternative) <= set(column_names) else required
        require_columns(kind, column_names, columns if training else columns[:-1], ())
        detect_stepwise_layout(["prompt", "completions", "labels"], {}, training=training, **options)  # options
        targets = ("labels",) if training else ()
        return Layout(kind=kind, targets=targets, fields=columns)

    return detect


def convert_rows(dataset: Dataset, convert, **options: Any) -> tuple[Dataset, dict[str, Any]]:
    """Every row converted to a stepwise row; raises for an invalid one (the source validation runs first)."""
    rows, steps, masked = [], 0, 0
    for index, row in enumerate(dataset):
        converted = convert(row, index, **options)
        if isinstance(converted, list):
            raise DataValidationError("cannot convert: " + "; ".join(str(p) for p in converted), converted)
        rows.append(converted)
        steps += len(converted["labels"])
        masked += sum(label is None for label in converted["labels"])
    stats = {"rows_out": len(rows), "steps": steps, "masked_steps": masked}
    return Dataset.from_list(rows), stats


def _ms_to_stepwise(dataset: Dataset, args: DataArguments) -> tuple[Dataset, dict[str, Any]]:
    return convert_rows(dataset, math_shepherd_row, step_tag=args.step_tag)


def _prm_to_stepwise(dataset: Dataset, args: DataArguments) -> tuple[Dataset, dict[str, Any]]:
    converted, stats = convert_rows(dataset, prm800k_row, neutral_rating=args.neutral_rating)
    return converted, {"neutral_rating": args.neutral_rating, **stats}


def _evaluate_converted(convert, **defaults):
    def evaluate(scored: ScoredRows) -> Evaluation:
        converted = [convert(row, i, **defaults) for i, row in enumerate(scored.raw)]
        rows = [c if isinstance(c, dict) else {"prompt": "", "completions": [], "labels": []} for c in converted]
        raw = Dataset.from_dict({"prompt": [str(r["prompt"]) for r in rows], "labels": [r["labels"] for r in rows]})
        return evaluate_stepwise(ScoredRows(raw, scored.rows, scored.rewards, scored.lengths, scored.score_column))

    return evaluate


def _format(name, schema, signatures, hint, convert, to_stepwise, **defaults) -> FeedbackFormat:
    return FeedbackFormat(
        name=name,
        schema=schema,
        signatures=signatures,
        columns_hint=hint,
        headline="step_f1",
        metrics=stepwise_metrics,
        evaluate=_evaluate_converted(convert, **defaults),
        write_scores=write_step_scores,
        converters={STEPWISE: to_stepwise},
        response_field="completions[{}]".format,
        histogram_labels=("correct steps", "wrong steps"),
    )


MATH_SHEPHERD_SCHEMA = RowSchema(
    MATH_SHEPHERD, _detect(("input", "label")), _source_parse(math_shepherd_row, step_tag=DEFAULT_STEP_TAG)
)
PRM800K_SCHEMA = RowSchema(
    PRM800K,
    _detect(("prompt", "completions", "ratings"), alternative=("question", "label")),
    _source_parse(prm800k_row, neutral_rating="masked"),
)
MATH_SHEPHERD_FORMAT = _format(
    MATH_SHEPHERD,
    MATH_SHEPHERD_SCHEMA,
    (ColumnSignature(frozenset({"input", "label"}), 16),),
    "input/label with step tags",
    math_shepherd_row,
    _ms_to_stepwise,
    step_tag=DEFAULT_STEP_TAG,
)
PRM800K_FORMAT = _format(
    PRM800K,
    PRM800K_SCHEMA,
    (ColumnSignature(frozenset({"completions", "ratings"}), 14), ColumnSignature(frozenset({"question", "label"}), 17)),
    "completions/ratings or question/label",
    prm800k_row,
    _prm_to_stepwise,
    neutral_rating="masked",
)
