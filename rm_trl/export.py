"""The export contract: what a saved rm-trl reward model records about itself, its model card, and checks.

The saved folder is a standard sequence-classification checkpoint (safetensors + config + tokenizer). Its
`config.json` carries an `rm_trl` entry saying how the model was trained and how to feed it (reward token rule,
pad token, EOS rule, truncation, max length), so any consumer can reproduce the training-time scores.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

logger = logging.getLogger(__name__)

METADATA_KEY = "rm_trl"
PROBE_TEXTS = (
    "Human: What is the capital of France?\n\nAssistant: Paris.",
    "  spaces,\ttabs\n\nand newlines  ",
    "Ünïcödé, emoji 😀 and digits 12345.",
)


def reward_token_rule(model) -> str:
    """How the architecture's head picks the token it scores."""
    if hasattr(model, "score"):
        return "last_non_pad_token"
    return "architecture_pooler"  # e.g. BERT's [CLS] pooler


def get_metadata(model) -> dict[str, Any] | None:
    return getattr(model.config, METADATA_KEY, None)


def write_model_card(
    output_dir: str,
    metadata: dict[str, Any],
    metrics: dict[str, float] | None = None,
    model_ref: str | None = None,
) -> str:
    """Write `README.md` (a Hub model card) describing the reward model and how to use it."""
    ref = model_ref or output_dir
    base = metadata.get("base_model") or "unknown"
    eos_note = (
        "Append the tokenizer's EOS token to each response, as in training."
        if metadata.get("append_eos")
        else "Do not append an EOS token: training did not."
    )
    metric_lines = "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted((metrics or {}).items()) if _is_number(v))
    reports = metadata.get("data", {})
    data_lines = "\n".join(f"- {split}: {summary}" for split, summary in reports.items())
    card = f"""---
library_name: transformers
pipeline_tag: text-classification
tags:
- rm-trl
- reward-model
- {metadata.get("family", "reward")}
base_model: {base}
---

# Reward model trained with rm-trl

- Base model: `{base}`
- Loss family: **{metadata.get("family")}**, loss `{metadata.get("loss")}`
- Reward read at: `{metadata.get("reward_token")}`; pad token `{metadata.get("pad_token")}`; right padding
- Max length: {metadata.get("max_length")}; over-length policy: `{metadata.get("truncation")}`
- Data format: {metadata.get("format")}

## Data
{data_lines or "- (not recorded)"}

## Evaluation
| metric | value |
|---|---|
{metric_lines or "| (none) | |"}

## Usage

The score of a response is the single logit of a standard sequence-classification forward on `prompt + response`.
{eos_note}

```python
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{ref}")
model = AutoModelForSequenceClassification.from_pretrained("{ref}")
text = prompt + response{" + tokenizer.eos_token" if metadata.get("append_eos") else ""}
with torch.no_grad():
    reward = model(**tokenizer(text, return_tensors="pt")).logits[0, 0].item()
```

With TRL's online trainers: `GRPOTrainer(..., reward_funcs="{ref}")`.
"""
    path = os.path.join(output_dir, "README.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(card)
    return path


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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


def fold_reward_head(model, weights: list[float]):
    """Return a copy of `model` with one output: `sum_a weights[a] * output_a`.

    The last linear layer of the head (the one with `num_labels` outputs) is replaced by its weighted row sum,
    which is exact because nothing non-linear follows it. Consumers that read `logits[:, 0]` (TRL, PPO pipelines)
    then get the folded reward.
    """
    import copy

    import torch

    num_labels = model.config.num_labels
    if len(weights) != num_labels:
        raise ValueError(f"{len(weights)} weights for {num_labels} outputs")
    name = None
    for module_name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and module.out_features == num_labels:
            name = module_name
    if name is None:
        raise ValueError("no linear layer with num_labels outputs found in the reward head")
    folded = copy.deepcopy(model)
    parent_name, _, attr = name.rpartition(".")
    parent = folded.get_submodule(parent_name) if parent_name else folded
    old = getattr(parent, attr)
    w = torch.tensor(weights, dtype=old.weight.dtype, device=old.weight.device)
    new = torch.nn.Linear(
        old.in_features, 1, bias=old.bias is not None, device=old.weight.device, dtype=old.weight.dtype
    )
    with torch.no_grad():
        new.weight.copy_(w @ old.weight)
        if old.bias is not None:
            new.bias.copy_((w @ old.bias).reshape(1))
    setattr(parent, attr, new)
    folded.config.num_labels = 1
    folded.config.id2label = {0: "reward"}
    folded.config.label2id = {"reward": 0}
    folded.num_labels = 1
    return folded
