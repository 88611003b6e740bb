"""Comparisons of loss families on the same data, the machinery behind `recipes/compare.py`:

- `plan`: the runs a comparison config asks for (seeds, learning-rate sweeps, early stopping), checked up front;
- `child`: one training in its own process (`python -m rm_trl.compare.child`), with early stopping and a record of
  its steps and best step;
- `runs`: training a run's candidates and choosing its learning rate on the eval split, never the test split;
- `significance`: per-item test rewards and paired tests between runs on the same items (bootstrap, seeds,
  McNemar), including the length-only baseline;
- `report`: per-run numbers over seeds, `comparison.md` and the plot.
"""

from .plan import RunPlan, candidate_dir, plan_runs, seed_dir, seeds_of
from .report import comparison_markdown, plot, summarize_run
from .runs import (
    choose_learning_rate,
    eval_headline,
    load_eval_split,
    read_candidate,
    remove_checkpoints,
    train_candidate,
    write_candidate,
)
from .significance import load_items, paired_comparison, paired_tests, save_items

__all__ = [
    "RunPlan",
    "candidate_dir",
    "choose_learning_rate",
    "comparison_markdown",
    "eval_headline",
    "load_eval_split",
    "load_items",
    "paired_comparison",
    "paired_tests",
    "plan_runs",
    "plot",
    "read_candidate",
    "remove_checkpoints",
    "save_items",
    "seed_dir",
    "seeds_of",
    "summarize_run",
    "train_candidate",
    "write_candidate",
]
