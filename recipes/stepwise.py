"""Train a process reward model (PRM): a reward at the end of every step of a solution.

    python recipes/stepwise.py                                 # offline demo: two stages on data/stepwise
    accelerate launch recipes/stepwise.py --config my.yaml --loss_type pqm --step_aggregation min

Data: `{"prompt", "completions": [step, ...], "labels": [true | false | number in [0, 1] | null, ...]}` (TRL's
stepwise supervision), or Math-Shepherd / PRM800K rows converted to it (`source_format`). Every step is followed
by `step_separator` (one token, added when the tokenizer lacks it) and its reward is read there; decoders read all
steps in one forward, encoders read each step's prefix. Prints step F1 and first-error (ProcessBench) accuracy.
See `docs/process_rewards.md`; the steps are in `rm_trl/recipe.py`.

The demo (no `--config` and no model or data flag; other flags apply to its second stage) is a curriculum: a tiny
Llama trained from scratch first learns one local check (`configs/stepwise_demo_stage1.yaml`: only wrong-operation
errors, labels after a first error masked), then continues on every kind of error (`configs/stepwise_demo.yaml`).
"""

import os
import sys

from rm_trl.errors import run_entry_point
from rm_trl.recipe import SOURCE_FLAGS, main, parse, run
from rm_trl.trainers import FAMILIES

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), "data", "stepwise")
STAGE_1 = os.path.join(HERE, "configs", "stepwise_demo_stage1.yaml")
STAGE_2 = os.path.join(HERE, "configs", "stepwise_demo.yaml")


def demo(extra: list[str]) -> None:
    trainer_class = FAMILIES["stepwise"]
    first = ["--config", STAGE_1, "--train_data", os.path.join(DATA, "train_curriculum.jsonl")]
    data_args, config, model_args = parse(trainer_class.config_class, None, first, "stepwise")
    run(trainer_class, data_args, config, model_args)
    second = ["--config", STAGE_2, "--model_name_or_path", config.output_dir]
    second += ["--train_data", os.path.join(DATA, "train.jsonl"), "--eval_data", os.path.join(DATA, "eval.jsonl")]
    run(trainer_class, *parse(trainer_class.config_class, None, [*second, *extra], "stepwise"))


if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--config" in argv or SOURCE_FLAGS.intersection(argv):
        sys.exit(main("stepwise", argv))
    sys.exit(run_entry_point(lambda: demo(argv), program="recipes/stepwise.py"))
