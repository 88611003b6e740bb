"""Paired tests between runs scored on the same test items, and the per-item rewards they need.

Two models scored on the same test items make correlated errors, so their difference is far better determined
than either number alone, and overlapping marginal intervals say little. For runs A and B (each with one result per
seed; a baseline is one result used for every seed) on the test items both scored:
- `items`: a paired bootstrap (`rm_trl.metrics.paired.paired_bootstrap`) of mean-over-seeds headline(A) minus
  headline(B), resampling test items (whole prompts where several items share one, so they stay together);
- `seeds`: a paired t interval over per-seed differences (seed i of A against seed i of B), with two or more seeds;
- `mcnemar`: where the headline is an accuracy over ordered pairs (pairwise accuracy, ranked pair accuracy),
  McNemar's exact test of per-pair correctness, one per seed. The pairs of one ranked list share its prompt, so
  there the list-resampling bootstrap is the test to trust.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import numpy as np
from datasets import Dataset

from ..data.formats import FORMATS, ScoredRows
from ..evaluation import EvalResult, evaluate_items
from ..metrics.paired import mcnemar, paired_bootstrap, paired_seed_difference


def save_items(result: EvalResult, path: str) -> None:
    """Write the per-item rewards of an evaluation (source rows, rewards, lengths) as JSON."""
    items = result.items
    data = {
        "kind": result.kind,
        "score_column": items.score_column,
        "rows": [int(r) for r in items.rows],
        "rewards": [np.asarray(r, np.float64).tolist() for r in items.rewards],
        "lengths": [np.asarray(n).tolist() for n in items.lengths],
    }
    with open(path, "w") as f:
        json.dump(data, f)


def load_items(path: str, raw: Dataset) -> EvalResult:
    """The evaluation of saved per-item rewards on the source data `raw` (no interval: paired tests need none)."""
    data = json.load(open(path))
    rewards = [np.asarray(r, np.float64) for r in data["rewards"]]
    lengths = [np.asarray(n) for n in data["lengths"]]
    items = ScoredRows(raw, np.asarray(data["rows"], np.int64), rewards, lengths, data["score_column"])
    return evaluate_items(items, data["kind"], bootstrap_samples=0)


def correct_pairs(items: ScoredRows, positions: np.ndarray) -> np.ndarray | None:
    """Per ordered pair of the selected items, whether the better response got the higher reward (a tie is wrong):
    rows of two responses, chosen first, or ranked lists (every untied pair); None for other formats."""
    if "ranks" in items.raw.column_names:
        ranks = items.raw["ranks"]
        out = []
        for p in positions:
            rewards, rank = items.rewards[p], np.asarray(ranks[int(items.rows[p])], np.float64)
            better = rank[:, None] < rank[None, :]
            out.append((rewards[:, None] > rewards[None, :])[better])
        return np.concatenate(out) if out else np.zeros(0, bool)
    if all(len(items.rewards[p]) == 2 for p in positions) and {"chosen", "rejected"} <= set(items.raw.column_names):
        return np.array([items.rewards[p][0] > items.rewards[p][1] for p in positions], bool)
    return None


def common_rows(results: list[EvalResult]) -> np.ndarray:
    """Source rows every result scored (normally all of them), sorted."""
    rows = set(int(r) for r in results[0].items.rows)
    for result in results[1:]:
        rows &= set(int(r) for r in result.items.rows)
    return np.array(sorted(rows), np.int64)


def positions_of(result: EvalResult, rows: np.ndarray) -> np.ndarray:
    """Where each of `rows` sits among the result's scored items."""
    where = {int(r): i for i, r in enumerate(result.items.rows)}
    return np.array([where[int(r)] for r in rows], np.int64)


def prompt_groups(raw: Dataset, rows: np.ndarray) -> list[str] | None:
    """The prompt of each row, when the data has prompts and some are shared (the bootstrap keeps them together)."""
    if "prompt" not in raw.column_names:
        return None
    prompts = raw["prompt"]
    groups = [p if isinstance(p, str) else json.dumps(p, sort_keys=True) for p in (prompts[int(r)] for r in rows)]
    return groups if len(set(groups)) < len(groups) else None


def paired_comparison(
    a: list[EvalResult], b: list[EvalResult], *, resamples: int = 1000, confidence: float = 0.95
) -> dict[str, Any]:
    """A minus B in the headline on the test items both scored: paired bootstrap over items, paired t over seeds,
    McNemar per seed where the headline is a pair accuracy. `b` has one result per seed of `a`, or one for all."""
    if len(b) == 1:
        b = b * len(a)
    if len(a) != len(b):
        raise ValueError(f"paired runs need one result per seed each, got {len(a)} and {len(b)}")
    rows = common_rows(a + b)
    a_pos = [positions_of(r, rows) for r in a]
    b_pos = [positions_of(r, rows) for r in b]

    def mean_headline(results: list[EvalResult], positions: list[np.ndarray], idx: np.ndarray) -> float:
        return float(np.mean([r.evaluation.headline(p[idx]) for r, p in zip(results, positions)]))

    def statistic(idx: np.ndarray) -> float:
        return mean_headline(a, a_pos, idx) - mean_headline(b, b_pos, idx)

    groups = prompt_groups(a[0].items.raw, rows)
    items = paired_bootstrap(statistic, len(rows), groups=groups, resamples=resamples, confidence=confidence)
    everything = np.arange(len(rows))
    a_values = [r.evaluation.headline(p[everything]) for r, p in zip(a, a_pos)]
    b_values = [r.evaluation.headline(p[everything]) for r, p in zip(b, b_pos)]
    return {
        "metric": FORMATS[a[0].kind].headline,
        "items": asdict(items),
        "resampled": "prompts" if groups else "items",
        "seeds": asdict(paired_seed_difference(a_values, b_values, confidence)) if len(a) > 1 else None,
        "mcnemar": mcnemar_per_seed(a, a_pos, b, b_pos),
    }


def mcnemar_per_seed(
    a: list[EvalResult], a_pos: list[np.ndarray], b: list[EvalResult], b_pos: list[np.ndarray]
) -> list[dict[str, float]] | None:
    """McNemar's test of seed i of A against seed i of B on per-pair correctness; None unless the format's
    headline is a pair accuracy."""
    tests = []
    for ra, pa, rb, pb in zip(a, a_pos, b, b_pos):
        a_correct, b_correct = correct_pairs(ra.items, pa), correct_pairs(rb.items, pb)
        if a_correct is None or b_correct is None:
            return None
        tests.append(mcnemar(a_correct, b_correct))
    return tests


def paired_tests(
    results: dict[str, dict[int, EvalResult]], reference: str, baseline: EvalResult | None, *, resamples: int = 1000
) -> list[dict[str, Any]]:
    """The paired table: each run against the reference run (on the seeds both have, seed i against seed i), then
    each run against the length-only baseline."""
    out = []
    for name, seeds in results.items():
        if name != reference and reference in results:
            shared = [s for s in seeds if s in results[reference]]
            a, b = [seeds[s] for s in shared], [results[reference][s] for s in shared]
            out.append({"run": name, "versus": reference, **paired_comparison(a, b, resamples=resamples)})
    if baseline is not None:
        for name, seeds in results.items():
            comparison = paired_comparison(list(seeds.values()), [baseline], resamples=resamples)
            out.append({"run": name, "versus": "length only", **comparison})
    return out
