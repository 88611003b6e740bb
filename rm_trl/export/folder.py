"""The files around the weights in an export folder: data report, metrics, card, and the tokenizer check."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from ..data.report import save_reports
from .card import write_model_card

logger = logging.getLogger(__name__)

PROBE_TEXTS = (
    "Human: What is the capital of France?\n\nAssistant: Paris.",
    "  spaces,\ttabs\n\nand newlines  ",
    "Ünïcödé, emoji 😀 and digits 12345.",
)


def check_tokenizer_roundtrip(output_dir: str, tokenizer) -> bool:
    """Reload the saved tokenizer with plain `AutoTokenizer` and check it tokenizes like the training tokenizer.

    A mismatch (for example a custom vocabulary saved next to a config whose model type maps to another tokenizer
    class) would make consumers score different tokens than training did; it is logged as a warning.
    """
    from transformers import AutoTokenizer

    reloaded = AutoTokenizer.from_pretrained(output_dir)
    for text in PROBE_TEXTS:
        if reloaded(text)["input_ids"] != tokenizer(text)["input_ids"]:
            logger.warning(
                "The tokenizer saved in %s reloads as %s and tokenizes differently from the training tokenizer (%s). "
                "Consumers that call AutoTokenizer will see different token ids; load the tokenizer class explicitly.",
                output_dir,
                type(reloaded).__name__,
                type(tokenizer).__name__,
            )
            return False
        if reloaded.pad_token_id != tokenizer.pad_token_id:
            logger.warning("The saved tokenizer's pad token differs from training's.")
            return False
    return True


def save_metrics(output_dir: str, metrics: dict[str, float]) -> None:
    with open(os.path.join(output_dir, "eval_results.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)


def finish_export_folder(
    output_dir: str,
    metadata: dict[str, Any],
    data_reports: dict,
    metrics: dict[str, float] | None = None,
    model_ref: str | None = None,
    tokenizer=None,
) -> None:
    """Write what surrounds the weights: `data_report.json`, `eval_results.json`, the card; drop the pickled
    training settings (they stay in checkpoints); with `tokenizer`, check the saved one reloads the same."""
    for folder in (output_dir, os.path.join(output_dir, "adapter")):
        if os.path.isfile(os.path.join(folder, "training_args.bin")):
            os.remove(os.path.join(folder, "training_args.bin"))
    save_reports(data_reports, os.path.join(output_dir, "data_report.json"))
    if metrics:
        save_metrics(output_dir, metrics)
    write_model_card(output_dir, metadata, metrics, model_ref=model_ref)
    if tokenizer is not None:
        check_tokenizer_roundtrip(output_dir, tokenizer)
