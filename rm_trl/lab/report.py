"""Tables of a lab run: each cell's metrics with a t interval over seeds, the named paired comparisons (per-seed
differences, `rm_trl.metrics.paired`), and the sample-efficiency curve. Markdown for people, JSON for tools."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict
from typing import Any

from ..metrics.paired import paired_seed_difference, seed_interval
from .design import FEEDBACK_NOTES, LabDesign

METRICS = ("spearman", "pair_accuracy", "prob_mae", "prob_ece", "length_corr", "filler_corr")
TABLE_METRICS = ("spearman", "pair_accuracy", "prob_mae", "length_corr")
LOWER_IS_BETTER = frozenset({"prob_mae", "prob_ece"})
CLOSER_TO_ZERO_IS_BETTER = frozenset({"length_corr", "filler_corr"})


def _by_cell(records: list[dict], budget: int) -> dict[str, dict[int, dict]]:
    """cell name -> seed -> record, at one budget."""
    out: dict[str, dict[int, dict]] = defaultdict(dict)
    for record in records:
        if record["budget"] == budget:
            out[record["cell"]][record["seed"]] = record
    return out


def cell_table(records: list[dict], budget: int) -> list[dict[str, Any]]:
    """One row per cell at `budget`: each metric's mean and 95% t interval over seeds."""
    rows = []
    for seeds in _by_cell(records, budget).values():
        first = next(iter(seeds.values()))
        row = {k: first[k] for k in ("cell", "loss", "family", "feedback", "spurious")}
        for metric in METRICS:
            row[metric] = asdict(seed_interval([seeds[s][metric] for s in sorted(seeds)]))
        row["seconds"] = sum(r["seconds"] for r in seeds.values()) / len(seeds)
        rows.append(row)
    return rows


def comparisons(records: list[dict], design: LabDesign) -> list[dict[str, Any]]:
    """Each named comparison, per metric: mean per-seed difference a - b, its t interval and paired p value."""
    cells = _by_cell(records, design.budget)
    out = []
    for comparison in design.comparisons:
        a, b = cells.get(comparison.a, {}), cells.get(comparison.b, {})
        seeds = sorted(set(a) & set(b))
        if not seeds:  # a design without one of the two cells (e.g. --refinements alone): nothing to compare
            continue
        for metric in comparison.metrics:
            diff = paired_seed_difference([a[s][metric] for s in seeds], [b[s][metric] for s in seeds])
            out.append(
                {
                    "title": comparison.title,
                    "a": comparison.a,
                    "b": comparison.b,
                    "metric": metric,
                    **asdict(diff),
                    "verdict": verdict(diff.estimate, diff.low, diff.high, metric),
                }
            )
    return out


def verdict(estimate: float, low: float, high: float, metric: str) -> str:
    """Plain words for a difference a - b: which side the interval shows better, or that it shows none."""
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0 <= high:
        return "no difference shown"
    if metric in CLOSER_TO_ZERO_IS_BETTER:
        return "a further from 0" if estimate > 0 else "a closer to 0"
    a_higher = estimate > 0
    return "a better" if a_higher != (metric in LOWER_IS_BETTER) else "b better"


def curve(records: list[dict], design: LabDesign) -> list[dict[str, Any]]:
    """Spearman of each curve cell at each budget, with its interval over seeds."""
    budgets = sorted({design.budget, *design.curve_budgets}) if design.curve_budgets else []
    rows = []
    for cell in design.curve_cells:
        for budget in budgets:
            seeds = _by_cell(records, budget).get(cell.name, {})
            if seeds:
                values = [seeds[s]["spearman"] for s in sorted(seeds)]
                rows.append({"cell": cell.name, "budget": budget, "spearman": asdict(seed_interval(values))})
    return rows


def _interval(value: dict[str, float]) -> str:
    if not math.isfinite(value["mean"]):
        return "-"
    if not math.isfinite(value["low"]):
        return f"{value['mean']:.3f}"
    return f"{value['mean']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"


def markdown(result: dict[str, Any]) -> str:
    """The lab's tables in Markdown: cells, comparisons, sample-efficiency curve."""
    design = result["design"]
    n_seeds = len(design["seeds"])
    lines = [
        f"Budget {design['budget']} responses read per cell, {n_seeds} seeds, {design['test_responses']} fresh test "
        "responses; mean [95% t interval over seeds].",
        "",
        "| loss | feedback | " + " | ".join(TABLE_METRICS) + " |",
        "|---|---|" + "---|" * len(TABLE_METRICS),
    ]
    for row in result["cells"]:
        feedback = row["feedback"] + (" (spurious length)" if row["spurious"] else "")
        values = " | ".join(_interval(row[m]) for m in TABLE_METRICS)
        lines.append(f"| {row['loss']} | {feedback} | {values} |")
    lines += [
        "",
        "Paired comparisons: mean over seeds of (a - b) on the same seed, 95% t interval, paired t-test p.",
        "",
        "| comparison | metric | a - b | p | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in result["comparisons"]:
        diff = f"{c['estimate']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]"
        lines.append(f"| {c['title']} | {c['metric']} | {diff} | {c['p_value']:.3f} | {c['verdict']} |")
    if result["curve"]:
        lines += ["", "Sample efficiency (Spearman vs budget):", "", "| cell | budget | spearman |", "|---|---|---|"]
        lines += [f"| {r['cell']} | {r['budget']} | {_interval(r['spearman'])} |" for r in result["curve"]]
    lines += ["", "Feedback kinds:", ""]
    kinds = dict.fromkeys(row["feedback"] for row in result["cells"])
    lines += [f"- `{kind}`: {FEEDBACK_NOTES[kind]}" for kind in kinds]
    return "\n".join(lines) + "\n"


def summarize(records: list[dict], design: LabDesign) -> dict[str, Any]:
    """Everything a lab run reports, JSON-ready."""
    return {
        "design": {
            "seeds": list(design.seeds),
            "budget": design.budget,
            "curve_budgets": list(design.curve_budgets),
            "test_responses": design.test_responses,
            "train": asdict(design.train),
        },
        "cells": cell_table(records, design.budget),
        "comparisons": comparisons(records, design),
        "curve": curve(records, design),
        "records": records,
    }
