"""Length-only baselines for the loss-analysis report: how far does "the longer response is better" get?

    python scripts/length_baselines.py

Scores every response by its length in characters and evaluates that "reward" with the same metrics as the
models (`rm_trl.evaluation.evaluate_length_baseline`: pairwise accuracy; Spearman for rated data; pair accuracy over
untied pairs for ranked lists). `recipes/compare.py` reports the same baseline next to every comparison.
"""

from __future__ import annotations

import os

from rm_trl.data import load_data
from rm_trl.data.formats import FORMATS
from rm_trl.evaluation import evaluate_length_baseline

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")
TESTS = {
    "hh-rlhf pairs": "hh-rlhf/pairwise_test.jsonl",
    "TL;DR pairs": "summarize-from-feedback/pairwise_tldr_test.jsonl",
    "WMT MQM en-de rated": "wmt-mqm-ted/rated_ende_test.jsonl",
    "USR Topical-Chat rated": "usr-dialog-ratings/rated_topicalchat_test.jsonl",
    "oasst1 ranked": "oasst1-en100/ranked_test.jsonl",
}
DESCRIBE = {
    "pairwise": "pairwise accuracy {value:.3f} (chosen longer)",
    "rated": "Spearman {value:.3f}",
    "ranked": "pair accuracy {value:.3f} over {pairs:.0f} untied pairs",
}


def main() -> None:
    print("| test set | length-only baseline |")
    print("|---|---|")
    for name, path in TESTS.items():
        result = evaluate_length_baseline(load_data(os.path.join(SHARED, path)), bootstrap_samples=0)
        value = result.metrics[FORMATS[result.kind].headline]
        text = DESCRIBE[result.kind].format(value=value, pairs=result.metrics.get("pairs", 0))
        print(f"| {name} | {text} |")


if __name__ == "__main__":
    main()
