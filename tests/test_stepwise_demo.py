"""The process-reward demo as a user runs it (`python recipes/stepwise.py`, no arguments, from an empty folder;
about 3.5 minutes on 2 cores): it must beat the trivial rules of `scripts/step_baselines.py` on the test split, with
bootstrap intervals apart (issue #15's bar)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from .conftest import REPO_ROOT

pytestmark = pytest.mark.slow

sys.path.insert(0, os.path.join(REPO_ROOT, "scripts"))
import step_baselines  # noqa: E402


def test_demo_beats_the_trivial_rules_with_intervals_apart(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": REPO_ROOT}
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "recipes", "stepwise.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "eval   step_f1" in proc.stdout
    test = os.path.join(REPO_ROOT, "data", "stepwise", "test.jsonl")
    scored = tmp_path / "scored.jsonl"
    command = [sys.executable, "-m", "rm_trl.cli", "score", "--model", str(tmp_path / "outputs" / "stepwise-demo")]
    done = subprocess.run(
        [*command, "--input", test, "--output", str(scored), "--quiet"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = step_baselines.load(test)
    samples = step_baselines.BOOTSTRAP_SAMPLES
    model = step_baselines.with_intervals(rows, step_baselines.read_scores(str(scored), rows), samples)
    last_step = [np.r_[np.full(len(r["completions"]) - 1, step_baselines.SURE), -step_baselines.SURE] for r in rows]
    last = step_baselines.with_intervals(rows, last_step, samples)
    for metric in ("step_f1", "first_error_accuracy_erroneous"):
        assert model[metric][1] > last[metric][2], (metric, model[metric], last[metric])  # lower bound > upper bound
