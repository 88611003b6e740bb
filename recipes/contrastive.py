"""Train a contrastive reward model: best vs worst responses, InfoNCE with in-batch negatives or margin ranking.

    accelerate launch recipes/contrastive.py    # offline demo: best-vs-worst pairs of the data/demo ranked lists
    accelerate launch recipes/contrastive.py --config recipes/configs/contrastive_oasst.yaml

Data: ranked or rated data turned into best-vs-worst pairs (`pair_strategy: best_vs_worst`), or pairs directly.
Losses (`loss_type`): infonce (`temperature`, `in_batch_negatives`) or margin_ranking (`ranking_margin`).
The steps are in `rm_trl/recipe.py`.
"""

import os
import sys

from rm_trl.recipe import main

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "contrastive_demo.yaml")

if __name__ == "__main__":
    sys.exit(main("contrastive", default_config=DEFAULT_CONFIG))
