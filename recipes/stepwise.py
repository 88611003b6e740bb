"""Train a process reward model (PRM): a reward at the end of every step of a solution.

    accelerate launch recipes/stepwise.py                      # offline demo: data/stepwise arithmetic solutions
    accelerate launch recipes/stepwise.py --config my.yaml --loss_type pqm --step_aggregation min

Data: `{"prompt", "completions": [step, ...], "labels": [true | false | number in [0, 1] | null, ...]}` (TRL's
stepwise supervision), or Math-Shepherd / PRM800K rows converted to it (`source_format`). Every step is followed
by `step_separator` (one token, added when the tokenizer lacks it) and its reward is read there; decoders read all
steps in one forward, encoders read each step's prefix. Prints step F1 and first-error (ProcessBench) accuracy.
See `docs/process_rewards.md`; the steps are in `rm_trl/recipe.py`.
"""

import os
import sys

from rm_trl.recipe import main

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "stepwise_demo.yaml")

if __name__ == "__main__":
    sys.exit(main("stepwise", default_config=DEFAULT_CONFIG))
