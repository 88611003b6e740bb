"""The model card (`README.md`) of an export: Hub metadata, how the reward is read, data, metrics, consumers."""

from __future__ import annotations

import json
import os
from typing import Any

from .consumers import CONSUMERS, consumer_flags
from .metadata import is_hub_id, library_versions


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
    if metadata.get("step_rewards"):
        usage = step_usage(metadata, ref, token_class=token_class_holds_score(output_dir))
    else:
        usage = outcome_usage(metadata, ref, eos_note)
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

{calibration_section(metadata)}## Usage

{usage}
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


CALIBRATION_HEADING = "## Calibration"


def calibration_section(metadata: dict[str, Any]) -> str:
    """The card's `## Calibration` section (ending with a blank line), or nothing without a fitted temperature."""
    calib = metadata.get("calibration")
    if not calib or calib.get("temperature") is None:
        return ""
    status = "" if calib.get("status") == "fitted" else f" (status `{calib.get('status')}`: see docs/calibration.md)"
    return f"""{CALIBRATION_HEADING}

Preference probabilities are calibrated by a temperature **T = {calib["temperature"]:.4g}**{status}, fitted on
{calib.get("fitted_on")}: `P(a preferred over b) = sigmoid((r_a - r_b) / T)`, with `r` the raw `logits[:, 0]`
(stored in `config.json`, `rm_trl.calibration`). On those {calib.get("pairs")} pairs: ECE {calib["ece_before"]:.4f}
-> {calib["ece_after"]:.4f}, Brier {calib["brier_before"]:.4f} -> {calib["brier_after"]:.4f}. Rewards are unchanged;
`RewardScorer.preference_probability`, `rm-trl score` (`preference_probability_calibrated`) and `rm-trl serve`
(`temperature`) use T.

"""


def update_card_calibration(output_dir: str, metadata: dict[str, Any]) -> None:
    """Put the `## Calibration` section into an existing card (replacing one there, else before `## Usage`, else
    at the end); a folder without a card gets the full card."""
    path = os.path.join(output_dir, "README.md")
    if not os.path.isfile(path):
        write_model_card(output_dir, metadata, _saved_metrics(output_dir))
        return
    with open(path, encoding="utf-8") as f:
        card = f.read()
    section = calibration_section(metadata)
    if CALIBRATION_HEADING + "\n" in card:
        start = card.index(CALIBRATION_HEADING + "\n")
        end = card.find("\n## ", start + len(CALIBRATION_HEADING))
        card = card[:start] + section + (card[end + 1 :] if end >= 0 else "")
    elif "\n## Usage\n" in card:
        at = card.index("\n## Usage\n") + 1
        card = card[:at] + section + card[at:]
    else:
        card = card.rstrip("\n") + "\n\n" + section
    with open(path, "w", encoding="utf-8") as f:
        f.write(card)


def _saved_metrics(output_dir: str) -> dict[str, float] | None:
    path = os.path.join(output_dir, "eval_results.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def outcome_usage(metadata: dict[str, Any], ref: str, eos_note: str) -> str:
    """How plain transformers reads an outcome reward model."""
    return f"""The score of a response is the first logit of a standard sequence-classification forward on
`prompt + response`.
{eos_note}

```python
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{ref}")
model = AutoModelForSequenceClassification.from_pretrained("{ref}")
text = prompt + response{" + tokenizer.eos_token" if metadata.get("append_eos") else ""}
with torch.no_grad():
    reward = model(**tokenizer(text, return_tensors="pt")).logits[0, 0].item()
```"""


def token_class_holds_score(output_dir: str) -> bool:
    """Whether `AutoModelForTokenClassification` of the export's architecture keeps the trained per-token head: a
    linear `score` with `num_labels` outputs, as the sequence-classification class has (Llama, Qwen2, Mistral, ...;
    GPT-2-style token classes name it `classifier` and would start from a random head). Built on the meta device:
    no weights are read or allocated."""
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification

    try:
        config = AutoConfig.from_pretrained(output_dir)
        with torch.device("meta"):
            model = AutoModelForTokenClassification.from_config(config)
    except Exception:  # no token-classification class (or remote code): the card shows the universal reading
        return False
    head = getattr(model, "score", None)
    return isinstance(head, torch.nn.Linear) and head.out_features == config.num_labels


def step_usage(metadata: dict[str, Any], ref: str, token_class: bool = True) -> str:
    """How plain transformers reads a process reward model's step rewards (`docs/process_rewards.md`);
    `token_class`: whether `AutoModelForTokenClassification` keeps the trained head (`token_class_holds_score`),
    else the card reads the sequence-classification class's `score` on the hidden states."""
    steps = metadata["step_rewards"]
    separator, rule = steps["separator"], steps["aggregation"]
    if steps.get("reading") != "prefix" and not token_class:
        read = f"""Each step is followed by the separator token `{separator}` (id {steps["separator_id"]}); a step's
reward is the per-token output of the `score` head at its separator (the sequence-classification output itself is
the last step's):

```python
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{ref}")
model = AutoModelForSequenceClassification.from_pretrained("{ref}")
inputs = tokenizer(prompt + "".join(s + "{separator}" for s in steps), return_tensors="pt")
with torch.no_grad():
    logits = model.score(model.base_model(**inputs).last_hidden_state)[0, :, 0]
step_logits = logits[inputs["input_ids"][0] == {steps["separator_id"]}]
```"""
    elif steps.get("reading") == "prefix":
        read = f"""Each step's reward is the first logit of a sequence-classification forward on the prompt plus the
steps up to it, each followed by `{separator}`:

```python
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{ref}")
model = AutoModelForSequenceClassification.from_pretrained("{ref}")
prefixes = [prompt + "".join(s + "{separator}" for s in steps[: i + 1]) for i in range(len(steps))]
with torch.no_grad():
    step_logits = model(**tokenizer(prefixes, return_tensors="pt", padding=True)).logits[:, 0]
```"""
    else:
        read = f"""Each step is followed by the separator token `{separator}` (id {steps["separator_id"]}); a step's
reward is the per-token logit at its separator, which `AutoModelForTokenClassification` returns (it picks the class
from `model_type`; `architectures` names the sequence-classification class, which reads the last step's only):

```python
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{ref}")
model = AutoModelForTokenClassification.from_pretrained("{ref}")
inputs = tokenizer(prompt + "".join(s + "{separator}" for s in steps), return_tensors="pt")
with torch.no_grad():
    logits = model(**inputs).logits[0, :, 0]
step_logits = logits[inputs["input_ids"][0] == {steps["separator_id"]}]
```

transformers reports `score.bias` as missing: the token-classification head has a bias, the trained head (the
sequence-classification `score`) has none, and the missing bias is initialised to zero, so these are the trained
logits. The same numbers without that report: `model = AutoModelForSequenceClassification.from_pretrained(...)`,
then `logits = model.score(model.base_model(**inputs).last_hidden_state)[0, :, 0]`."""
    return f"""This is a process reward model: one logit per step of a solution (the probability that the solution is
still correct after that step is its sigmoid). {read}

One reward per solution is the **{rule}** of the step probabilities (recorded in `config.json`,
`rm_trl.step_rewards`): `RewardFunction`, `rm-trl score` and `rm-trl serve` apply it, and split a free-text
completion into steps on {steps.get("text_delimiter")!r}.
"""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
