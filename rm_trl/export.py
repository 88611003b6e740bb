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
    special = metadata.get("special_tokens", {})
    norm = metadata.get("normalization")
    if not norm:
        norm_note = "Rewards are not normalised (raw head output)."
    elif norm.get("applied") == "baked_into_head":
        norm_note = (
            f"Rewards are normalised to mean 0, std 1 on {norm['computed_on']} (raw mean {norm['mean']:.4f}, "
            "std {:.4f}); the normalisation is baked into the head, so every consumer reads normalised "
            "rewards.".format(norm["std"])
        )
    else:
        norm_note = (
            f"Reward statistics on {norm['computed_on']}: mean {norm['mean']:.4f}, std {norm['std']:.4f}, "
            "stored in `config.json` (`rm_trl.normalization`); rm-trl applies them with `--normalize`, "
            "other consumers read raw rewards."
        )
    if metadata.get("trl_path_compatible"):
        trl_note = f'`GRPOTrainer(..., reward_funcs="{ref}")` scores exactly as training did.'
    else:
        trl_note = (
            f"Training framed sequences with special tokens ({special.get('prefix')} ... {special.get('suffix')}), "
            "which TRL's built-in reward-model path (`add_special_tokens=False`, no EOS) does not add. Use "
            f'`reward_funcs=rm_trl.rl.RewardFunction("{ref}")` to score exactly as in training.'
        )
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
- Special tokens around each sequence: {special.get("prefix", [])} prompt + response {special.get("suffix", [])}
- Max length: {metadata.get("max_length")}; over-length policy: `{metadata.get("truncation")}`
- Data format: {metadata.get("format")}
- {norm_note}

## Data
{data_lines or "- (not recorded)"}

## Evaluation
| metric | value |
|---|---|
{metric_lines or "| (none) | |"}

## Usage

The score of a response is the first logit of a standard sequence-classification forward on `prompt + response`.
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

With TRL's online trainers (GRPO, RLOO): {trl_note}

With rm-trl: `rm-trl score --model {ref} --input data.jsonl --output scored.jsonl`, or serve it for a PPO pipeline
with `rm-trl serve --model {ref}` (OpenRLHF's `/get_reward` and a plain `/score`).
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
    name = _last_head_linear(model, num_labels)
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


def _last_head_linear(model, out_features: int) -> str | None:
    import torch

    name = None
    for module_name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and module.out_features == out_features:
            name = module_name
    return name


def bake_normalization(model, mean: float, std: float):
    """Return a copy of a one-output model whose head gives `(reward - mean) / std`, or `None` when the head's
    last layer has no bias (decoder `score` heads): then the statistics are stored and applied by rm-trl."""
    import copy

    import torch

    name = _last_head_linear(model, 1)
    if name is None or model.get_submodule(name).bias is None:
        return None
    baked = copy.deepcopy(model)
    layer = baked.get_submodule(name)
    with torch.no_grad():
        layer.weight.div_(std)
        layer.bias.sub_(mean).div_(std)
    return baked
