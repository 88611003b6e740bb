"""One cell of the consumer matrix: compare a consumer's rewards with rm-trl's and hold the export's flag to it.

A cell passes when the consumer matches `RewardScorer` within `TOLERANCE` and the export's `rm_trl.consumers` flag
says `exact`, or when the flag says `differs` and the consumer really is off by more than `MIN_DIFFERENCE` (so a
flag cannot go stale either way), or when the flag says `fails` and the consumer raised. With
`RM_TRL_CONSUMER_RECORD=<file>` set, every cell appends its outcome to that JSON-lines file before asserting;
`scripts/make_consumers_doc.py` turns it into docs/consumers.md.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

RECORD_ENV = "RM_TRL_CONSUMER_RECORD"
TOLERANCE = 1e-5
MIN_DIFFERENCE = 1e-4


def verdict(flag: str) -> str:
    """The flag's verdict word: `exact`, `differs` or `fails`."""
    return flag.split(":", 1)[0].strip()


def record(
    consumer: str, export: tuple[str, str], flag_key: str, outcome: str, detail: Any = None, flag: str = ""
) -> None:
    """Append one cell's outcome (`equal` / `differs` with the max abs difference, `fails` / `refused` with the
    reason) to the file named by `RM_TRL_CONSUMER_RECORD`, if set."""
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    row = {"consumer": consumer, "model": export[0], "variant": export[1], "flag": flag_key, "outcome": outcome}
    row.update(detail=detail, flag_text=flag)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")


def check_cell(
    consumer: str, export: tuple[str, str], flags: dict[str, str], flag_key: str, got: Any, want: Any
) -> float:
    """Assert the consumer's rewards `got` against rm-trl's `want` as the export's flag says; returns the max
    absolute difference."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{consumer}: {got.shape} rewards for {want.shape} texts"
    assert np.isfinite(got).all(), f"{consumer}: non-finite rewards {got}"
    diff = float(np.max(np.abs(got - want)))
    flag = flags[flag_key]
    record(consumer, export, flag_key, "equal" if diff <= TOLERANCE else "differs", diff, flag)
    if verdict(flag) == "exact":
        assert diff <= TOLERANCE, f"{consumer} on {export}: off by {diff:.3g} but the flag says {flag!r}"
    else:
        assert verdict(flag) == "differs", f"{consumer} on {export} gave rewards but the flag says {flag!r}"
        assert diff > MIN_DIFFERENCE, f"{consumer} on {export}: equal (max diff {diff:.3g}) but flagged {flag!r}"
    return diff


def check_failure(consumer: str, export: tuple[str, str], flags: dict[str, str], flag_key: str, error: str) -> None:
    """The consumer raised `error`: only right when the flag says it fails."""
    record(consumer, export, flag_key, "fails", error, flags[flag_key])
    assert verdict(flags[flag_key]) == "fails", f"{consumer} on {export} raised {error!r}; flag {flags[flag_key]!r}"
