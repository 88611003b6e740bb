"""The outputs of a comparison: per-run numbers over seeds, the paired table, `comparison.md` and the plot.

Per run: every metric's mean over seeds, the headline's 95% t interval over seeds (with one seed, the bootstrap
interval over test items instead, and the table says which), the learning rate chosen and the best step of each
seed. The paired table holds each run against the reference run and against the length-only baseline.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..eval_report import fmt
from ..metrics.paired import seed_interval


def summarize_run(family: str, seeds: dict[int, dict[str, Any]], headline: str) -> dict[str, Any]:
    """One run's row of `comparison.json` from its per-seed records (`metrics`, `intervals`, cost, choices)."""
    first = next(iter(seeds.values()))
    names: list[str] = []
    for record in seeds.values():
        names += [m for m in record["metrics"] if m not in names]
    metrics = {m: _mean([r["metrics"].get(m) for r in seeds.values()]) for m in names}
    values = [r["metrics"].get(headline, float("nan")) for r in seeds.values()]
    interval = seed_interval(values)
    if interval.n >= 2:
        intervals, interval_kind = {headline: [interval.low, interval.high]}, f"t over {interval.n} seeds"
    else:
        intervals, interval_kind = dict(first["intervals"]), "bootstrap over test items"
    return {
        "family": family,
        "loss": first["loss"],
        "kind": first["kind"],
        "metrics": metrics,
        "intervals": intervals,
        "interval_kind": interval_kind,
        "learning_rates": {str(s): r["learning_rate"] for s, r in seeds.items()},
        "best_steps": {str(s): r.get("best_step") for s, r in seeds.items()},
        "steps": {str(s): r.get("steps") for s, r in seeds.items()},
        "train_seconds": _mean([r["train_seconds"] for r in seeds.values()]),
        "sweep_seconds": float(sum(r["sweep_seconds"] for r in seeds.values())),
        "peak_rss_mb": float(max(r["peak_rss_mb"] for r in seeds.values())),
        "seeds": {str(s): r for s, r in seeds.items()},
    }


def _mean(values: list[Any]) -> float:
    finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _distinct(values: dict[str, Any]) -> str:
    """`2e-05` when every seed agrees, else each seed's value (`1: 2e-05, 2: 1e-04`)."""
    texts = ["-" if v is None else (f"{v:g}" if isinstance(v, float) else str(v)) for v in values.values()]
    if len(set(texts)) == 1:
        return texts[0]
    return ", ".join(f"{seed}: {text}" for seed, text in zip(values, texts))


def runs_table(rows: dict[str, Any], headline: str, baseline: dict[str, Any] | None) -> str:
    """One line per run (headline first, with its interval), plus the length-only baseline."""
    names = [headline]
    for row in rows.values():
        names += [m for m in row["metrics"] if m not in names]
    header = ["run", "family", "loss", "lr", "best step / steps", "seeds", *names, "train s", "peak RSS MB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in rows.items():
        steps = {s: _steps_cell(record) for s, record in row["seeds"].items()}
        cells = [name, row["family"], row["loss"].get("type", ""), _distinct(row["learning_rates"]), _distinct(steps)]
        cells += [str(len(row["seeds"])), *_metric_cells(row, names)]
        cells += [f"{row['train_seconds']:.0f}", f"{row['peak_rss_mb']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if baseline:
        cells = ["length only", "-", "longer is better", "-", "-", "-", *_metric_cells(baseline, names), "-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _steps_cell(record: dict[str, Any]) -> str:
    """`best / trained` steps; `*` when the best was the cap's last step (the metric was still improving)."""
    best, steps = record.get("best_step"), record.get("steps")
    capped = best is not None and best == steps == record.get("max_steps")
    return f"{best or '-'} / {steps or '-'}" + ("*" if capped else "")


def _metric_cells(row: dict[str, Any], names: list[str]) -> list[str]:
    cells = []
    for m in names:
        value, interval = row["metrics"].get(m), row["intervals"].get(m)
        text = "" if value is None else fmt(value)
        if interval and all(math.isfinite(x) for x in interval):
            text += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
        cells.append(text)
    return cells


def paired_table(paired: list[dict[str, Any]]) -> str:
    """Each comparison: the difference in the headline, its item interval and p, its seed interval and p, and
    McNemar's discordant counts and p per seed where the headline is a pair accuracy."""
    if not paired:
        return "(no paired comparisons)"
    metric = paired[0]["metric"]
    header = ["run", "versus", f"difference in {metric}", "95% CI (items)", "p (items)", "95% CI (seeds)", "p (seeds)"]
    header.append("McNemar run-only / versus-only, p (per seed)")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in paired:
        items, seeds = entry["items"], entry["seeds"]
        cells = [entry["run"], entry["versus"], f"{items['estimate']:+.3f}", _ci(items), _p(items["p_value"])]
        cells += [_ci(seeds) if seeds else "-", _p(seeds["p_value"]) if seeds else "-"]
        tests = entry["mcnemar"]
        cells.append("; ".join(f"{t['a_only']}/{t['b_only']}, p {_p(t['p_value'])}" for t in tests) if tests else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ci(difference: dict[str, Any]) -> str:
    low, high = difference["low"], difference["high"]
    return "-" if not (math.isfinite(low) and math.isfinite(high)) else f"[{low:+.3f}, {high:+.3f}]"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.0e}"


def comparison_markdown(summary: dict[str, Any]) -> str:
    """`comparison.md`: what was compared and how, the runs table and the paired table."""
    config, headline = summary["config"], summary["headline"]
    seeds = ", ".join(str(s) for s in summary["seeds"])
    selection = (
        "each seed's own sweep"
        if config.get("lr_selection") == "per_seed"
        else f"the sweep of seed {summary['seeds'][0]}, reused for the other seeds"
    )
    text = [
        f"# {config.get('name', 'Comparison')}",
        "",
        f"Test data: `{config['test_data']}` ({summary['kind']}; headline `{headline}`). Seeds: {seeds}. Where a run "
        f"sweeps learning rates, the one whose model has the best `{headline}` on the eval split wins ({selection});"
        " the test set is scored only for the chosen models. Early stopping (where set) follows the family's own "
        "headline on the eval split, and the export is the best checkpoint's model. Intervals: 95%, "
        "Student t over seeds (with one seed: bootstrap over test items).",
        "",
        runs_table(summary["runs"], headline, summary.get("length_baseline")),
        "",
        "`*`: the best checkpoint was the last step of the cap, where the eval metric was still improving.",
        "",
        "## Paired differences on the same test items",
        "",
        f"Each run minus the reference run `{summary['reference']}` and minus the length-only baseline, in "
        f"`{headline}` averaged over seeds. Items: paired bootstrap over the test items (whole prompts where "
        "several items share one); seeds: paired t over per-seed differences; McNemar: exact test of per-pair "
        "correctness, one per seed (pairs of one ranked list share a prompt: trust the bootstrap there).",
        "",
        paired_table(summary["paired"]),
        "",
    ]
    return "\n".join(text)


def plot(summary: dict[str, Any], path: str) -> None:
    """The headline per run with its interval (the length-only baseline as a line), and train time per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, metric = summary["runs"], summary["headline"]
    if not rows:
        return
    names = list(rows)
    values = [rows[n]["metrics"].get(metric, float("nan")) for n in names]
    lows = [v - rows[n]["intervals"].get(metric, [v, v])[0] for n, v in zip(names, values)]
    highs = [rows[n]["intervals"].get(metric, [v, v])[1] - v for n, v in zip(names, values)]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    axes[0].bar(names, values, yerr=[lows, highs], capsize=4, color="tab:blue")
    baseline = (summary.get("length_baseline") or {}).get("metrics", {}).get(metric)
    if baseline is not None and math.isfinite(baseline):
        axes[0].axhline(baseline, color="tab:red", linestyle="--", label="length only")
        axes[0].legend(fontsize=8)
    axes[0].set_ylabel(f"{metric} (95% CI)")
    axes[1].bar(names, [rows[n]["train_seconds"] for n in names], color="tab:gray")
    axes[1].set_ylabel("train time per seed (s)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
