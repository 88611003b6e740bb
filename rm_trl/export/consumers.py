"""What each consumer of an export reads: the `rm_trl.consumers` flags of `config.json`.

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

from typing import Any

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
    if metadata.get("step_rewards"):
        return step_consumer_flags(metadata)
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


def step_consumer_flags(metadata: dict[str, Any]) -> dict[str, str]:
    """A process reward model's flags: its reward is an aggregate of step rewards read at step separators (or step
    prefixes), which only consumers that know the steps can compute (`docs/process_rewards.md`)."""
    steps = metadata["step_rewards"]
    separator, rule = steps["separator"], steps["aggregation"]
    delimiter = steps.get("text_delimiter")
    if steps.get("reading") == "prefix":
        plain = f"exact: AutoModelForSequenceClassification on prompt + steps[:i] each followed by {separator!r}"
        left = "differs: the pooler reads the first position, which left padding fills with pad; pad on the right"
    else:
        plain = (
            f"exact: the per-token `score` output on prompt + every step followed by {separator!r}, read at the "
            "separators (AutoModelForTokenClassification where its head is `score`, see the card; "
            "AutoModelForSequenceClassification reads the last step's)"
        )
        left = "exact: the same read on a left-padded batch"
    aggregate = f"the {rule} of the step probabilities, steps split on {delimiter!r}"
    whole_text = (
        "differs: reads one logit of the whole text, without step separators; a process reward model's reward is "
        f'{aggregate}; use rm_trl.rl.RewardFunction("<folder>") or rm-trl serve'
    )
    flags = {
        "transformers": plain,
        "transformers_left_padding": left,
        "trl_path": whole_text,
        "trl_reward_function": f"exact: {aggregate}",
        "rm_trl_score": f"exact: step_rewards and reward ({rule})",
        "openrlhf_remote": f"exact: rm-trl serve ({aggregate}; /score takes step lists)",
    }
    for key in ("trl_ppo_eos", "trl_ppo_pad_is_eos", "trl_ppo_no_eos"):
        flags[key] = whole_text
    return {key: flags[key] for key in CONSUMERS}
