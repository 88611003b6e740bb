"""What every data format shares: the parsed-row type, the layout, chat rendering and value checks.

Every format ends up as the same thing, a `ParsedRow`: one prompt and K responses (K = 2 for a pair, chosen
first; K = 1 for a rated response; K >= 2 for a ranked list), plus the row's training targets. Tokenization,
truncation, collation and the forward pass never look at formats again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..report import DataValidationError, RowProblem

KNOWN_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
FLOAT32_MAX = 3.4028234663852886e38  # targets are float32 tensors: a larger value becomes inf and the loss NaN


@dataclass(frozen=True)
class Layout:
    """How a dataset's rows are laid out, detected once per dataset.

    `targets` names the values `parse` returns per row: a float per row (a margin, a score) or a list with one
    float per response (ranks). `fields` names every column `parse` reads: a value of a field the loader had to set
    aside (see `rm_trl.data.columns`) makes the row invalid; one in another column does not.
    """

    kind: str
    implicit_prompt: bool = False
    conversational: bool = False
    targets: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        prompt = "implicit prompt" if self.implicit_prompt else "explicit prompt"
        style = "conversational" if self.conversational else "plain text"
        targets = f", targets {list(self.targets)}" if self.targets else ""
        return f"{self.kind} ({prompt}, {style}{targets})"


@dataclass
class ParsedRow:
    """One row ready for tokenization: prompt text, response texts, and the row's targets."""

    prompt: str
    responses: list[str]
    targets: dict[str, float | list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class RowSchema:
    """What a loss family tells the pipeline about its data.

    `detect(column_names, features, **options) -> Layout` raises `DataValidationError` for missing columns (the
    layout comes from the column types, so every row counts, not the first);
    `parse(row, index, layout, renderer=..., **options) -> ParsedRow | list[RowProblem]` checks one row.
    Both take `training` (default True): False when scoring, where rules that only matter for learning (ties,
    identical responses, a missing gold score) do not apply and targets are not read.
    """

    name: str
    detect: Callable[..., Layout]
    parse: Callable[..., ParsedRow | list[RowProblem]]


def require_columns(kind: str, column_names: Sequence[str], required: Sequence[str], optional: Sequence[str]) -> None:
    missing = [c for c in required if c not in column_names]
    if missing:
        raise DataValidationError(
            f"{kind} data needs columns {list(required)} (optional: {list(optional)}); "
            f"missing {missing}, found {sorted(column_names)}"
        )


class ChatRenderer:
    """Renders message lists with the tokenizer's chat template, splitting prompt from response text."""

    def __init__(self, tokenizer):
        if not getattr(tokenizer, "chat_template", None):
            raise DataValidationError(
                "the data is conversational (lists of role/content messages) but the tokenizer has no chat template; "
                "set `tokenizer.chat_template` or use plain-text data"
            )
        self.tokenizer = tokenizer

    def render(self, prompt: list[dict], response: list[dict]) -> tuple[str, str]:
        """Return `(prompt_text, response_text)` with `prompt_text + response_text` == the whole conversation.

        Keys whose value is null are left out: Arrow gives every message of a column the keys of all of them, so a
        `name` or `tool_calls` in one message would otherwise reach the template as null in every other one.
        """
        prompt, response = without_nulls(prompt), without_nulls(response)
        prompt_text = self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        full_text = self.tokenizer.apply_chat_template(prompt + response, tokenize=False)
        if not full_text.startswith(prompt_text):
            raise ValueError("the chat template does not render the prompt as a prefix of the whole conversation")
        return prompt_text, full_text[len(prompt_text) :]


def without_nulls(messages: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if v is not None} for m in messages]


def holds_messages(feature: Any, depth: int = 1) -> bool:
    """Whether a column's feature is a list (`depth` levels of lists) of objects: message lists."""
    for _ in range(depth):
        if isinstance(feature, list):
            feature = feature[0] if feature else None
        else:
            feature = getattr(feature, "feature", None)  # List / Sequence / LargeList
    return isinstance(feature, dict)


def response_field(layout: Layout, k: int) -> str:
    """The field holding response `k` of a parsed row, for messages: as its format declares it (a schema no format
    registers names a list of completions)."""
    from . import FORMATS  # the registry is built from the format modules, which import this one

    return FORMATS[layout.kind].response_field(k) if layout.kind in FORMATS else f"completions[{k}]"


def check_text(row: int, name: str, value: Any, problems: list[RowProblem], allow_empty: bool = False) -> bool:
    if value is None:
        problems.append(RowProblem(row, name, "missing", "value is None"))
        return False
    if not isinstance(value, str):
        problems.append(RowProblem(row, name, "wrong_type", f"expected text, got {type(value).__name__}"))
        return False
    if not allow_empty and not value.strip():
        problems.append(RowProblem(row, name, "empty", "text is empty or whitespace only"))
        return False
    return True


def check_messages(row: int, name: str, value: Any, problems: list[RowProblem], last_role: str | None) -> bool:
    if value is None:
        problems.append(RowProblem(row, name, "missing", "value is None"))
        return False
    if not isinstance(value, list):
        problems.append(RowProblem(row, name, "wrong_type", f"expected a list of messages, got {type(value).__name__}"))
        return False
    if not value:
        problems.append(RowProblem(row, name, "empty", "message list is empty"))
        return False
    for i, message in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(message, dict):
            problems.append(RowProblem(row, where, "bad_message", f"expected a dict, got {type(message).__name__}"))
            return False
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or role not in KNOWN_ROLES:
            problems.append(RowProblem(row, where, "bad_message", f"unknown role {role!r}"))
            return False
        if not isinstance(content, str):
            problems.append(RowProblem(row, where, "bad_message", "message has no text 'content'"))
            return False
    if last_role is not None:
        if value[-1]["role"] != last_role:
            problems.append(RowProblem(row, name, "bad_message", f"last message must be from the {last_role}"))
            return False
        if not value[-1]["content"].strip():
            problems.append(RowProblem(row, name, "empty", "the final message is empty"))
            return False
    return True


def check_response(row: int, name: str, value: Any, problems: list[RowProblem], conversational: bool) -> bool:
    """A response: non-empty text, or a message list ending with a non-empty assistant message."""
    if conversational:
        return check_messages(row, name, value, problems, "assistant")
    return check_text(row, name, value, problems)


def check_prompt(row: int, value: Any, problems: list[RowProblem], conversational: bool) -> bool:
    """A prompt: text (may be empty), or a message list."""
    if conversational:
        return check_messages(row, "prompt", value, problems, None)
    return check_text(row, "prompt", value, problems, allow_empty=True)


def check_number(row: int, name: str, value: Any, problems: list[RowProblem]) -> bool:
    if value is None:
        problems.append(RowProblem(row, name, "missing", "value is None"))
        return False
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(RowProblem(row, name, "wrong_type", f"expected a number, got {type(value).__name__}"))
        return False
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(RowProblem(row, name, "not_finite", f"value {value} is not finite"))
        return False
    if abs(value) > FLOAT32_MAX:
        message = f"value {float(value):g} does not fit in float32 (at most 3.4e38 in size)"
        problems.append(RowProblem(row, name, "out_of_range", message))
        return False
    return True


def render_responses(
    index: int, prompt: Any, responses: list[Any], renderer: ChatRenderer | None, field_name: str
) -> tuple[str, list[str]] | list[RowProblem]:
    """Render a prompt and its responses to text (chat template for message lists); identity for plain text."""
    if renderer is None:
        return prompt, list(responses)
    try:
        texts = [renderer.render(prompt, response) for response in responses]
    except Exception as exc:  # template errors are data errors for this row
        return [RowProblem(index, field_name, "template_error", f"chat template failed: {exc}")]
    return texts[0][0], [text for _, text in texts]
