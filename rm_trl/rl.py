"""Use an rm-trl reward model inside TRL's online trainers (GRPO, RLOO) with training-time formatting.

TRL's built-in reward-model path (`reward_funcs="<path>"`) scores `tokenizer(prompt + completion,
add_special_tokens=False)` with nothing appended. That equals training only for models trained without special
tokens around the text (`rm_trl.trl_path_compatible` in the config). `RewardFunction` works for every rm-trl model:
it is a plain TRL reward function that scores each (prompt, completion) exactly as training framed it.

    from rm_trl.rl import RewardFunction
    trainer = GRPOTrainer(model=policy, reward_funcs=RewardFunction("outputs/pairwise-demo"), ...)
"""

from __future__ import annotations

import os
from typing import Any

from datasets import Dataset

from .scoring import RewardScorer


class RewardFunction:
    """A TRL reward function (`f(prompts, completions, **kwargs) -> list[float]`) backed by `RewardScorer`.

    Prompts and completions may be strings or message lists (conversational); empty completions get the reward
    `None` (TRL turns it into NaN and ignores it) instead of failing the step.
    """

    def __init__(self, model: str | RewardScorer, normalize: bool = False, **scorer_kwargs: Any):
        self.scorer = (
            model
            if isinstance(model, RewardScorer)
            else RewardScorer.from_pretrained(model, normalize=normalize, **scorer_kwargs)
        )
        name = model if isinstance(model, str) else "rm_trl_reward"
        self.__name__ = os.path.basename(os.path.normpath(name)) or "rm_trl_reward"

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        data = Dataset.from_dict({"prompt": list(prompts), "response": list(completions)})
        scored = self.scorer.score(data, kind="rated", invalid_rows="skip")
        rewards: list[float | None] = [None] * len(prompts)
        for row, reward in zip(scored.rows, scored.scalar_rewards()):
            rewards[row] = float(reward[0])
        return rewards
