"""Length-only baselines for the loss-analysis report: how far does "the longer response is better" get?

    python scripts/length_baselines.py

Scores every response by its length in characters and evaluates that "reward" with the same metrics as the
models (pairwise accuracy; Spearman for rated data; pair accuracy over untied pairs for ranked lists).
"""

from __future__ import annotations

import json
import os

import numpy as np

from rm_trl.metrics import correlation, pairwise_accuracy, ranked_group_metrics

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")
TESTS = {
    "hh-rlhf pairs": "hh-rlhf/pairwise_test.jsonl",
    "TL;DR pairs": "summarize-from-feedback/pairwise_tldr_test.jsonl",
    "WMT MQM en-de rated": "wmt-mqm-ted/rated_ende_test.jsonl",
    "USR Topical-Chat rated": "usr-dialog-ratings/rated_topicalchat_test.jsonl",
    "oasst1 ranked": "oasst1-en100/ranked_test.jsonl",
}


def main() -> None:
    print("| test set | length-only baseline |")
    print("|---|---|")
    for name, path in TESTS.items():
        rows = [json.loads(line) for line in open(os.path.join(SHARED, path))]
        if "chosen" in rows[0]:
            lengths = {key: np.array([len(r[key]) for r in rows]) for key in ("chosen", "rejected")}
            value = pairwise_accuracy(lengths["chosen"], lengths["rejected"])
            text = f"pairwise accuracy {value:.3f} (chosen longer)"
        elif "completions" in rows[0]:
            groups = [(np.array([len(c) for c in r["completions"]]), np.array(r["ranks"])) for r in rows]
            metrics = ranked_group_metrics(groups)
            text = f"pair accuracy {metrics['pair_accuracy']:.3f} over {metrics['pairs']:.0f} untied pairs"
        else:
            value = correlation([len(r["response"]) for r in rows], [r["score"] for r in rows], "spearman")
            text = f"Spearman {value:.3f}"
        print(f"| {name} | {text} |")


if __name__ == "__main__":
    main()
