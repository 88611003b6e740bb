"""Dataset formats: detection from the columns, and turning one row into prompt text + response texts.

Every format ends up as the same thing, a `ParsedRow`: one prompt and K responses (K = 2 for a pair, chosen
first), plus the row's training targets (a margin, scores, ranks). Tokenization, truncation, collation and the
forward pass then never look at formats again.

Pairwise layouts (detected from the column names and the first row):
- explicit prompt: `{"prompt": str, "chosen": str, "rejected": str}`
- implicit prompt: `{"chosen": str, "rejected": str}` holding whole transcripts (raw hh-rlhf); the prompt is their
  shared prefix, cut after the last turn marker (e.g. `"\\n\\nAssistant:"`).
- conversational: the same with lists of `{"role", "content"}` messages, rendered with the tokenizer's chat
  template (the prompt with `add_generation_prompt=True`, each response as the rest of the conversation).
- an optional numeric `margin` column (Llama 2's preference strength).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .report import DataValidationError, RowProblem

PAIRWISE = "pairwise"
KNOWN_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})


@dataclass(frozen=True)
class Layout:
    """How a dataset's rows are laid out, detected once per dataset."""

    kind: str
    implicit_prompt: bool = False
    conversational: bool = False
    has_margin: bool = False

    def describe(self) -> str:
        prompt = "implicit prompt" if self.implicit_prompt else "explicit prompt"
        style = "conversational" if self.conversational else "plain text"
        margin = ", with margin" if self.has_margin else ""
        return f"{self.kind} ({prompt}, {style}{margin})"


@dataclass
class ParsedRow:
    """One row ready for tokenization: prompt text, response texts, and the row's targets."""

    prompt: str
    responses: list[str]
    targets: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RowSchema:
    """What a loss family tells the pipeline about its data.

    `detect(column_names, first_row) -> Layout` raises `DataValidationError` for missing columns;
    `parse(row, index, layout, renderer=..., **options) -> ParsedRow | list[RowProblem]` checks one row;
    `target_names(layout)` lists the float targets `parse` puts in `ParsedRow.targets` (collated per row).
    """

    name: str
    detect: Callable[[Sequence[str], dict[str, Any]], Layout]
    parse: Callable[..., ParsedRow | list[RowProblem]]
    target_names: Callable[[Layout], tuple[str, ...]]


def detect_pairwise_layout(column_names: Sequence[str], first_row: dict[str, Any]) -> Layout:
    """Detect the pairwise layout, or raise a `DataValidationError` that says which columns are missing."""
    missing = [c for c in ("chosen", "rejected") if c not in column_names]
    if missing:
        raise DataValidationError(
            f"pairwise data needs columns 'chosen' and 'rejected' (and optionally 'prompt', 'margin'); "
            f"missing {missing}, found {sorted(column_names)}"
        )
    conversational = isinstance(first_row.get("chosen"), list)
    return Layout(
        kind=PAIRWISE,
        implicit_prompt="prompt" not in column_names,
        conversational=conversational,
        has_margin="margin" in column_names,
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
        """Return `(prompt_text, response_text)` with `prompt_text + response_text` == the whole conversation."""
        prompt_text = self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        full_text = self.tokenizer.apply_chat_template(prompt + response, tokenize=False)
        if not full_text.startswith(prompt_text):
            raise ValueError("the chat template does not render the prompt as a prefix of the whole conversation")
        return prompt_text, full_text[len(prompt_text) :]


def split_implicit_prompt(chosen: str, rejected: str, turn_markers: Sequence[str]) -> tuple[str, str, str]:
    """Split two transcripts into (prompt, chosen_response, rejected_response) at the last shared turn marker.

    Without a marker in the shared prefix, the split falls at the last whitespace before the texts differ.
    """
    n = 0
    limit = min(len(chosen), len(rejected))
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    shared = chosen[:n]
    cut = -1
    for marker in turn_markers:
        pos = shared.rfind(marker)
        if pos >= 0:
            cut = max(cut, pos + len(marker))
    if cut < 0:
        cut = max(shared.rfind(" "), shared.rfind("\n"))
        cut = 0 if cut < 0 else cut
    return chosen[:cut], chosen[cut:], rejected[cut:]


def _check_text(row: int, name: str, value: Any, problems: list[RowProblem], allow_empty: bool = False) -> bool:
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


def _check_messages(row: int, name: str, value: Any, problems: list[RowProblem], last_role: str | None) -> bool:
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
        if role not in KNOWN_ROLES:
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


def _check_number(row: int, name: str, value: Any, problems: list[RowProblem]) -> bool:
    if value is None:
        problems.append(RowProblem(row, name, "missing", "value is None"))
        return False
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(RowProblem(row, name, "wrong_type", f"expected a number, got {type(value).__name__}"))
        return False
    if not math.isfinite(value):
        problems.append(RowProblem(row, name, "not_finite", f"value {value} is not finite"))
        return False
    return True


def _common_message_prefix(a: list[dict], b: list[dict]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def parse_pairwise_row(
    row: dict[str, Any],
    index: int,
    layout: Layout,
    *,
    renderer: ChatRenderer | None,
    turn_markers: Sequence[str],
) -> ParsedRow | list[RowProblem]:
    """Validate one pairwise row and return it parsed, or the list of its problems."""
    problems: list[RowProblem] = []
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if layout.conversational:
        ok = _check_messages(index, "chosen", chosen, problems, "assistant")
        ok &= _check_messages(index, "rejected", rejected, problems, "assistant")
        if not layout.implicit_prompt:
            ok &= _check_messages(index, "prompt", row.get("prompt"), problems, None)
    else:
        ok = _check_text(index, "chosen", chosen, problems)
        ok &= _check_text(index, "rejected", rejected, problems)
        if not layout.implicit_prompt:
            ok &= _check_text(index, "prompt", row.get("prompt"), problems, allow_empty=True)
    targets: dict[str, float] = {}
    if layout.has_margin:
        if _check_number(index, "margin", row.get("margin"), problems):
            targets["margin"] = float(row["margin"])
        else:
            ok = False
    if not ok:
        return problems

    if layout.conversational:
        if layout.implicit_prompt:
            n = _common_message_prefix(chosen, rejected)
            prompt_msgs, chosen_msgs, rejected_msgs = chosen[:n], chosen[n:], rejected[n:]
            if not chosen_msgs or not rejected_msgs:
                return [RowProblem(index, "chosen", "identical", "chosen and rejected conversations are identical")]
        else:
            prompt_msgs, chosen_msgs, rejected_msgs = row["prompt"], chosen, rejected
        try:
            prompt, chosen_text = renderer.render(prompt_msgs, chosen_msgs)
            _, rejected_text = renderer.render(prompt_msgs, rejected_msgs)
        except Exception as exc:  # template errors are data errors for this row
            return [RowProblem(index, "chosen", "template_error", f"chat template failed: {exc}")]
    elif layout.implicit_prompt:
        prompt, chosen_text, rejected_text = split_implicit_prompt(chosen, rejected, turn_markers)
    else:
        prompt, chosen_text, rejected_text = row["prompt"], chosen, rejected

    if chosen_text == rejected_text:
        return [RowProblem(index, "rejected", "identical", "chosen and rejected responses are identical")]
    if not chosen_text.strip() or not rejected_text.strip():
        which = "chosen" if not chosen_text.strip() else "rejected"
        return [RowProblem(index, which, "empty", "response is empty once the shared prompt is removed")]
    return ParsedRow(prompt=prompt, responses=[chosen_text, rejected_text], targets=targets)


def _pairwise_targets(layout: Layout) -> tuple[str, ...]:
    return ("margin",) if layout.has_margin else ()


PAIRWISE_SCHEMA = RowSchema(
    name=PAIRWISE, detect=detect_pairwise_layout, parse=parse_pairwise_row, target_names=_pairwise_targets
)
