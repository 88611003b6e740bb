"""Train a pairwise (chosen vs rejected) reward model, evaluate it, and save a portable export.

    accelerate launch recipes/pairwise.py                    # offline demo: MiniLM on data/demo, about 1 min on CPU
    accelerate launch recipes/pairwise.py --config recipes/configs/pairwise_hh_rlhf.yaml
    accelerate launch --config_file accelerate_configs/multi_gpu.yaml recipes/pairwise.py \
        --config recipes/configs/pairwise_hh_rlhf.yaml --learning_rate 1e-5 --use_peft

Data: `{"prompt", "chosen", "rejected"}` (plain or conversational, optional `margin`), or rated / ranked data
converted to pairs (`source_format`, `pair_strategy`, `min_score_gap`; rating gaps become margins).
Losses (`loss_type`): bradley_terry (with `use_margin`, `label_smoothing`) or hinge; `center_rewards_coefficient`.
Every field of `DataArguments`, `PairwiseRewardConfig` (and `transformers.TrainingArguments`) and TRL's
`ModelConfig` can be set in the YAML config or overridden on the command line. The steps are in `rm_trl/recipe.py`.
"""

import os
import sys

from rm_trl.recipe import main

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "pairwise_demo.yaml")

if __name__ == "__main__":
    sys.exit(main("pairwise", default_config=DEFAULT_CONFIG))
