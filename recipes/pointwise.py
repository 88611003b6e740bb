"""Train a pointwise reward model on rated responses (MSE, Huber or BCE; one or several attributes).

    accelerate launch recipes/pointwise.py                   # offline demo: MiniLM on data/demo rated responses
    accelerate launch recipes/pointwise.py --config recipes/configs/pointwise_wmt_mqm.yaml
    accelerate launch recipes/pointwise.py --config recipes/configs/pointwise_usr.yaml --loss_type huber

Data: `{"prompt", "response", "score"}`; `score_columns` picks one or several attribute columns (HelpSteer style,
missing values masked); `attribute_weights` folds them into the exported single reward; `standardize_scores`
z-scores targets with training statistics stored in the export. The steps are in `rm_trl/recipe.py`.
"""

import os
import sys

from rm_trl.recipe import main

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "pointwise_demo.yaml")

if __name__ == "__main__":
    sys.exit(main("pointwise", default_config=DEFAULT_CONFIG))
