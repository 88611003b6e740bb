"""TRL PPO's own reward read on rm-trl exports, run by tests/test_consumers.py in the old-TRL venv (`make ppo-venv`).

TRL >= 1.13 has no PPO, so this file runs under trl 1.12 and imports only torch, transformers and trl (not rm-trl,
whose environment has a newer TRL). It does what `trl.experimental.ppo.PPOTrainer` does with a batch of rollouts:
left-padded queries, responses cut after the first stop token by TRL's `truncate_response` (`stop_token="eos"`),
then TRL's `get_reward(reward_model, query_responses, pad_token_id, context_length)`.

    python tests/consumer_ppo.py SPEC.json OUT.json

SPEC: `{name: {"path": folder, "cases": {case: {"pad_token_id", "eos_token_id", "queries", "responses"}}}}` with
token id lists; OUT: `{"trl_version": ..., "results": {name: {case: {"scores": [...]} or {"error": "..."}}}}`.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import torch  # noqa: E402
import trl  # noqa: E402
from transformers import AutoModelForSequenceClassification  # noqa: E402
from trl.experimental.ppo.ppo_trainer import truncate_response  # noqa: E402
from trl.experimental.utils import get_reward  # noqa: E402


def padded(rows: list[list[int]], pad: int, left: bool) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([[pad] * (width - len(r)) + r if left else r + [pad] * (width - len(r)) for r in rows])


def ppo_scores(model: torch.nn.Module, case: dict) -> list[float]:
    """The scores PPOTrainer's rollout step computes (its "Response Processing" 1 and 2)."""
    pad, eos = case["pad_token_id"], case["eos_token_id"]
    query = padded(case["queries"], pad, left=True)  # PPO's collator left-pads the queries
    response = truncate_response(eos, pad, padded(case["responses"], pad, left=False))
    with torch.no_grad():
        _, score, _ = get_reward(model, torch.cat((query, response), 1), pad, query.shape[1])
    return score.float().tolist()


def main(spec_path: str, out_path: str) -> None:
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    results: dict[str, dict] = {}
    for name, export in spec.items():
        # As TRL's PPO example script loads its reward model.
        model = AutoModelForSequenceClassification.from_pretrained(export["path"], num_labels=1).eval()
        results[name] = {}
        for case_name, case in export["cases"].items():
            try:
                results[name][case_name] = {"scores": ppo_scores(model, case)}
            except Exception as exc:  # the consumer's own failure is the result
                results[name][case_name] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"trl_version": trl.__version__, "results": results}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
