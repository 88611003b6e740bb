"""One training run of a comparison, in a process of its own (so its wall time and peak memory are its own):

    python -m rm_trl.compare.child --family pointwise --config run.yaml [--early_stopping_patience 3]

The config is a recipe YAML (`rm_trl.recipe.parse`), trained by `rm_trl.recipe.run` exactly as `rm-trl train` does,
plus what a comparison needs and a plain recipe does not: transformers' `EarlyStoppingCallback` (the config sets
`load_best_model_at_end`, so the export is the best checkpoint's model) and `training_state.json`, the record of
how training went (steps, best step, the eval metric at each evaluation), written next to the export.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from transformers import EarlyStoppingCallback, TrainerCallback

from ..errors import run_entry_point
from ..recipe import parse, run
from ..trainers import FAMILIES

TRAINING_STATE = "training_state.json"


class TrainingRecord(TrainerCallback):
    """Writes `training_state.json` into the output folder when training ends: what a comparison reports (the step
    training stopped at, the best step and its metric, the eval metric's curve)."""

    def on_train_end(self, args, state, control, **kwargs) -> None:
        if not state.is_world_process_zero:
            return
        metric = args.metric_for_best_model
        key = metric if metric is None or metric.startswith("eval_") else f"eval_{metric}"
        record: dict[str, Any] = {
            "global_step": state.global_step,
            "max_steps": state.max_steps,
            "best_step": state.best_global_step,
            "best_metric": state.best_metric,
            "metric": key,
            "evaluations": [
                {"step": log["step"], "value": log[key]} for log in state.log_history if key and key in log
            ],
        }
        os.makedirs(args.output_dir, exist_ok=True)
        with open(os.path.join(args.output_dir, TRAINING_STATE), "w") as f:
            json.dump(record, f, indent=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", required=True, choices=sorted(FAMILIES))
    parser.add_argument("--config", required=True, help="recipe YAML of this run")
    parser.add_argument("--early_stopping_patience", type=int, default=None)
    parser.add_argument("--early_stopping_threshold", type=float, default=0.0)
    args = parser.parse_args(argv)
    trainer_class = FAMILIES[args.family]
    callbacks: list[TrainerCallback] = [TrainingRecord()]
    if args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(args.early_stopping_patience, args.early_stopping_threshold))

    def train() -> None:
        settings = parse(trainer_class.config_class, argv=["--config", args.config], family=args.family)
        run(trainer_class, *settings, callbacks=callbacks)

    return run_entry_point(train, program=f"compare: train {args.family}")


if __name__ == "__main__":
    sys.exit(main())
