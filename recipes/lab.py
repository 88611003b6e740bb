"""The loss lab: reward-model losses trained on simulated feedback whose true reward is known (`docs/loss_lab.md`).

    python recipes/lab.py --quick                      # 3 seeds, every cell at budget 1000: under 10 min on 2 cores
    python recipes/lab.py                              # the full lab: 8 seeds, curve over 250..4000 responses read
    python recipes/lab.py --seeds 5 --budgets 500,1000 --output_dir outputs/lab-mine
    python recipes/lab.py --quick --seeds 3-7 --budgets '' --output_dir outputs/lab-b    # more seeds, elsewhere
    python recipes/lab.py --quick --seeds 3 --curve_only --budgets 2000,4000 --output_dir outputs/lab-c
    python recipes/lab.py --quick --combine outputs/lab-quick/lab.json outputs/lab-b/lab.json   # one table
    python recipes/lab.py --quick --refinements --seeds 8 --output_dir outputs/lab-refinements    # hinge, ...

Every cell trains through rm-trl's own recipe entry (`rm_trl.recipe.main`) on a tiny word-level Llama, and is
scored on fresh responses by `RewardScorer`. Prints the table of loss x feedback kind x metric with intervals over
seeds and the paired comparisons, and writes `lab.json` (every run) and `lab.md` to the output folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rm_trl.lab.design import FULL, QUICK, REFINEMENT_CELLS, LabDesign  # noqa: E402
from rm_trl.lab.report import markdown, summarize  # noqa: E402
from rm_trl.lab.runner import run_lab  # noqa: E402


def parse_seeds(text: str) -> tuple[int, ...]:
    """`5` (seeds 0..4), `3-7` (3..7) or `0,2,9`."""
    if "," in text:
        return tuple(int(s) for s in text.split(","))
    if "-" in text:
        first, last = text.split("-")
        return tuple(range(int(first), int(last) + 1))
    return tuple(range(int(text)))


def design_from(args: argparse.Namespace) -> LabDesign:
    """The quick or full design, with any of seeds / budget / curve budgets given on the command line."""
    design = QUICK if args.quick else FULL
    changes: dict = {}
    if args.seeds:
        changes["seeds"] = parse_seeds(args.seeds)
    if args.budget:
        changes["budget"] = args.budget
    if args.budgets is not None:
        changes["curve_budgets"] = tuple(int(b) for b in args.budgets.split(",") if b)
    if args.curve_only:
        changes["cells"] = ()
    if args.refinements:
        changes["cells"] = REFINEMENT_CELLS
        changes["curve_budgets"] = ()
    return dataclasses.replace(design, **changes)


def combine(paths: list[str], design: LabDesign) -> tuple[list[dict], LabDesign]:
    """Records of several `lab.json` files run with the same training settings (seeds split across machines or
    sessions), as one design over every seed they hold; a seed run twice for a cell keeps the first record."""
    records: dict[tuple, dict] = {}
    train = None
    for path in paths:
        with open(path, encoding="utf-8") as f:
            result = json.load(f)
        if train is not None and result["design"]["train"] != train:
            raise SystemExit(f"{path} was trained with other settings: {result['design']['train']} != {train}")
        train = result["design"]["train"]
        for record in result["records"]:
            records.setdefault((record["cell"], record["seed"], record["budget"]), record)
    seeds = tuple(sorted({r["seed"] for r in records.values()}))
    budgets = tuple(sorted({r["budget"] for r in records.values()} - {design.budget}))
    return list(records.values()), dataclasses.replace(design, seeds=seeds, curve_budgets=budgets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 seeds at one budget (the issue's 10-minute run)")
    parser.add_argument("--seeds", help="seeds: a count N (0..N-1), a range 3-7 or a list 0,2,9")
    parser.add_argument("--budget", type=int, help="responses read per cell for the main table (multiple of 4)")
    parser.add_argument("--budgets", help="comma-separated budgets of the sample-efficiency curve ('' for none)")
    parser.add_argument("--curve_only", action="store_true", help="only the curve cells at the curve budgets")
    parser.add_argument(
        "--refinements",
        action="store_true",
        help="only the refinement cells (hinge, centering, best-of-N, margin ranking)",
    )
    parser.add_argument("--output_dir", help="where lab.json and lab.md go (default outputs/lab[-quick])")
    parser.add_argument(
        "--combine", nargs="+", metavar="LAB_JSON", help="tabulate the runs of these files, no training"
    )
    args = parser.parse_args(argv)
    design = design_from(args)
    output_dir = args.output_dir or os.path.join("outputs", "lab-quick" if args.quick else "lab")
    os.makedirs(output_dir, exist_ok=True)

    start = time.perf_counter()
    if args.combine:
        records, design = combine(args.combine, design)
    else:
        records = run_lab(design, progress=lambda line: print(line, flush=True))
    result = summarize(records, design)
    result["wall_seconds"] = time.perf_counter() - start
    table = markdown(result)
    with open(os.path.join(output_dir, "lab.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(output_dir, "lab.md"), "w", encoding="utf-8") as f:
        f.write(table)
    print()
    print(table)
    print(f"{len(records)} runs in {result['wall_seconds']:.0f} s; wrote {output_dir}/lab.json and lab.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
