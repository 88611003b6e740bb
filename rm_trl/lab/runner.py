"""Run the lab: for each seed a fresh world, model and test set; each cell trains through rm-trl's recipe entry
(`rm_trl.recipe.main`, in process) and its export is scored on fresh responses by `RewardScorer`.

Seed `s` fixes everything a cell's result depends on: the world's word weights, the tiny model's initial weights,
the training pool, the annotators' random draws and the test responses. Two cells of one seed therefore differ only
in what the cells differ in, which is what makes the per-seed differences of `report.py` paired.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .annotators import GROUP, Feedback, choice_probability
from .design import FEEDBACK_KINDS, SPURIOUS_LENGTH, STREAMS, Cell, LabDesign, TrainSettings
from .measure import calibration_pairs, measure
from .world import Responses, World, build_model_folder

ROWS_PER_BATCH = {"pointwise": 1, "pairwise": 2, "contrastive": 2, "listwise": GROUP}  # sequences per row
TEST_STREAM, POOL_STREAM, PAIRS_STREAM = 10, 11, 12


@dataclass
class SeedWorld:
    """What one seed shares across its cells: the world, the initial model folder and the test set."""

    seed: int
    world: World
    model_dir: str
    test: Responses
    pair_index: tuple[np.ndarray, np.ndarray]

    @classmethod
    def build(cls, seed: int, design: LabDesign, work_dir: str) -> SeedWorld:
        world = World(seed=seed)
        model_dir = build_model_folder(world, os.path.join(work_dir, f"model-{seed}"), seed)
        test = world.sample_responses(design.test_responses, np.random.default_rng([seed, TEST_STREAM]))
        pair_index = calibration_pairs(len(test), np.random.default_rng([seed, PAIRS_STREAM]))
        return cls(seed, world, model_dir, test, pair_index)

    def pool(self, budget: int, spurious: bool) -> Responses:
        """The training responses at `budget` (in groups of `GROUP` per prompt); the spurious pool holds the same
        content and prompts with filler counts matched to r*."""
        rng = np.random.default_rng([self.seed, POOL_STREAM, budget])
        signal = SPURIOUS_LENGTH if spurious else 0.0
        return self.world.sample_responses(budget, rng, length_signal=signal, group_size=GROUP)

    def feedback(self, kind: str, budget: int, spurious: bool) -> Feedback:
        """Annotations of kind `kind` on the pool. The draws depend on the seed, budget and the kind's stream only:
        kinds on one stream share them, and the spurious pool (same responses but for fillers) gets the same
        judgments as the clean one."""
        stream, annotate = FEEDBACK_KINDS[kind]
        rng = np.random.default_rng([self.seed, STREAMS[stream], budget])
        return annotate(self.pool(budget, spurious), rng)


def write_rows(rows: list[dict], path: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path


def recipe_flags(
    cell: Cell, data: str, model_dir: str, output_dir: str, seed: int, settings: TrainSettings, budget: int
) -> list[str]:
    """The command line of one cell, as a user would give it to `rm-trl train <family>`."""
    rows_per_batch = max(1, settings.sequences_per_batch // ROWS_PER_BATCH[cell.family])
    flags = {
        "model_name_or_path": model_dir,
        "train_data": data,
        "output_dir": output_dir,
        "loss_type": cell.loss_type,
        "max_steps": settings.steps(budget),
        "per_device_train_batch_size": rows_per_batch,
        "learning_rate": settings.learning_rate,
        "lr_scheduler_type": "linear",
        "warmup_steps": settings.warmup_steps,
        "weight_decay": settings.weight_decay,
        "max_length": settings.max_length,
        "seed": seed,
        # tiny model on a shared CPU: one thread, no length grouping (sequences are short), nothing saved mid-run
        "cpu_threads": 1,
        "train_sampling_strategy": "random",
        "save_strategy": "no",
        "logging_steps": settings.steps(budget),
        "report_to": "none",
        "disable_tqdm": "true",
    }
    return [item for key, value in flags.items() for item in (f"--{key}", str(value))] + list(cell.flags)


@contextlib.contextmanager
def quiet():
    """Silence the recipe's prints and the libraries' progress bars and warnings; the log is kept for errors."""
    import datasets
    import transformers

    buffer = io.StringIO()
    level, verbosity = logging.getLogger().level, transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled()
    logging.getLogger().setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        logging.getLogger().setLevel(level)
        transformers.logging.set_verbosity(verbosity)
        if bars[0]:
            transformers.utils.logging.enable_progress_bar()
        if bars[1]:
            datasets.enable_progress_bars()


def train_and_score(
    cell: Cell, data: str, budget: int, seed_world: SeedWorld, work_dir: str, settings: TrainSettings
) -> np.ndarray:
    """Train `cell` on the rows in `data` through `rm_trl.recipe.main`; return its rewards on the test responses."""
    from ..recipe import main
    from ..scoring import RewardScorer

    output_dir = tempfile.mkdtemp(prefix="cell-", dir=work_dir)
    flags = recipe_flags(cell, data, seed_world.model_dir, output_dir, seed_world.seed, settings, budget)
    try:
        with quiet() as log:
            status = main(cell.family, flags)
            if status != 0:
                raise RuntimeError(f"{cell.name} (seed {seed_world.seed}) failed:\n{log.getvalue()[-4000:]}")
            scorer = RewardScorer.from_pretrained(output_dir)
            test = seed_world.test
            return scorer.score_texts(test.prompts, test.texts)
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)


def run_cell(cell: Cell, budget: int, seed_world: SeedWorld, work_dir: str, settings: TrainSettings) -> dict:
    """One record: the cell's metrics against the truth on the seed's test set, with its data counts and time."""
    start = time.perf_counter()
    feedback = seed_world.feedback(cell.feedback, budget, cell.spurious)
    data = write_rows(feedback.rows, os.path.join(work_dir, f"{feedback.kind}-{budget}-{int(cell.spurious)}.jsonl"))
    predicted = train_and_score(cell, data, budget, seed_world, work_dir, settings)
    test, (a, b) = seed_world.test, seed_world.pair_index
    true_prob = choice_probability(test.reward[a] - test.reward[b], cell.choice_model)
    metrics = measure(predicted, test.reward, test.length, test.fillers, true_prob, (a, b))
    if not cell.probabilistic:
        metrics["prob_mae"] = metrics["prob_ece"] = float("nan")
    return {
        "cell": cell.name,
        "loss": cell.loss,
        "family": cell.family,
        "feedback": cell.feedback,
        "spurious": cell.spurious,
        "seed": seed_world.seed,
        "budget": budget,
        "cost": feedback.cost,
        "rows": len(feedback.rows),
        "counts": feedback.counts,
        **metrics,
        "seconds": time.perf_counter() - start,
    }


def run_lab(design: LabDesign, progress: Callable[[str], None] = print, work_dir: str | None = None) -> list[dict]:
    """Every seed x (budget, cell) of `design`; returns one record per run."""
    records: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="rm-trl-lab-", dir=work_dir) as tmp:
        for seed in design.seeds:
            with quiet():
                seed_world = SeedWorld.build(seed, design, tmp)
            runs = design.runs()
            for i, (budget, cell) in enumerate(runs, 1):
                record = run_cell(cell, budget, seed_world, tmp, design.train)
                records.append(record)
                progress(
                    f"seed {seed} [{i}/{len(runs)}] budget {budget:>5} {cell.name:<45} "
                    f"spearman {record['spearman']:.3f}  acc {record['pair_accuracy']:.3f}  "
                    f"({record['seconds']:.1f}s)"
                )
    return records
