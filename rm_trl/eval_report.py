"""Evaluation reports: JSON for machines, Markdown for people, PNG plots where a picture says it faster.

What a report says about one format (notes on its metrics, the labels of its reward histogram) is declared with
the format in the registry (`rm_trl.data.formats.FORMATS`); the plots follow the curves the evaluation returned."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from .data.formats import FORMATS
from .evaluation import EvalResult


def fmt(value: Any) -> str:
    """Numbers for tables: counts without decimals, rates with four."""
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 10 else f"{value:.4f}"
    return str(value)


def metrics_table(result: EvalResult) -> str:
    """A Markdown table of every metric, with its 95% bootstrap interval where one was computed."""
    lines = ["| metric | value | 95% CI |", "|---|---|---|"]
    for name, value in result.metrics.items():
        interval = result.intervals.get(name)
        ci = f"[{fmt(interval[0])}, {fmt(interval[1])}]" if interval else ""
        lines.append(f"| {name} | {fmt(value)} | {ci} |")
    return "\n".join(lines)


def subsets_table(result: EvalResult) -> str:
    if not result.subsets:
        return ""
    keys = list(next(iter(result.subsets.values())))
    lines = ["| subset | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, values in result.subsets.items():
        lines.append(f"| {name} | " + " | ".join(fmt(values[k]) for k in keys) + " |")
    return "\n".join(lines)


def write_eval_report(result: EvalResult, output_dir: str, title: str = "Reward model evaluation") -> dict[str, str]:
    """Write `eval.json`, `eval.md` and the plots into `output_dir`; returns the paths written."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {"json": os.path.join(output_dir, "eval.json"), "markdown": os.path.join(output_dir, "eval.md")}
    with open(paths["json"], "w", encoding="utf-8") as f:
        json.dump(result.to_dict(), f, indent=2, default=float)
    paths.update(write_plots(result, output_dir))
    report = result.report or {}
    sections = [
        f"# {title}",
        f"Data: {result.kind}; {report.get('rows_out', '?')} of {report.get('rows_in', '?')} rows scored"
        + (f"; truncated {report.get('truncated')}" if report.get("truncated") else "")
        + (f"; left out {report.get('dropped')} {report.get('skipped_invalid')}" if report.get("dropped") else ""),
        metrics_table(result),
    ]
    if result.subsets:
        sections += ["## Per subset", subsets_table(result)]
    feedback_format = FORMATS.get(result.kind)
    sections += feedback_format.report_notes if feedback_format else ()
    sections += [f"![{name}]({os.path.basename(path)})" for name, path in paths.items() if path.endswith(".png")]
    with open(paths["markdown"], "w", encoding="utf-8") as f:
        f.write("\n\n".join(sections) + "\n")
    return paths


def write_plots(result: EvalResult, output_dir: str) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves, paths = result.curves, {}

    def save(fig, name):
        path = os.path.join(output_dir, f"{name}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths[name] = path

    if "chosen" in curves:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        feedback_format = FORMATS.get(result.kind)
        labels = feedback_format.histogram_labels if feedback_format else ("chosen", "rejected")
        bins = np.histogram_bin_edges(np.concatenate([curves["chosen"], curves["rejected"]]), bins=30)
        ax.hist(curves["chosen"], bins=bins, alpha=0.6, label=labels[0])
        ax.hist(curves["rejected"], bins=bins, alpha=0.6, label=labels[1])
        ax.set_xlabel("reward")
        ax.set_ylabel("responses")
        ax.legend()
        save(fig, "reward_histogram")
    if curves.get("reliability"):
        fig, ax = plt.subplots(figsize=(3.6, 3.4))
        conf = [b["confidence"] for b in curves["reliability"]]
        acc = [b["accuracy"] for b in curves["reliability"]]
        ax.plot([0.5, 1], [0.5, 1], "k--", lw=1, label="perfect")
        ax.plot(conf, acc, "o-", label=f"model (ECE {result.metrics.get('ece', float('nan')):.3f})")
        ax.set_xlabel("confidence max(p, 1-p)")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=8)
        save(fig, "reliability")

    def scatter(x, rewards, xlabel: str, spearman_key: str, name: str) -> None:
        fig, ax = plt.subplots(figsize=(4, 3.4))
        ax.scatter(x, rewards, s=6, alpha=0.4)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("reward")
        ax.set_title(f"Spearman {result.metrics.get(spearman_key, float('nan')):.3f}", fontsize=9)
        save(fig, name)

    if "gold" in curves:
        scatter(curves["gold"], curves["predicted"], "gold score", "spearman", "predicted_vs_gold")
    if "lengths" in curves and len(curves["lengths"]):
        scatter(
            curves["lengths"],
            curves["rewards"],
            "response length (tokens)",
            "length_reward_spearman",
            "reward_vs_length",
        )
    return paths
