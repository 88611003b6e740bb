"""Training the runs of a comparison and choosing each run's learning rate on the eval split.

Each training runs in its own process (`rm_trl.compare.child`) and leaves, next to its export, `train.log`,
`training_state.json` (steps, best step, eval curve) and `candidate.json`: its cost, how training went, and the
headline of the eval split scored by the exported model in the eval data's own format (the test set's format, so
every loss is chosen by the number it is reported by; a run trained on pairs made from ratings is chosen by its
Spearman on the held-out ratings). The learning rate with the best eval headline wins; the test set is scored
only for the chosen models, so it cannot take part in any choice.
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import yaml
from datasets import Dataset

from ..data import DataArguments, load_train_eval
from ..data.formats import FORMATS, detect_format
from ..evaluation import evaluate_dataset
from ..scoring import RewardScorer
from .child import TRAINING_STATE
from .plan import RunPlan

CANDIDATE = "candidate.json"


def launch(command: list[str], log_path: str) -> dict[str, float]:
    """Run `command` with its output in `log_path`; return its wall time and peak resident memory."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"training failed; see {log_path}")
    return {"train_seconds": time.perf_counter() - start, "peak_rss_mb": usage.ru_maxrss / 1024}


def train_candidate(plan: RunPlan, seed: int, learning_rate: float, directory: str) -> dict[str, Any]:
    """Train one (run, seed, learning rate) in a child process; return its cost and `training_state.json`."""
    os.makedirs(directory, exist_ok=True)
    for stale in (CANDIDATE, TRAINING_STATE):  # a record of an earlier training must not outlive a failed one
        if os.path.exists(os.path.join(directory, stale)):
            os.remove(os.path.join(directory, stale))
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(plan.candidate_settings(seed, learning_rate, directory), f)
        config_path = f.name
    command = [sys.executable, "-m", "rm_trl.compare.child", "--family", plan.family, "--config", config_path]
    try:
        cost = launch([*command, *plan.child_options()], os.path.join(directory, "train.log"))
    finally:
        os.unlink(config_path)
    state_path = os.path.join(directory, TRAINING_STATE)
    state = json.load(open(state_path)) if os.path.exists(state_path) else {}
    return {**cost, **state}


def load_eval_split(plan: RunPlan) -> Dataset | None:
    """The run's eval split as the recipe loads it (`eval_data`, or `eval_fraction` of `train_data` held out by
    prompt, deterministically), before any conversion: in the data's own format."""
    if not plan.data_settings.get("eval_data") and not plan.data_settings.get("eval_fraction"):
        return None
    return load_train_eval(DataArguments(**plan.data_settings))[1]


def eval_headline(
    directory: str, eval_split: Dataset, score_column: str = "score", invalid_rows: str = "error"
) -> tuple[str, float]:
    """(name, value) of the headline metric of the exported model in `directory` on the eval split (rows the run's
    `invalid_rows: skip` left out of training are left out here too)."""
    kind = detect_format(eval_split.column_names)
    scorer = RewardScorer.from_pretrained(directory)
    result = evaluate_dataset(
        scorer, eval_split, kind=kind, score_column=score_column, bootstrap_samples=0, invalid_rows=invalid_rows
    )
    headline = FORMATS[kind].headline
    return headline, float(result.metrics[headline])


def remove_checkpoints(directory: str) -> None:
    """Drop the `checkpoint-N` folders early stopping saved (the export already holds the best one's model)."""
    for path in glob.glob(os.path.join(directory, "checkpoint-*")) + glob.glob(
        os.path.join(directory, ".checkpoint-*")
    ):
        shutil.rmtree(path, ignore_errors=True)


def choose_learning_rate(eval_values: dict[float, float | None]) -> float:
    """The learning rate whose model has the best eval headline (higher is better for every format's headline); a
    tie goes to the one listed first, NaN never wins. With a single learning rate there is nothing to choose."""
    if len(eval_values) == 1:
        return next(iter(eval_values))
    finite = {lr: v for lr, v in eval_values.items() if v is not None and math.isfinite(v)}
    if not finite:
        raise RuntimeError(f"no learning rate has a finite eval headline: {eval_values}")
    return max(finite, key=lambda lr: (finite[lr], -list(eval_values).index(lr)))


def read_candidate(directory: str) -> dict[str, Any] | None:
    """The `candidate.json` of a finished training, or None."""
    path = os.path.join(directory, CANDIDATE)
    return json.load(open(path)) if os.path.exists(path) else None


def write_candidate(directory: str, record: dict[str, Any]) -> None:
    with open(os.path.join(directory, CANDIDATE), "w") as f:
        json.dump(record, f, indent=2, default=float)
