"""What a comparison config asks for: runs, seeds, learning rates to sweep, early stopping, and the settings of
each training it implies (one per run, seed and learning rate), checked before anything trains.

A config (`recipes/configs/compare_*.yaml`) holds `base` (recipe settings shared by every run), `runs` (each with a
`name`, a `family` and its own settings), `test_data`, `output_dir`, and optionally `seeds`, `reference` (the run
every other run is compared with; default the first) and `lr_selection`. Besides recipe settings, `base` and each
run may hold `learning_rates` (a sweep; the run's value wins), `early_stopping_patience` and
`early_stopping_threshold`: those are the comparison's, never passed to the recipe as such.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..trainers import FAMILIES

COMPARED_FAMILIES = ("pairwise", "pointwise", "listwise", "contrastive")
COMPARISON_KEYS = ("learning_rates", "early_stopping_patience", "early_stopping_threshold")
LR_SELECTIONS = ("first_seed", "per_seed")
# recipe settings that name where the eval split comes from: a sweep or early stopping needs one of them
EVAL_SOURCES = ("eval_data", "eval_fraction")
DATA_KEYS = (
    "train_data",
    "eval_data",
    "dataset_config",
    "train_split",
    "eval_split",
    "eval_fraction",
    "max_eval_samples",
)


@dataclass(frozen=True)
class RunPlan:
    """One run of a comparison: a loss family and its settings, trained once per seed and learning rate."""

    name: str
    family: str
    settings: dict[str, Any]  # recipe settings (base + the run's own), without seed, learning rate and output_dir
    learning_rates: tuple[float, ...]
    early_stopping_patience: int | None = None
    early_stopping_threshold: float = 0.0
    data_settings: dict[str, Any] = field(default_factory=dict)  # where the eval split comes from

    def candidate_settings(self, seed: int, learning_rate: float, output_dir: str) -> dict[str, Any]:
        """The recipe YAML of one training. Early stopping evaluates and saves a checkpoint together every
        `eval_steps` (only the best checkpoint is kept), picks the best by the family's headline eval metric and
        reloads it at the end, so the export is the best checkpoint's model; `max_steps` / `num_train_epochs` cap
        training."""
        settings = {**self.settings, "seed": seed, "learning_rate": learning_rate, "output_dir": output_dir}
        if self.early_stopping_patience:
            strategy = settings.get("eval_strategy") or "steps"
            if strategy == "no":
                raise ConfigError(f"run {self.name!r}: early stopping needs evaluations; eval_strategy is 'no'")
            settings.update(eval_strategy=strategy, save_strategy=strategy, load_best_model_at_end=True)
            if strategy == "steps":
                settings["eval_steps"] = settings.get("eval_steps") or settings.get("logging_steps") or 10
                settings["save_steps"] = settings["eval_steps"]
            settings.setdefault("metric_for_best_model", "headline")  # the family's headline (RewardTrainer)
            settings.setdefault("save_total_limit", 1)  # rm-trl's rotation keeps the best one
            settings.setdefault("save_only_model", True)  # reloading the best needs its weights, not the optimizer
        return {k: v for k, v in settings.items() if v is not None}

    def child_options(self) -> list[str]:
        """Command-line options of `rm_trl.compare.child` for this run."""
        if not self.early_stopping_patience:
            return []
        return [
            "--early_stopping_patience",
            str(self.early_stopping_patience),
            "--early_stopping_threshold",
            str(self.early_stopping_threshold),
        ]


def plan_runs(config: dict[str, Any]) -> list[RunPlan]:
    """Every run of `config`, checked: known family, unique names, a sweep or early stopping only with an eval
    split that is not the test split."""
    base = dict(config.get("base") or {})
    runs = config.get("runs") or []
    names = [run.get("name") for run in runs]
    if not runs or len(set(names)) != len(names) or None in names:
        raise ConfigError(f"`runs` needs at least one run and a unique `name` for each, got {names}")
    if config.get("lr_selection", "first_seed") not in LR_SELECTIONS:
        raise ConfigError(f"lr_selection must be one of {LR_SELECTIONS}, got {config['lr_selection']!r}")
    plans = []
    for run in runs:
        if run.get("family") not in COMPARED_FAMILIES:
            raise ConfigError(f"run {run['name']!r}: family must be one of {COMPARED_FAMILIES}")
        merged = {**base, **{k: v for k, v in run.items() if k not in ("name", "family")}}
        own = {k: merged.pop(k) for k in COMPARISON_KEYS if k in merged}
        default_lr = merged.get("learning_rate", FAMILIES[run["family"]].config_class.learning_rate)
        learning_rates = tuple(float(lr) for lr in own.get("learning_rates") or [default_lr])
        if len(set(learning_rates)) != len(learning_rates) or any(not lr > 0 for lr in learning_rates):
            raise ConfigError(f"run {run['name']!r}: learning_rates must be distinct positive numbers")
        merged.pop("learning_rate", None)
        merged.setdefault("eval_data", None)  # a recipe's demo default never reaches a comparison
        plan = RunPlan(
            name=run["name"],
            family=run["family"],
            settings=merged,
            learning_rates=learning_rates,
            early_stopping_patience=own.get("early_stopping_patience"),
            early_stopping_threshold=float(own.get("early_stopping_threshold") or 0.0),
            data_settings={k: merged[k] for k in DATA_KEYS if merged.get(k) is not None},
        )
        check_eval_split(plan, config)
        plans.append(plan)
    reference = config.get("reference", plans[0].name)
    if reference not in names:
        raise ConfigError(f"reference {reference!r} is not a run name ({names})")
    return plans


def check_eval_split(plan: RunPlan, config: dict[str, Any]) -> None:
    """A learning-rate sweep and early stopping decide on the eval split: it must be named (`eval_data` or
    `eval_fraction`, never a split guessed from `train_data`) and must not be the test split."""
    if len(plan.learning_rates) == 1 and not plan.early_stopping_patience:
        return
    data = plan.data_settings
    if not any(data.get(k) for k in EVAL_SOURCES):
        raise ConfigError(
            f"run {plan.name!r}: a learning-rate sweep or early stopping chooses on the eval split; give eval_data "
            "or eval_fraction (held out from train_data) in `base` or the run"
        )
    test = (os.path.abspath(str(config["test_data"])), config.get("test_split", "test"))
    if data.get("eval_data") and (os.path.abspath(str(data["eval_data"])), data.get("eval_split") or "test") == test:
        raise ConfigError(f"run {plan.name!r}: eval_data is the test split; choices must never see the test data")


def seeds_of(config: dict[str, Any], override: str | None = None) -> list[int]:
    """`--seeds 1,2,3`, else the config's `seeds`, else the base config's one `seed` (42 by default)."""
    if override:
        seeds = [int(s) for s in override.split(",")]
    else:
        seeds = [int(s) for s in config.get("seeds") or [(config.get("base") or {}).get("seed", 42)]]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct, got {seeds}")
    return seeds


def candidate_dir(output_dir: str, run: str, seed: int, learning_rate: float) -> str:
    """`<output_dir>/<run>/seed-<seed>/lr-<lr>`: one training's export and logs."""
    return os.path.join(seed_dir(output_dir, run, seed), f"lr-{learning_rate:g}")


def seed_dir(output_dir: str, run: str, seed: int) -> str:
    """`<output_dir>/<run>/seed-<seed>`: the test evaluation of the seed's chosen model."""
    return os.path.join(output_dir, run, f"seed-{seed}")
