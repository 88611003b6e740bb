"""Temperature calibration of an export: fit `T` for `P(a > b) = sigmoid((r_a - r_b) / T)` on the preference
pairs of a split, and record it in `config.json` (`rm_trl.calibration`) and the model card.

The reward a consumer reads (`logits[:, 0]`) never changes: T is metadata, in the units of those logits, for the
consumers that ask for probabilities (`RewardScorer.preference_probability`, `rm-trl score`, `rm-trl serve`). Two
ways in: `calibrate_temperature` at training time (`temperature_calibrator`, fitted on the eval split by the
exporter), and `rm-trl calibrate` on an existing export (`calibrate_export`). `docs/calibration.md` says more.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from datasets import Dataset
from transformers import PreTrainedModel

from ..data.formats import FORMATS, ScoredRows, detect_format
from ..data.pipeline import RESPONSE_IDS, PreparedData
from ..errors import ConfigError
from ..metrics.calibration import fit_temperature, preference_calibration
from ..scoring import RewardScorer
from .card import update_card_calibration
from .metadata import METADATA_KEY

logger = logging.getLogger(__name__)

CALIBRATION_KEY = "calibration"
FORMULA = "P(a preferred over b) = sigmoid((r_a - r_b) / temperature), r = logits[:, 0] (raw head output)"
NO_PAIRS_HINT = (
    "pairwise rows give one pair each, ranked lists every untied pair, rated rows pairs of responses to the same "
    "prompt whose scores differ"
)


def margins_rule(kind: str) -> Callable[[ScoredRows], np.ndarray]:
    """The format's rule for `reward(better) - reward(worse)` over the preference pairs of its scored rows; a
    `ConfigError` for a format that gives none."""
    rule = FORMATS[kind].preference_margins
    if rule is None:
        raise ConfigError(
            f"{kind} data gives no preference pairs to calibrate on ({NO_PAIRS_HINT}); a process reward model's "
            "step probabilities are not preference probabilities"
        )
    return rule


def calibration_entry(margins: np.ndarray, fitted_on: str) -> dict[str, Any]:
    """The `rm_trl.calibration` entry for raw-logit margins: T, how it was found, and the NLL, ECE and Brier of the
    fitting pairs before (T = 1) and after."""
    fit = fit_temperature(margins)
    before, after = preference_calibration(margins), preference_calibration(margins, fit.temperature)
    entry = {
        "temperature": fit.temperature,
        "status": fit.status,
        "fitted_on": fitted_on,
        "pairs": fit.pairs,
        "nll_before": fit.nll_before,
        "nll_after": fit.nll_after,
        "ece_before": before["ece"],
        "ece_after": after["ece"],
        "brier_before": before["brier"],
        "brier_after": after["brier"],
        "formula": FORMULA,
    }
    if fit.status != "fitted":
        logger.warning("Temperature calibration: %s (%s): %s", fit.status, fitted_on, STATUS_NOTES[fit.status])
    return entry


STATUS_NOTES = {
    "fitted": "",
    "lower_bound": "the pairs are (nearly) perfectly separated, so the likelihood keeps rising as T -> 0; T is the "
    "search's lower bound (median |margin| / 100, or 1 if smaller) and the probabilities are close to certain: "
    "calibrate on more or harder pairs",
    "upper_bound": "the margins say (almost) nothing about the preferences; T is the search's upper bound "
    "(median |margin| x 100, or 1 if larger) and the probabilities are as close to 0.5 as it allows",
    "all_ties": "every pair has a zero margin: no temperature changes anything (T = 1)",
    "no_pairs": "no pairs to fit on (T = 1)",
}


def scored_rows_of(prepared: PreparedData, rewards: list[np.ndarray], score_column: str = "score") -> ScoredRows:
    """Scored rows of tokenized data, read as their own source (the targets training keeps: ranks, scores)."""
    dataset = prepared.dataset
    return ScoredRows(dataset, np.arange(len(dataset)), rewards, [np.zeros(len(r)) for r in rewards], score_column)


def check_calibration_data(prepared: dict[str, PreparedData], kind: str, score_columns: list[str] | None) -> int:
    """Before training with `calibrate_temperature`: the eval split exists and gives preference pairs (counted
    with placeholder rewards). Returns the number of pairs; a `ConfigError` otherwise, so nothing is trained for
    an export that could not be calibrated."""
    rule = margins_rule(kind)
    if "eval" not in prepared:
        found = ", ".join(sorted(name for name in prepared if name.startswith("eval"))) or "none"
        raise ConfigError(
            f"calibrate_temperature fits the temperature on the eval split (eval_data / eval_split / eval_fraction); "
            f"one eval dataset is needed, found: {found}"
        )
    if score_columns is not None and len(score_columns) > 1:
        raise ConfigError(
            f"calibrate_temperature needs one score column to order responses; got {len(score_columns)} "
            f"({', '.join(score_columns)}): calibrate the export afterwards with `rm-trl calibrate` on pairs"
        )
    eval_data = prepared["eval"]
    placeholder = [np.zeros(len(r)) for r in eval_data.dataset[RESPONSE_IDS]]
    column = score_columns[0] if score_columns else "score"
    pairs = len(rule(scored_rows_of(eval_data, placeholder, column)))
    if not pairs:
        raise ConfigError(f"calibrate_temperature: the eval split gives no preference pairs ({NO_PAIRS_HINT})")
    return pairs


def temperature_calibrator(
    tokenizer, prepared: PreparedData, kind: str, score_column: str = "score"
) -> Callable[[PreTrainedModel], dict[str, Any]]:
    """A calibrator for `SequenceClassificationExporter`: `(exported model) -> rm_trl.calibration entry`, fitted on
    the tokenized eval split with the exported model's raw logits (after any baked normalisation)."""

    def calibrate(model: PreTrainedModel) -> dict[str, Any]:
        was_training = model.training
        scorer = RewardScorer(model, tokenizer, normalize=True)  # stored normalisation: rescaled to raw below
        scored = scorer.score_prepared(prepared)
        model.train(was_training)
        margins = margins_rule(kind)(scored_rows_of(prepared, scored.scalar_rewards(), score_column))
        entry = calibration_entry(margins * scorer.scale, f"eval ({len(prepared.dataset)} rows)")
        logger.info("Temperature calibration: %s", entry)
        return entry

    return calibrate


def write_calibration(output_dir: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Record `entry` as `rm_trl.calibration` in an export's `config.json` (everything else kept as written, the
    file replaced atomically) and in its card; returns the new `rm_trl` entry."""
    path = os.path.join(output_dir, "config.json")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    metadata = dict(config.get(METADATA_KEY) or {})
    metadata[CALIBRATION_KEY] = entry
    config[METADATA_KEY] = metadata
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(config, indent=2, sort_keys=True) + "\n")  # as transformers writes it
    os.replace(tmp, path)
    update_card_calibration(output_dir, metadata)
    return metadata


def calibrate_export(
    model_dir: str,
    data: str | Dataset,
    *,
    split: str = "test",
    data_config: str | None = None,
    kind: str | None = None,
    score_column: str = "score",
    invalid_rows: str = "error",
    batch_tokens: int = 16384,
    trust_remote_code: bool = False,
    write: bool = True,
) -> dict[str, Any]:
    """Fit the temperature of the export in `model_dir` on `data` (a held-out split with gold preferences: pairs,
    ranked lists or rated rows) and, with `write`, record it there. Returns the `rm_trl.calibration` entry."""
    from ..data.loading import load_data

    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise ConfigError(
            f"--model {model_dir!r} is not a local export folder with a config.json (calibration writes into it; "
            "for a LoRA adapter folder, calibrate the merged export)"
        )
    dataset = load_data(data, split, data_config)  # before the model: an unreadable file fails fast
    kind = kind or detect_format(dataset.column_names)
    rule = margins_rule(kind)
    scorer = RewardScorer.from_pretrained(
        model_dir, normalize=True, batch_tokens=batch_tokens, trust_remote_code=trust_remote_code
    )
    if scorer.steps:
        raise ConfigError(f"{model_dir} is a process reward model: its step probabilities have no temperature")
    options = {"invalid_rows": invalid_rows, **FORMATS[kind].gold_options(score_column)}
    scored = scorer.score(dataset, kind=kind, split="calibration", **options)
    lengths = [np.zeros(len(r)) for r in scored.scalar_rewards()]
    items = ScoredRows(dataset, np.asarray(scored.rows), scored.scalar_rewards(), lengths, score_column)
    where = data if isinstance(data, str) else "the given dataset"
    try:
        margins = rule(items) * scorer.scale
    except KeyError as exc:
        raise ConfigError(f"{where} has no column {exc}: calibration needs gold preferences") from None
    if not len(margins):
        raise ConfigError(f"{where} gives no preference pairs to calibrate on ({NO_PAIRS_HINT})")
    entry = calibration_entry(margins, f"{where} ({len(scored.rows)} rows)")
    if write:
        write_calibration(model_dir, entry)
    return entry
