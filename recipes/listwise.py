"""Train a listwise reward model on ranked responses (InstructGPT all-pairs, Plackett-Luce, best-of-N).

    accelerate launch recipes/listwise.py                    # offline demo: MiniLM on data/demo ranked lists
    accelerate launch recipes/listwise.py --config recipes/configs/listwise_oasst.yaml --loss_type plackett_luce

Data: `{"prompt", "completions": [...], "ranks": [...]}` (K >= 2, K may vary, ties allowed, rank 0 = best), or
rated data ranked by score (`source_format: rated`). Each prompt's K responses are forwarded once each.
The steps are in `rm_trl/recipe.py`.
"""

import os
import sys

from rm_trl.recipe import main

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "listwise_demo.yaml")

if __name__ == "__main__":
    sys.exit(main("listwise", default_config=DEFAULT_CONFIG))
