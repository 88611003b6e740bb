"""Generate the controlled robustness data in data/robust/ (issue #17, item 5): preference pairs whose true label is
known, where length is a spurious cue in training and a misleading one at test, plus a topic shift.

    python scripts/make_length_data.py                  # rewrites data/robust/*.jsonl
    python scripts/make_length_data.py --out /tmp/robust --train 4000

Responses come from the loss lab's world (`rm_trl.lab.world`): content words each carry a hidden weight, the true
reward is their mean (unit spread), and filler words (`um`, `so`, ...) carry nothing. In a pair the response with the
higher true reward is the better (pairs closer than `MIN_GAP` are not drawn). The test splits' labels are the truth;
the training and eval splits are annotated as people do, picking the better response with probability
`sigmoid(gap / ANNOTATOR_TEMPERATURE)` (`label_is_true` says which), so content predicts their labels imperfectly.
Length is set by fillers alone, after the label, independently of the truth:

- `train.jsonl` / `eval.jsonl`: in 90% of the pairs the chosen response is the longer one (`LENGTH_AGREES_TRAIN`);
- `test_held_in.jsonl`: the training distribution (annotated labels, chosen longer in 90%), for calibration;
- `test_length_anti.jsonl`: in 90% of the pairs the chosen response is the shorter one (a model that learned
  "longer is better" loses here; one that learned the content does not);
- `test_length_neutral.jsonl`: 50%;
- `test_shift.jsonl`: the topic shift. Training responses use content words `w000`-`w149` only; here half of the
  pairs use the held-out words `w150`-`w199` (`shifted: true`), which no model saw in training; the two responses
  of a pair are equally long (`chosen_longer: null`), so only content decides and the errors come from the shift.

Every row: `{"prompt", "chosen", "rejected", "chosen_longer", "shifted", "true_gap", "label_is_true", "subset"}`
(the pairwise format reads the first three; `subset` names the row's kind for per-subset tables).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from rm_trl.lab.world import World  # noqa: E402

SEED = 20261125
OUT_DIR = os.path.join(REPO_ROOT, "data", "robust")
SPLITS = {  # name: (pairs, fraction whose chosen response is the longer, fraction shifted, annotated by people)
    "train": (3000, 0.9, 0.0, True),
    "eval": (400, 0.9, 0.0, True),
    "test_held_in": (600, 0.9, 0.0, True),  # the training distribution, annotated: for calibration
    "test_length_anti": (600, 0.1, 0.0, False),
    "test_length_neutral": (600, 0.5, 0.0, False),
    "test_shift": (600, None, 0.5, False),  # None: both responses of a pair equally long (content decides)
}
ANNOTATOR_TEMPERATURE = 1.0  # annotated splits: the truly better response is chosen with p = sigmoid(gap / T)
TRAIN_WORDS = 150  # content words w000..w149 in training; the rest only in shifted test pairs
MIN_GAP = 0.25  # smallest true-reward gap of a pair (in units of the truth's spread)
MIN_WORDS, MAX_WORDS = 4, 14


def content(world: World, rng: np.random.Generator, shifted: bool) -> np.ndarray:
    low, high = (TRAIN_WORDS, world.spec.content_words) if shifted else (0, TRAIN_WORDS)
    return rng.integers(low, high, size=rng.integers(MIN_WORDS, MAX_WORDS + 1))


def make_pair(
    world: World, rng: np.random.Generator, longer_chosen: bool | None, shifted: bool, annotated: bool
) -> dict:
    while True:
        a, b = content(world, rng, shifted), content(world, rng, shifted)
        gap = (world.weights[a].mean() - world.weights[b].mean()) / world.scale
        if abs(gap) >= MIN_GAP:
            break
    better, worse = (a, b) if gap > 0 else (b, a)
    agrees = not annotated or rng.random() < 1.0 / (1.0 + np.exp(-abs(gap) / ANNOTATOR_TEMPERATURE))
    chosen, rejected = (better, worse) if agrees else (worse, better)
    base = max(len(chosen), len(rejected)) + int(rng.integers(0, 4))
    extra = int(rng.integers(2, 9))
    if longer_chosen is None:  # equally long: length says nothing
        total_chosen = total_rejected = base
    else:
        total_chosen, total_rejected = (base + extra, base) if longer_chosen else (base, base + extra)
    prompt = world.sample_prompts(1, rng)[0]
    return {
        "prompt": prompt,
        "chosen": " " + world._text(chosen, total_chosen - len(chosen), rng),
        "rejected": " " + world._text(rejected, total_rejected - len(rejected), rng),
        "chosen_longer": longer_chosen,
        "shifted": shifted,
        "subset": ("shifted" if shifted else "in_domain")
        + ("/equal_length" if longer_chosen is None else "/chosen_longer" if longer_chosen else "/chosen_shorter"),
        "true_gap": round(float(abs(gap)), 4),
        "label_is_true": bool(agrees),
    }


def make_split(
    world: World, rng: np.random.Generator, pairs: int, agree: float, shift: float, annotated: bool
) -> list[dict]:
    longer = [None] * pairs if agree is None else rng.permutation(np.arange(pairs) < round(agree * pairs))
    shifted = rng.permutation(np.arange(pairs) < round(shift * pairs))
    return [
        make_pair(world, rng, None if lc is None else bool(lc), bool(s), annotated) for lc, s in zip(longer, shifted)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", default=OUT_DIR)
    parser.add_argument("--train", type=int, default=SPLITS["train"][0], help="training pairs")
    args = parser.parse_args(argv)
    world = World(seed=args.seed)
    os.makedirs(args.out, exist_ok=True)
    for split, (pairs, agree, shift, annotated) in SPLITS.items():
        rng = np.random.default_rng([args.seed, list(SPLITS).index(split)])
        rows = make_split(world, rng, args.train if split == "train" else pairs, agree, shift, annotated)
        path = os.path.join(args.out, f"{split}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
        longer, shifted = np.mean([bool(r["chosen_longer"]) for r in rows]), np.mean([r["shifted"] for r in rows])
        true = np.mean([r["label_is_true"] for r in rows])
        print(f"{path}: {len(rows)} pairs, chosen longer in {longer:.0%}, shifted {shifted:.0%}, label true {true:.0%}")


if __name__ == "__main__":
    main()
