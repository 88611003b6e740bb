"""Simulated annotators: every kind of feedback rm-trl trains on, produced from the world's true reward r*.

Each function reads a pool of responses laid out in groups of `GROUP` consecutive responses to one prompt (see
`World.sample_responses(group_size=GROUP)`) and returns a `Feedback`: rows in rm-trl's own formats (rated
`{"prompt", "response", "score"}`, pairwise `{"prompt", "chosen", "rejected"[, "margin"]}`, ranked
`{"prompt", "completions", "ranks"}`), the format's name, and the cost.

Cost unit: responses read. A rating reads 1 response, a pairwise choice 2, a ranking of K responses K. Every
feedback kind made from the same pool therefore costs exactly the pool's size: rating each response, choosing
within pairs (0, 1) and (2, 3) of each group, or ranking each group whole all read every response once, which is
what makes "equal annotator time" comparisons exact. A tie, a dropped or a flipped label costs as much as any.

Choice models: Bradley-Terry `P(a > b) = sigmoid((r*_a - r*_b) / beta)`; Thurstone (probit)
`P(a > b) = Phi((r*_a - r*_b) / (beta * 1.7))` (the 1.7 puts the two curves' slopes close, so only the shape
differs); Plackett-Luce rankings by the Gumbel trick, whose pairwise marginals are Bradley-Terry with the same
beta. `choice_probability` gives the true preference probability each model implies, for calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit
from scipy.stats import norm

from .world import Responses

GROUP = 4  # responses per prompt in a pool: 4 ratings, 2 pairs or 1 ranked list of 4
THURSTONE_SCALE = 1.7  # probit slope matched to the logistic one


@dataclass
class Feedback:
    """Annotations of one pool: rows in rm-trl format `format`, their cost in responses read, and counts."""

    kind: str
    format: str
    rows: list[dict[str, Any]]
    cost: int
    counts: dict[str, float] = field(default_factory=dict)


def choice_probability(diff: np.ndarray, model: str = "bradley_terry", beta: float = 1.0) -> np.ndarray:
    """True probability that a is preferred to b given `diff = r*_a - r*_b`, under the annotator's model."""
    if model == "bradley_terry":
        return expit(diff / beta)
    if model == "thurstone":
        return norm.cdf(diff / (beta * THURSTONE_SCALE))
    raise ValueError(f"unknown choice model {model!r}")


# ----- ratings -------------------------------------------------------------------------------------------------------
def ratings(
    pool: Responses,
    rng: np.random.Generator,
    *,
    noise: float = 0.75,
    outlier_fraction: float = 0.0,
    outlier_size: tuple[float, float] = (3.0, 6.0),
    kind: str = "ratings",
) -> Feedback:
    """`score = r* + N(0, noise^2)`; a fraction `outlier_fraction` of the ratings are gross errors instead: r* plus
    a random sign times U(outlier_size) (a rater who misread the scale or clicked the wrong end)."""
    scores = pool.reward + noise * rng.standard_normal(len(pool))
    outlier = rng.random(len(pool)) < outlier_fraction
    jumps = rng.choice([-1.0, 1.0], size=len(pool)) * rng.uniform(*outlier_size, size=len(pool))
    scores = np.where(outlier, pool.reward + jumps, scores)
    rows = [_rated(pool, i, float(s)) for i, s in enumerate(scores)]
    return Feedback(kind, "rated", rows, cost=len(pool), counts={"outliers": int(outlier.sum())})


LIKERT_CUTS = (-1.5, -0.5, 0.5, 1.5)  # latent (r* + noise) -> 1..5


def likert(pool: Responses, rng: np.random.Generator, *, noise: float = 0.75, kind: str = "likert") -> Feedback:
    """A 1-5 Likert rating: the noisy latent `r* + N(0, noise^2)` cut at `LIKERT_CUTS` (bounded and rounded)."""
    latent = pool.reward + noise * rng.standard_normal(len(pool))
    scores = np.digitize(latent, LIKERT_CUTS) + 1
    rows = [_rated(pool, i, int(s)) for i, s in enumerate(scores)]
    return Feedback(kind, "rated", rows, cost=len(pool))


def thumbs(pool: Responses, rng: np.random.Generator, *, beta: float = 1.0, kind: str = "thumbs") -> Feedback:
    """Binary thumbs up (1) / down (0) with `P(up) = sigmoid(r* / beta)`: a BCE reward model is well specified."""
    labels = (rng.random(len(pool)) < expit(pool.reward / beta)).astype(int)
    rows = [_rated(pool, i, int(s)) for i, s in enumerate(labels)]
    return Feedback(kind, "rated", rows, cost=len(pool), counts={"up_fraction": float(labels.mean())})


def biased_ratings(
    pool: Responses,
    rng: np.random.Generator,
    *,
    noise: float = 0.75,
    annotators: int = 8,
    bias: float = 1.0,
    kind: str = "ratings_biased",
) -> Feedback:
    """Ratings where each prompt's group is rated by one of `annotators` raters with an offset drawn from
    N(0, bias^2) (some rate everything higher); the rater's id is in an `annotator` column. The offset is shared
    within a group, so pairs made within a prompt (rm-trl's rated -> pairwise conversion) do not see it."""
    errors = noise * rng.standard_normal(len(pool))  # drawn first: the same errors as `ratings` on this stream
    offsets = bias * rng.standard_normal(annotators)
    rater = np.repeat(rng.integers(0, annotators, size=-(-len(pool) // GROUP)), GROUP)[: len(pool)]
    scores = pool.reward + errors + offsets[rater]
    rows = [{**_rated(pool, i, float(s)), "annotator": f"a{rater[i]}"} for i, s in enumerate(scores)]
    return Feedback(kind, "rated", rows, cost=len(pool), counts={"offset_sd": float(offsets.std())})


def _rated(pool: Responses, i: int, score: float | int) -> dict[str, Any]:
    return {"prompt": pool.prompts[i], "response": pool.texts[i], "score": score}


# ----- pairwise choices ----------------------------------------------------------------------------------------------
def pairs(
    pool: Responses,
    rng: np.random.Generator,
    *,
    model: str = "bradley_terry",
    beta: float = 1.0,
    flip: float = 0.0,
    tie_band: float = 0.0,
    margin: bool = False,
    kind: str = "pairs",
) -> Feedback:
    """One choice per pair (responses 2i and 2i+1, same prompt) drawn from `model`. Then a fraction `flip` of the
    labels is swapped (annotator mistakes); pairs whose true gap is below `tie_band` are judged a tie, and
    dropped, since rm-trl's pairwise rows hold a strict preference (their cost is still paid). With `margin`,
    rows carry `margin = r*_chosen - r*_rejected`, the true rating gap (negative when the choice went against
    the truth)."""
    a, b = np.arange(0, len(pool) - 1, 2), np.arange(1, len(pool), 2)
    diff = pool.reward[a] - pool.reward[b]
    a_wins = rng.random(len(a)) < choice_probability(diff, model, beta)
    flipped = rng.random(len(a)) < flip
    a_wins ^= flipped
    tied = np.abs(diff) < tie_band
    rows = []
    for i, j, win, tie in zip(a, b, a_wins, tied):
        if tie:
            continue
        chosen, rejected = (i, j) if win else (j, i)
        row = {"prompt": pool.prompts[i], "chosen": pool.texts[chosen], "rejected": pool.texts[rejected]}
        if margin:
            row["margin"] = float(pool.reward[chosen] - pool.reward[rejected])
        rows.append(row)
    truth_agrees = (a_wins == (diff > 0))[~tied]
    counts = {
        "pairs": len(a),
        "ties_dropped": int(tied.sum()),
        "flipped": int(flipped.sum()),
        "agreement_with_truth": float(truth_agrees.mean()) if len(truth_agrees) else float("nan"),
    }
    return Feedback(kind, "pairwise", rows, cost=2 * len(a), counts=counts)


# ----- rankings ------------------------------------------------------------------------------------------------------
def rankings(
    pool: Responses,
    rng: np.random.Generator,
    *,
    beta: float = 1.0,
    tie_band: float = 0.0,
    kind: str = "lists",
) -> Feedback:
    """Each group of `GROUP` responses ranked by Plackett-Luce (sort of `r*/beta + Gumbel noise`, best first).
    With `tie_band`, consecutive responses in that order whose true rewards lie within `tie_band` of each other
    share a rank (the annotator cannot tell them apart); a list left all tied is dropped (cost still paid)."""
    rows, all_tied = [], 0
    for start in range(0, len(pool) - GROUP + 1, GROUP):
        members = np.arange(start, start + GROUP)
        order = members[np.argsort(-(pool.reward[members] / beta + rng.gumbel(size=GROUP)))]
        ranks = np.zeros(GROUP, dtype=int)
        for position in range(1, GROUP):
            previous, current = order[position - 1], order[position]
            close = abs(pool.reward[previous] - pool.reward[current]) < tie_band
            ranks[position] = ranks[position - 1] + (0 if close else 1)
        if ranks.max() == 0:
            all_tied += 1
            continue
        rank_of = dict(zip(order.tolist(), ranks.tolist()))
        rows.append(
            {
                "prompt": pool.prompts[start],
                "completions": [pool.texts[i] for i in members],
                "ranks": [rank_of[i] for i in members.tolist()],
            }
        )
    lists = len(pool) // GROUP
    tied_pairs = sum(len(r["ranks"]) - len(set(r["ranks"])) for r in rows)
    counts = {"lists": lists, "all_tied_dropped": all_tied, "tied_positions": tied_pairs}
    return Feedback(kind, "ranked", rows, cost=GROUP * lists, counts=counts)
