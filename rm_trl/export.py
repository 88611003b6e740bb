"""The export contract: what a saved rm-trl reward model records about itself, its model card, and checks.

The saved folder is a standard sequence-classification checkpoint (safetensors + config + tokenizer). Its
`config.json` carries an `rm_trl` entry saying how the model was trained and how to feed it (reward token rule,
pad token, EOS rule, truncation, max length), so any consumer can reproduce the training-time scores.

`rm_trl.consumers` (computed by `consumer_flags` from that metadata) says, per consumer, whether it reads the reward
training defined; `tests/test_consumers.py` runs each consumer's own code against `RewardScorer` and checks every
flag, and `docs/consumers.md` is generated from those runs. Each value starts with a verdict word:
`exact` (equal within 1e-5, possibly "exact: <how>"), `differs: <why>; <what to do>`, or `fails: <why>; ...`.
Keys (see `CONSUMERS`):

- `transformers`, `transformers_left_padding`: `AutoModelForSequenceClassification` + `AutoTokenizer` from the
  folder, `tokenizer(prompt + response [+ eos_token])` as the card shows, right / left padded batches;
- `trl_path`: TRL GRPO / RLOO with `reward_funcs="<folder>"` (`add_special_tokens=False`, nothing appended);
- `trl_reward_function`: TRL GRPO / RLOO with `reward_funcs=rm_trl.rl.RewardFunction("<folder>")`;
- `trl_ppo_eos`, `trl_ppo_pad_is_eos`, `trl_ppo_no_eos`: TRL PPO's `get_reward` (trl <= 1.12; later TRL has no
  PPO) on rollouts that end with EOS under a policy whose pad token differs from EOS / is EOS, and on rollouts cut
  without EOS;
- `rm_trl_score`: `rm-trl score`; `openrlhf_remote`: OpenRLHF's remote reward model (`POST /get_reward`) served by
  `rm-trl serve`.
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


CONSUMERS: dict[str, str] = {
    "transformers": "`AutoModelForSequenceClassification` + `AutoTokenizer`, right padding",
    "transformers_left_padding": "`AutoModelForSequenceClassification` + `AutoTokenizer`, left padding",
    "trl_path": 'TRL GRPO / RLOO, `reward_funcs="<folder>"`',
    "trl_reward_function": 'TRL GRPO / RLOO, `reward_funcs=rm_trl.rl.RewardFunction("<folder>")`',
    "trl_ppo_eos": "TRL PPO (trl <= 1.12), rollouts ending with EOS, policy pad != EOS",
    "trl_ppo_pad_is_eos": "TRL PPO (trl <= 1.12), rollouts ending with EOS, policy pad == EOS",
    "trl_ppo_no_eos": "TRL PPO (trl <= 1.12), rollouts cut without EOS",
    "rm_trl_score": "`rm-trl score`",
    "openrlhf_remote": "OpenRLHF remote reward model (`POST /get_reward`) on `rm-trl serve`",
}


def _verdict(problems: list[tuple[str, str]], exact: str) -> str:
    """`exact` when nothing differs, else `differs: <why>; ...; <what to do>; ...` from `(why, fix)` pairs."""
    if not problems:
        return exact
    why = [p for p, _ in problems]
    fixes = [f for _, f in problems if f]
    return "differs: " + "; ".join(why + list(dict.fromkeys(fixes)))


def consumer_flags(metadata: dict[str, Any]) -> dict[str, str]:
    """Per consumer in `CONSUMERS`: does it read the reward training defined? Derived from what training recorded
    (special tokens, EOS rule, normalisation, reward-token rule), so the flags cannot disagree with the export."""
    special = metadata.get("special_tokens") or {}
    prefix, suffix = list(special.get("prefix") or []), list(special.get("suffix") or [])
    append_eos = bool(metadata.get("append_eos"))
    eos = " + tokenizer.eos_token" if append_eos else ""
    raw = []
    if (metadata.get("normalization") or {}).get("applied") == "stored":
        raw = [
            (
                "reads raw rewards: the normalisation is stored in `rm_trl.normalization`, not baked into the head",
                "apply (reward - mean) / std from `rm_trl.normalization`",
            )
        ]
    pooled = metadata.get("reward_token") == "architecture_pooler"
    left = [("the pooler reads the first position, which left padding fills with pad tokens", "pad on the right")]
    framing = [
        (
            f"TRL adds no special tokens and no EOS; training framed each text as {prefix} ... {suffix}",
            'use rm_trl.rl.RewardFunction("<folder>")',
        )
    ]
    flags = {
        "transformers": _verdict(raw, f"exact: tokenizer(prompt + response{eos})"),
        "transformers_left_padding": _verdict(
            (left if pooled else []) + raw, f"exact: tokenizer(prompt + response{eos}), left padded"
        ),
        "trl_path": _verdict((framing if prefix or suffix else []) + raw, "exact"),
        "trl_reward_function": "exact" + (": applies the stored normalisation" if raw else ""),
        "rm_trl_score": "exact" + (": with --normalize" if raw else ""),
        "openrlhf_remote": "exact: rm-trl serve" + (" --normalize" if raw else ""),
    }
    ppo_keys = ("trl_ppo_eos", "trl_ppo_pad_is_eos", "trl_ppo_no_eos")
    if pooled:
        flags.update(
            dict.fromkeys(
                ppo_keys,
                "fails: PPO applies `model.score` to the backbone's hidden states and this encoder export has a "
                "pooled `classifier` head; serve it with `rm-trl serve` instead",
            )
        )
        return {key: flags[key] for key in CONSUMERS}
    # PPO reads the score at the last token before the first pad after the query: the EOS when the policy's pad
    # differs from EOS, otherwise (EOS masked as pad, or no EOS) the last response token.
    trained_at = f"training read it at {suffix[-1]}" if suffix else "training read it at the last response token"
    at_eos_ok = append_eos and len(suffix) == 1
    pad_is_eos = "use a policy whose pad token is not its EOS" if at_eos_ok else ""
    eos_is_pad = "" if suffix else "use a policy whose pad token is its EOS"
    ppo = {
        "trl_ppo_eos": [] if at_eos_ok else [(f"reads the score at the EOS; {trained_at}", eos_is_pad)],
        "trl_ppo_pad_is_eos": [
            (f"pad == EOS masks the EOS, so it reads the last response token; {trained_at}", pad_is_eos)
        ],
        "trl_ppo_no_eos": [(f"reads the last response token; {trained_at}", "")],
    }
    if not suffix:
        ppo["trl_ppo_pad_is_eos"] = ppo["trl_ppo_no_eos"] = []
    for key in ppo_keys:
        flags[key] = _verdict(ppo[key] + raw, "exact")
    return {key: flags[key] for key in CONSUMERS}


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a reward model's scores, recorded in the export and its card."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("rm-trl", "transformers", "trl", "peft", "accelerate", "torch"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def is_hub_id(name: str | None) -> bool:
    """`org/name` that is not a local path: worth naming in a card's metadata (the Hub links it)."""
    return bool(name) and name.count("/") == 1 and not os.path.exists(name) and not name.startswith((".", "/"))


def card_header(metadata: dict[str, Any]) -> str:
    """The card's YAML metadata: what the Hub indexes (library, task, tags, base model, datasets, license)."""
    import yaml

    header: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "tags": ["rm-trl", "trl", "reward-model", metadata.get("family", "reward")],
    }
    if is_hub_id(metadata.get("base_model")):
        header["base_model"] = metadata["base_model"]
    datasets = [d for d in metadata.get("datasets") or [] if is_hub_id(d)]
    if datasets:
        header["datasets"] = datasets
    if metadata.get("license"):
        header["license"] = metadata["license"]
    return yaml.safe_dump(header, sort_keys=False, allow_unicode=True)


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
    flags = metadata.get("consumers") or consumer_flags(metadata)
    consumer_lines = "\n".join(f"- {what}: {flags[key]}" for key, what in CONSUMERS.items() if key in flags)
    if flags["trl_path"].startswith("exact"):
        trl_note = f'`GRPOTrainer(..., reward_funcs="{ref}")` scores exactly as training did.'
    else:
        trl_note = (
            "TRL's built-in reward-model path (`add_special_tokens=False`, no EOS, raw head output) does not read "
            "the reward training defined (see Consumers below). Use "
            f'`reward_funcs=rm_trl.rl.RewardFunction("{ref}")` to score exactly as in training.'
        )
    card = f"""---
{card_header(metadata)}---

# Reward model trained with rm-trl

- Base model: `{base}`
- Libraries: {", ".join(f"{k} {v}" for k, v in (metadata.get("libraries") or library_versions()).items())}
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

## Consumers

Whether each consumer reads the reward this model was trained to give (`rm_trl.consumers` in `config.json`;
"exact" means equal to rm-trl's scorer within 1e-5):

{consumer_lines}
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
