"""Copy the comparison runs behind docs/loss_analysis.md into docs/loss_analysis/ and print their compact tables.

    python scripts/collect_loss_analysis.py            # after the recipes/compare.py runs listed in the report

For each `outputs/compare-<name>/`: copies `comparison.md`, `comparison.json` and `comparison.png` to
`docs/loss_analysis/<name>.*` (the full tables, every metric), and prints a short Markdown table of the headline
metrics with their 95% bootstrap intervals, for pasting into the report.
"""

from __future__ import annotations

import json
import os
import shutil

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ("pairwise-hh", "pairwise-tldr", "rated-wmt", "rated-usr", "demo", "ranked-oasst")
COLUMNS = {
    "pairwise": ("accuracy", "ece", "margin", "accuracy_chosen_longer", "accuracy_chosen_shorter"),
    "rated": ("spearman", "pearson", "kendall", "mae", "rmse", "pair_accuracy", "length_reward_spearman"),
    "ranked": ("pair_accuracy", "top1_accuracy", "ndcg", "kendall_tau", "length_reward_spearman"),
}


def compact_table(runs: dict) -> str:
    kind = next(iter(runs.values()))["kind"]
    columns = [c for c in COLUMNS[kind] if any(c in r["metrics"] for r in runs.values())]
    lines = [
        "| run | " + " | ".join(columns) + " | train s | peak RSS MB |",
        "|---|" + "---|" * (len(columns) + 2),
    ]
    for name, row in runs.items():
        cells = []
        for column in columns:
            value = row["metrics"].get(column)
            text = "" if value is None else f"{value:.3f}"
            if column in row["intervals"]:
                low, high = row["intervals"][column]
                text += f" [{low:.3f}, {high:.3f}]"
            cells.append(text)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['train_seconds']:.0f} | {row['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    target = os.path.join(REPO_ROOT, "docs", "loss_analysis")
    os.makedirs(target, exist_ok=True)
    for name in NAMES:
        source = os.path.join(REPO_ROOT, "outputs", f"compare-{name}")
        if not os.path.exists(os.path.join(source, "comparison.json")):
            print(f"## {name}: not run yet\n")
            continue
        for ext in ("md", "json", "png"):
            shutil.copy(os.path.join(source, f"comparison.{ext}"), os.path.join(target, f"{name}.{ext}"))
        runs = json.load(open(os.path.join(source, "comparison.json")))["runs"]
        print(f"## {name}\n\n{compact_table(runs)}\n")


if __name__ == "__main__":
    main()
