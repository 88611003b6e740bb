"""Train one backbone under several loss families / settings and compare them on the same test set, with seeds,
a learning-rate sweep chosen on the eval split, early stopping, and paired tests between runs.

    python recipes/compare.py --config recipes/configs/compare_demo.yaml
    python recipes/compare.py --config recipes/configs/compare_rated_wmt.yaml --runs mse,huber --skip_existing
    python recipes/compare.py --config recipes/configs/compare_demo.yaml --seeds 1,2,3

The YAML config holds `base` (recipe settings shared by every run), `runs` (a list; each has a `name`, a `family` -
pairwise, pointwise, listwise or contrastive - and its own settings), `test_data` and `output_dir`, and optionally:
- `seeds: [1, 2, 3]`: every run is trained once per seed (default: the base config's `seed`);
- `learning_rates: [1e-5, 3e-5, 1e-4]` in `base` or a run: a sweep; the learning rate whose model has the best
  headline metric on the eval split (`eval_data`, or `eval_fraction` held out from the training data) wins.
  `lr_selection: first_seed` (default) sweeps on the first seed and reuses its choice for the others;
  `per_seed` sweeps on every seed. The test set is scored only for the chosen models;
- `early_stopping_patience: 3` (and `early_stopping_threshold`) in `base` or a run: evaluate and checkpoint every
  `eval_steps`, stop when the family's headline eval metric has not improved for that many evaluations, export the
  best checkpoint's model; `max_steps` or `num_train_epochs` is the cap. Checkpoints are removed after training
  unless `keep_checkpoints: true`;
- `reference: <run name>`: the run every other run is compared with (default: the first).

Each training runs in its own process (its wall time and peak memory are its own) under
`<output_dir>/<run>/seed-<s>/lr-<lr>`; each seed's chosen model is scored on the test set (report in
`<output_dir>/<run>/seed-<s>/eval`). Writes `comparison.md`, `comparison.json` and `comparison.png`: per run, the
mean over seeds with a t interval, the chosen learning rate and best step; and the paired table, each run against the
reference run and against the length-only baseline on the same test items (paired bootstrap, paired t over seeds,
McNemar where the headline is a pair accuracy).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import yaml
from datasets import Dataset
from transformers import AutoTokenizer

from rm_trl.compare import (
    RunPlan,
    candidate_dir,
    choose_learning_rate,
    comparison_markdown,
    eval_headline,
    load_eval_split,
    load_items,
    paired_tests,
    plan_runs,
    plot,
    read_candidate,
    remove_checkpoints,
    save_items,
    seed_dir,
    seeds_of,
    summarize_run,
    train_candidate,
    write_candidate,
)
from rm_trl.data import load_data
from rm_trl.data.formats import FORMATS, detect_format
from rm_trl.eval_report import write_eval_report
from rm_trl.evaluation import EvalResult, evaluate_dataset, evaluate_length_baseline
from rm_trl.scoring import RewardScorer

RESULT, ITEMS = "result.json", "test_items.json"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--runs", help="Comma-separated run names to (re)do; default: all.")
    parser.add_argument("--seeds", help="Comma-separated seeds, instead of the config's `seeds`.")
    parser.add_argument("--skip_existing", action="store_true", help="Reuse trainings already done in output_dir.")
    parser.add_argument("--bootstrap_samples", type=int, default=1000)
    parser.add_argument("--table_only", action="store_true", help="Rewrite the outputs from the saved runs.")
    args = parser.parse_args(argv)
    config = yaml.safe_load(open(args.config))
    seeds = seeds_of(config, args.seeds)
    plans = plan_runs(config)  # checked before anything trains
    reference = config.get("reference", plans[0].name)
    test = load_data(config["test_data"], config.get("test_split", "test"))
    kind = detect_format(test.column_names)
    headline = FORMATS[kind].headline
    selected = set(args.runs.split(",")) if args.runs else {p.name for p in plans}

    # 1. Each run: per seed, train every learning rate asked for, choose one on the eval split, test the chosen model.
    records = {}
    for plan in plans:
        seed_records = train_and_test(plan, seeds, test, config, args, train=plan.name in selected)
        if seed_records:
            records[plan.name] = seed_records
    rows = {name: summarize_run(plan_of(plans, name).family, recs, headline) for name, recs in records.items()}

    # 2. The length-only baseline on the same test items, and the paired tests: each run against the reference run
    #    (seed i against seed i) and against the baseline.
    output_dir = config["output_dir"]
    results = {
        name: {seed: load_items(os.path.join(seed_dir(output_dir, name, seed), ITEMS), test) for seed in recs}
        for name, recs in records.items()
    }
    baseline = length_baseline(test, kind, config, records, args.bootstrap_samples) if results else None
    paired = paired_tests(results, reference, baseline, resamples=args.bootstrap_samples)

    # 3. Outputs.
    summary: dict[str, Any] = {
        "config": config,
        "kind": kind,
        "headline": headline,
        "seeds": seeds,
        "reference": reference,
        "runs": rows,
        "length_baseline": baseline and {"metrics": baseline.metrics, "intervals": baseline.intervals},
        "paired": paired,
    }
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "comparison.json"), "w") as f:
        json.dump(summary, f, indent=2, default=float)
    markdown = comparison_markdown(summary)
    with open(os.path.join(output_dir, "comparison.md"), "w") as f:
        f.write(markdown)
    plot(summary, os.path.join(output_dir, "comparison.png"))
    print(markdown)
    return summary


def train_and_test(
    plan: RunPlan, seeds: list[int], test: Dataset, config: dict, args: argparse.Namespace, train: bool
) -> dict[int, dict]:
    """One run over the seeds: its candidates (trained now, or done earlier), the learning rate chosen by the eval
    headline, and the chosen model's test result, per seed. Seeds whose candidates are missing are left out."""
    output_dir, score_column = config["output_dir"], config.get("score_column", "score")
    train = train and not args.table_only
    eval_split = load_eval_split(plan) if train else None
    chosen_lr = None
    records = {}
    for seed in seeds:
        sweep = plan.learning_rates if chosen_lr is None or config.get("lr_selection") == "per_seed" else (chosen_lr,)
        candidates, trained_now = {}, False
        for lr in sweep:
            directory = candidate_dir(output_dir, plan.name, seed, lr)
            record = read_candidate(directory)
            if train and not (args.skip_existing and record):
                print(f"== {plan.name} seed {seed} lr {lr:g}: training ({plan.family})", flush=True)
                record = {"learning_rate": lr, "seed": seed, **train_candidate(plan, seed, lr, directory)}
                if eval_split is not None:  # the eval split, in its own format, scored by the exported model
                    invalid_rows = plan.settings.get("invalid_rows", "error")
                    headline = eval_headline(directory, eval_split, score_column, invalid_rows)
                    record["eval_metric"], record["eval_headline"] = headline
                if not config.get("keep_checkpoints"):
                    remove_checkpoints(directory)
                write_candidate(directory, record)
                trained_now = True
            if record is not None:
                candidates[lr] = record
        if len(candidates) < len(sweep):
            print(f"== {plan.name} seed {seed}: not trained, left out", flush=True)
            continue
        lr = choose_learning_rate({lr: c.get("eval_headline") for lr, c in candidates.items()})
        chosen_lr = chosen_lr or lr
        record = test_chosen(plan, seed, lr, candidates, test, config, args, rescore=trained_now)
        if record is not None:
            records[seed] = record
    return records


def test_chosen(
    plan: RunPlan,
    seed: int,
    lr: float,
    candidates: dict[float, dict],
    test: Dataset,
    config: dict,
    args: argparse.Namespace,
    rescore: bool,
) -> dict | None:
    """The test result of the seed's chosen model: scored now (report, per-item rewards, `result.json`), or the
    saved one when nothing was retrained and the choice is the same."""
    directory = seed_dir(config["output_dir"], plan.name, seed)
    result_path = os.path.join(directory, RESULT)
    saved = json.load(open(result_path)) if os.path.exists(result_path) else None
    if saved and saved["learning_rate"] == lr and not rescore and os.path.exists(os.path.join(directory, ITEMS)):
        return saved
    if args.table_only:
        return None
    print(f"== {plan.name} seed {seed}: testing the model of lr {lr:g} on {config['test_data']}", flush=True)
    scorer = RewardScorer.from_pretrained(candidate_dir(config["output_dir"], plan.name, seed, lr))
    result = evaluate_dataset(
        scorer,
        test,
        subset_column=config.get("subset_column"),
        score_column=config.get("score_column", "score"),
        bootstrap_samples=args.bootstrap_samples,
    )
    write_eval_report(result, os.path.join(directory, "eval"), title=f"{plan.name}, seed {seed}, lr {lr:g}")
    save_items(result, os.path.join(directory, ITEMS))
    chosen = candidates[lr]
    record = {
        "seed": seed,
        "learning_rate": lr,
        "eval_metric": chosen.get("eval_metric"),
        "eval_headline": chosen.get("eval_headline"),
        "best_step": chosen.get("best_step"),
        "steps": chosen.get("global_step"),
        "max_steps": chosen.get("max_steps"),
        "loss": scorer.metadata.get("loss", {}),
        "kind": result.kind,
        "metrics": result.metrics,
        "intervals": {k: list(v) for k, v in result.intervals.items()},
        "train_seconds": chosen["train_seconds"],
        "peak_rss_mb": chosen["peak_rss_mb"],
        "sweep_seconds": sum(c["train_seconds"] for c in candidates.values()),
        "candidates": {f"{c_lr:g}": candidates[c_lr] for c_lr in candidates},
    }
    with open(result_path, "w") as f:
        json.dump(record, f, indent=2, default=float)
    return record


def length_baseline(test: Dataset, kind: str, config: dict, records: dict, bootstrap_samples: int) -> EvalResult:
    """ "The longer response is better" on the test items, evaluated as the models are."""
    name, seeds = next(iter(records.items()))
    seed, record = next(iter(seeds.items()))
    model = candidate_dir(config["output_dir"], name, seed, record["learning_rate"])
    return evaluate_length_baseline(
        test,
        kind=kind,
        score_column=config.get("score_column", "score"),
        tokenizer=AutoTokenizer.from_pretrained(model),  # renders conversational rows, if any
        bootstrap_samples=bootstrap_samples,
    )


def plan_of(plans: list[RunPlan], name: str) -> RunPlan:
    return next(p for p in plans if p.name == name)


if __name__ == "__main__":
    main()
