"""Train one backbone under several loss families / settings and compare them on the same test set.

    python recipes/compare.py --config recipes/configs/compare_demo.yaml
    python recipes/compare.py --config recipes/configs/compare_rated_wmt.yaml --runs mse,huber --skip_existing

The YAML config holds `base` (recipe settings shared by every run), `runs` (a list; each has a `name`, a
`family` - pairwise, pointwise, listwise or contrastive - and its own settings), `test_data` and `output_dir`.
Each run trains in its own process (so its wall time and peak memory are its own), then every model is scored on
the same test set with the same metrics. Writes `comparison.md`, `comparison.json` and `comparison.png`, plus each
run's evaluation report under `<output_dir>/<name>/eval`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

from rm_trl.data import load_data
from rm_trl.data.formats import FORMATS
from rm_trl.eval_report import fmt, write_eval_report
from rm_trl.evaluation import evaluate_dataset
from rm_trl.scoring import RewardScorer

RECIPES_DIR = os.path.dirname(os.path.abspath(__file__))
FAMILIES = ("pairwise", "pointwise", "listwise", "contrastive")


def train(run: dict, base: dict, output_dir: str) -> dict:
    """Train one run in a child process; return its wall time and peak resident memory."""
    settings = {**base, **{k: v for k, v in run.items() if k not in ("name", "family")}, "output_dir": output_dir}
    settings.setdefault("eval_data", None)
    settings = {k: v for k, v in settings.items() if v is not None}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(settings, f)
        config_path = f.name
    log_path = os.path.join(output_dir, "train.log")
    os.makedirs(output_dir, exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "w") as log:
        child = subprocess.Popen(
            [sys.executable, os.path.join(RECIPES_DIR, f"{run['family']}.py"), "--config", config_path],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(child.pid, 0)
    os.unlink(config_path)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"run {run['name']!r} failed; see {log_path}")
    return {"train_seconds": time.perf_counter() - start, "peak_rss_mb": usage.ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--runs", help="Comma-separated run names to (re)do; default: all.")
    parser.add_argument("--skip_existing", action="store_true", help="Reuse runs already trained in output_dir.")
    parser.add_argument("--bootstrap_samples", type=int, default=1000)
    parser.add_argument("--table_only", action="store_true", help="rewrite table and plot from comparison.json")
    args = parser.parse_args(argv)
    config = yaml.safe_load(open(args.config))
    output_dir = config["output_dir"]
    base = config.get("base", {})
    runs = config["runs"]
    selected = set(args.runs.split(",")) if args.runs else {r["name"] for r in runs}
    for run in runs:
        if run.get("family") not in FAMILIES:
            raise ValueError(f"run {run.get('name')!r}: family must be one of {FAMILIES}")
    test = load_data(config["test_data"], config.get("test_split", "test"))
    results_path = os.path.join(output_dir, "comparison.json")
    previous = json.load(open(results_path))["runs"] if os.path.exists(results_path) else {}
    if args.table_only:
        write_outputs(config, previous, output_dir)
        return {"config": config, "runs": previous}

    rows = {}
    for run in runs:
        name = run["name"]
        run_dir = os.path.join(output_dir, name)
        cost_path = os.path.join(run_dir, "cost.json")
        trained = os.path.exists(os.path.join(run_dir, "config.json")) and os.path.exists(cost_path)
        if name not in selected or (args.skip_existing and trained):
            if name in previous:
                rows[name] = previous[name]
                continue
            if not trained:
                continue
            cost = json.load(open(cost_path))  # trained earlier, never evaluated: evaluate now
        else:
            print(f"== {name}: training ({run['family']})", flush=True)
            cost = train(run, base, run_dir)
            with open(cost_path, "w") as f:
                json.dump(cost, f)
        print(f"== {name}: evaluating on {config['test_data']}", flush=True)
        scorer = RewardScorer.from_pretrained(run_dir)
        result = evaluate_dataset(
            scorer,
            test,
            subset_column=config.get("subset_column"),
            score_column=config.get("score_column", "score"),
            bootstrap_samples=args.bootstrap_samples,
        )
        write_eval_report(result, os.path.join(run_dir, "eval"), title=f"{name} on {config['test_data']}")
        rows[name] = {
            "family": run["family"],
            "loss": scorer.metadata.get("loss", {}),
            **cost,
            "kind": result.kind,
            "metrics": result.metrics,
            "intervals": {k: list(v) for k, v in result.intervals.items()},
        }
    summary = {"config": config, "runs": rows}
    os.makedirs(output_dir, exist_ok=True)
    with open(results_path, "w") as f:
        json.dump(summary, f, indent=2, default=float)
    write_outputs(config, rows, output_dir)
    return summary


def write_outputs(config: dict, rows: dict, output_dir: str) -> None:
    table = comparison_table(rows)
    with open(os.path.join(output_dir, "comparison.md"), "w") as f:
        f.write(f"# {config.get('name', 'Comparison')}\n\nTest data: `{config['test_data']}`\n\n{table}\n")
    plot(rows, os.path.join(output_dir, "comparison.png"))
    print(table)


def comparison_table(rows: dict) -> str:
    if not rows:
        return "(no runs)"
    metric_names: list[str] = []
    for row in rows.values():
        metric_names += [m for m in row["metrics"] if m not in metric_names]
    header = ["run", "family", "loss", *metric_names, "train s", "peak RSS MB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in rows.items():
        cells = [name, row["family"], row["loss"].get("type", "")]
        for m in metric_names:
            value = row["metrics"].get(m)
            interval = row["intervals"].get(m)
            text = "" if value is None else fmt(value)
            if interval:
                text += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
            cells.append(text)
        cells += [f"{row['train_seconds']:.0f}", f"{row['peak_rss_mb']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return
    kind = next(iter(rows.values()))["kind"]
    metric = FORMATS[kind].headline  # each format names the metric that leads its comparisons
    names = list(rows)
    values = [rows[n]["metrics"].get(metric, float("nan")) for n in names]
    lows = [v - rows[n]["intervals"].get(metric, [v, v])[0] for n, v in zip(names, values)]
    highs = [rows[n]["intervals"].get(metric, [v, v])[1] - v for n, v in zip(names, values)]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    axes[0].bar(names, values, yerr=[lows, highs], capsize=4, color="tab:blue")
    axes[0].set_ylabel(f"{metric} (95% CI)")
    axes[1].bar(names, [rows[n]["train_seconds"] for n in names], color="tab:gray")
    axes[1].set_ylabel("train time (s)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
