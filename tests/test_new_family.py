"""A new loss family is four things: a config, a loss, a trainer and a recipe (`docs/architecture.md`). This test
adds one without editing rm-trl (the exponential pairwise loss of RankBoost, Freund et al. 2003), trains it through
the recipe entry point as a recipe script would, and reads the export back."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import torch

from rm_trl.config import RewardConfig
from rm_trl.data.formats import PAIRWISE_SCHEMA
from rm_trl.losses import LossSpec
from rm_trl.metrics import pairwise_metrics
from rm_trl.recipe import main
from rm_trl.trainers import FAMILIES, RewardTrainer

from .conftest import learnable_pairs


def exponential_loss(chosen: torch.Tensor, rejected: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """`exp(-scale * (r_c - r_r))`, averaged over pairs (1. the loss: a pure function)."""
    return torch.exp(-scale * (chosen - rejected)).mean()


@dataclass
class ExponentialRewardConfig(RewardConfig):  # 2. the config: its fields become flags and YAML keys
    loss_type: str = field(default="exponential", metadata={"help": "Loss.", "choices": ["exponential"]})
    scale: float = field(default=1.0, metadata={"help": "Steepness of the exponential loss."})


class ExponentialRewardTrainer(RewardTrainer):  # 3. the trainer: naming a family registers it
    config_class = ExponentialRewardConfig
    schema = PAIRWISE_SCHEMA
    family = "exponential_example"
    loss_functions = {"exponential": LossSpec(exponential_loss, {"scale": "scale"})}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        rewards = self.compute_rewards(model, inputs).view(-1, 2)
        loss = self.family_loss(rewards, rewards[:, 0], rewards[:, 1])
        self.track_batch_metrics(rewards)
        return (loss, rewards) if return_outputs else loss

    def metrics(self, predictions):
        return pairwise_metrics(predictions[:, 0], predictions[:, 1])


def test_a_family_defined_outside_rm_trl_trains_through_the_recipe(tmp_path, minilm_path):
    try:
        assert FAMILIES["exponential_example"] is ExponentialRewardTrainer
        assert hasattr(ExponentialRewardTrainer.compute_loss, "__wrapped__")  # the non-finite-loss guard came with it
        data = tmp_path / "pairs.jsonl"
        data.write_text("".join(json.dumps(row) + "\n" for row in learnable_pairs(16)))
        out = tmp_path / "export"
        flags = ["--model_name_or_path", minilm_path, "--train_data", str(data), "--output_dir", str(out)]
        flags += ["--max_steps", "2", "--per_device_train_batch_size", "4", "--max_length", "64"]
        flags += ["--report_to", "none", "--save_strategy", "no", "--scale", "0.5", "--center_rewards_coefficient"]
        assert main("exponential_example", [*flags, "0.01"]) == 0  # 4. the recipe: main("<family>") in a script
        recorded = json.load(open(os.path.join(out, "config.json")))["rm_trl"]
        assert recorded["family"] == "exponential_example"
        assert recorded["loss"] == {"type": "exponential", "scale": 0.5, "center_rewards_coefficient": 0.01}
        assert os.path.isfile(os.path.join(out, "model.safetensors"))
    finally:
        FAMILIES.pop("exponential_example", None)
