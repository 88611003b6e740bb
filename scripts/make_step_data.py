"""Generate the process-reward demo data in data/stepwise/ (deterministic; standard library only, no network).

    python scripts/make_step_data.py                 # rewrites data/stepwise/{train,eval,test}.jsonl
    python scripts/make_step_data.py --seed 7 --out /tmp/steps --train 300

Each problem is a short arithmetic word problem with a fixed, regular template, and its solution is computed one
step per sentence; each step restates the operation it carries out, then writes it as one equation:

    prompt: "Mia has 7 apples. She gets 5 more. She gets 3 times as many. She gives away 9. How many now?"
    steps:  ["Add 5: 7 + 5 = 12", "Times 3: 12 * 3 = 36", "Take away 9: 36 - 9 = 27"]

Erroneous solutions have one error injected at a random step, of one of three kinds (`error_kind`):

- `wrong_operation`: the equation applies another operation to the right numbers (`Add 5: 7 - 5 = 2`);
- `arithmetic_slip`: the right expression with a wrong result (`Add 5: 7 + 5 = 13`);
- `copied_wrong_number`: a number copied wrongly into the equation, either the problem's number
  (`Add 5: 7 + 6 = 13`) or the previous step's result (`Times 3: 11 * 3 = 33` after `... = 12`); the arithmetic
  itself is right.

The steps after an error are computed correctly from the wrong value (the error propagates, as in real solutions).
An injected error always changes the step's value, so every label is exact.

Label convention (Math-Shepherd / ProcessBench): a step is correct (`true`) iff it and every step before it are
correct, so every step from the first error on is `false`. Each row also stores `first_error` (index of the first
wrong step, -1 when the solution is correct) and `error_kind` ("none" for a correct solution).

Rows (the stepwise format's canonical form, docs/process_rewards.md, plus three bookkeeping columns):

    {"prompt": str, "completions": [step, ...], "labels": [bool, ...], "first_error": int, "error_kind": str,
     "problem_id": str}

Every problem has `SOLUTIONS_PER_PROBLEM` (4) solutions, one or two of them correct, so best-of-N selection is
measurable. The train / eval / test splits are split by problem: no problem (prompt) is in two splits. Numbers stay
small (start 2-15, add / take away 1-9, times 2 or 3, correct values 1-30, erroneous ones 0-99): few arithmetic
facts to learn, and every number is one token of MiniLM's WordPiece vocabulary.
"""

from __future__ import annotations

import argparse
import json
import os
import random

SEED = 20261124
OUT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "stepwise")
SPLIT_SIZES = {"train": 2800, "eval": 100, "test": 150}  # problems per split
CURRICULUM_KINDS = ("none", "wrong_operation")  # train_curriculum.jsonl: the demo's first stage (recipes/stepwise.py)
SOLUTIONS_PER_PROBLEM = 4
MIN_OPS, MAX_OPS = 2, 4
MAX_CORRECT_VALUE = 30
MAX_VALUE = 99  # any value written in a solution, erroneous ones included
OPERANDS = {"+": range(1, 10), "-": range(1, 10), "*": (2, 3)}
ERROR_KINDS = ("wrong_operation", "arithmetic_slip", "copied_wrong_number")

NAMES = [("Mia", "she"), ("Leo", "he"), ("Ana", "she"), ("Tom", "he"), ("Zoe", "she"), ("Sam", "he")]
OBJECTS = ["apples", "coins", "stickers", "marbles", "books", "shells", "cards", "pencils"]
SENTENCES = {  # one fixed template per operation; {P} is the pronoun
    "+": "{P} gets {n} more.",
    "-": "{P} gives away {n}.",
    "*": "{P} gets {n} times as many.",
}
STEP_NAMES = {"+": "Add", "-": "Take away", "*": "Times"}  # a step restates its operation: "Add 5: 7 + 5 = 12"


def apply(op: str, a: int, n: int) -> int:
    return a + n if op == "+" else a - n if op == "-" else a * n


def make_problem(rng: random.Random) -> tuple[str, int, list[tuple[str, int]]]:
    """A problem: its prompt, start value and operations [(op, number)], every value in 1..MAX_CORRECT_VALUE."""
    while True:
        name, pronoun = rng.choice(NAMES)
        obj = rng.choice(OBJECTS)
        start = rng.randint(2, 15)
        value, ops = start, []
        for _ in range(rng.randint(MIN_OPS, MAX_OPS)):
            choices = [
                (op, n) for op, ns in OPERANDS.items() for n in ns if 1 <= apply(op, value, n) <= MAX_CORRECT_VALUE
            ]
            # weight the operations evenly, whatever the number of admissible numbers of each
            by_op = {}
            for op, n in choices:
                by_op.setdefault(op, []).append(n)
            op = rng.choice(sorted(by_op))
            n = rng.choice(by_op[op])
            ops.append((op, n))
            value = apply(op, value, n)
        if len({op for op, _ in ops}) == 1 and len(ops) > 2:
            continue  # keep some variety inside a problem
        sentences = [f"{name} has {start} {obj}."]
        sentences += [SENTENCES[op].format(n=n, P=pronoun.capitalize()) for op, n in ops]
        sentences.append("How many now?")
        return " ".join(sentences), start, ops


def solve(start: int, ops: list[tuple[str, int]], error_at: int = -1, kind: str = "none", rng=None):
    """The solution's steps, with one error of `kind` injected at step `error_at` (-1: none); None when the
    injected error cannot be made (it would not change the value, or a value leaves 0..MAX_VALUE)."""
    steps, value = [], start
    for i, (op, n) in enumerate(ops):
        shown_op, left, right = op, value, n
        result = apply(op, left, right)
        if i == error_at:
            correct = result
            if kind == "wrong_operation":
                shown_op = rng.choice([o for o in "+-*" if o != op])
                result = apply(shown_op, left, right)
            elif kind == "arithmetic_slip":
                result = correct + rng.choice([-10, -3, -2, -1, 1, 2, 3, 10])
            else:  # copied_wrong_number: the problem's number or the previous result, copied wrongly
                if rng.random() < 0.5:
                    right = rng.choice([m for m in range(max(1, n - 5), n + 6) if m != n])
                else:
                    left = rng.choice([m for m in range(max(1, value - 5), value + 6) if m != value])
                result = apply(op, left, right)
            if result == correct:
                return None
        if not 0 <= result <= MAX_VALUE:
            return None
        steps.append(f"{STEP_NAMES[op]} {n}: {left} {shown_op} {right} = {result}")
        value = result
    return steps


def make_solutions(start: int, ops: list[tuple[str, int]], rng: random.Random) -> list[dict]:
    """`SOLUTIONS_PER_PROBLEM` solutions: one or two correct (identical), the others with distinct errors."""
    n_correct = rng.choice([1, 1, 2])
    solutions = [{"completions": solve(start, ops), "first_error": -1, "error_kind": "none"}] * n_correct
    seen = set()
    while len(solutions) < SOLUTIONS_PER_PROBLEM:
        error_at, kind = rng.randrange(len(ops)), rng.choice(ERROR_KINDS)
        steps = solve(start, ops, error_at, kind, rng)
        if steps is None or tuple(steps) in seen:
            continue
        seen.add(tuple(steps))
        solutions.append({"completions": steps, "first_error": error_at, "error_kind": kind})
    for solution in solutions:
        first = solution["first_error"]
        solution["labels"] = [first == -1 or i < first for i in range(len(ops))]
    rng.shuffle(solutions)
    return solutions


def make_splits(seed: int, sizes: dict[str, int]) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    prompts: set[str] = set()
    splits = {}
    for split, size in sizes.items():
        rows = []
        while len(rows) < size * SOLUTIONS_PER_PROBLEM:
            prompt, start, ops = make_problem(rng)
            if prompt in prompts:
                continue  # a problem is in one split only
            prompts.add(prompt)
            problem_id = f"{split}-{len(rows) // SOLUTIONS_PER_PROBLEM:04d}"
            for solution in make_solutions(start, ops, rng):
                rows.append(
                    {
                        "prompt": prompt,
                        "completions": solution["completions"],
                        "labels": solution["labels"],
                        "first_error": solution["first_error"],
                        "error_kind": solution["error_kind"],
                        "problem_id": problem_id,
                    }
                )
        splits[split] = rows
    return splits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", default=OUT_DIR)
    for split, size in SPLIT_SIZES.items():
        parser.add_argument(f"--{split}", type=int, default=size, help=f"problems in {split} (default {size})")
    args = parser.parse_args(argv)
    splits = make_splits(args.seed, {split: getattr(args, split) for split in SPLIT_SIZES})
    os.makedirs(args.out, exist_ok=True)
    for split, rows in splits.items():
        path = os.path.join(args.out, f"{split}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        steps = sum(len(r["labels"]) for r in rows)
        wrong = sum(not label for r in rows for label in r["labels"])
        print(f"{path}: {len(rows)} solutions, {steps} steps ({wrong / steps:.0%} labelled false)")
    path = os.path.join(args.out, "train_curriculum.jsonl")  # the training rows with one, local, kind of error
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in splits["train"] if r["error_kind"] in CURRICULUM_KINDS)
    print(f"{path}: the training solutions whose error kind is one of {CURRICULUM_KINDS}")


if __name__ == "__main__":
    main()
