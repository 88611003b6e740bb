"""`DataArguments`: where a recipe's data comes from and how it is converted to the family's format.

Only the data layer reads these settings (`load_train_eval`, `convert_train_eval`); recipes parse them with the
family's config (`rm_trl.recipe.parse`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .converters import PAIR_STRATEGIES
from .formats import FORMATS
from .formats.step_sources import DEFAULT_STEP_TAG, NEUTRAL_RATINGS


def check_choices(settings, skip: frozenset[str] = frozenset()) -> None:
    """Every field declared with `choices` (but those in `skip`) holds one of them: the command line checks this,
    but a settings object built in Python or from YAML defaults is checked here (`__post_init__`)."""
    for f in dataclasses.fields(settings):
        choices = f.metadata.get("choices") if f.name not in skip else None
        if choices and getattr(settings, f.name) not in choices:
            raise ValueError(f"{f.name}={getattr(settings, f.name)!r}; expected one of {tuple(choices)}")


SOURCE_FORMATS = ("auto", *FORMATS)  # as registered when the data layer is imported


@dataclass
class DataArguments:
    """Where a recipe's data comes from.

    `train_data` / `eval_data` accept a Hugging Face Hub dataset name (when online), a local JSON/JSONL/CSV/Parquet
    file, a glob of such files, a directory, or a dataset saved with `Dataset.save_to_disk`.
    """

    train_data: str = field(metadata={"help": "Training data: Hub name, local file, glob or directory."})
    eval_data: str | None = field(default=None, metadata={"help": "Evaluation data (same forms as train_data)."})
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset configuration name."})
    train_split: str = field(default="train", metadata={"help": "Split of train_data to train on."})
    eval_split: str | None = field(
        default=None,
        metadata={
            "help": "Split of eval_data, or of train_data when no eval_data is given, to evaluate on (default: "
            "`test`; without eval_data, only when train_data has one)."
        },
    )
    eval_fraction: float = field(
        default=0.0,
        metadata={"help": "Without eval data, hold out this fraction of training prompts (grouped by prompt)."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N evaluation rows."})
    source_format: str = field(
        default="auto",
        metadata={
            "help": "Format of the data files (auto: from the columns). When it differs from the recipe's, the "
            "data is converted: rated -> pairwise / ranked, ranked -> pairwise, math_shepherd / prm800k -> stepwise.",
            "choices": list(SOURCE_FORMATS),
        },
    )
    pair_strategy: str = field(
        default="all_pairs",
        metadata={
            "help": "How ranked or rated groups become pairs: all_pairs, best_vs_worst, adjacent.",
            "choices": list(PAIR_STRATEGIES),
        },
    )
    score_column: str = field(default="score", metadata={"help": "The rating that drives format conversions."})
    min_score_gap: float = field(
        default=0.0, metadata={"help": "Ratings closer than this are a tie when converting rated data."}
    )

    step_tag: str = field(
        default=DEFAULT_STEP_TAG,
        metadata={"help": "Math-Shepherd data: the tag after each step of `input` (`+` / `-` in `label`)."},
    )
    neutral_rating: str = field(
        default="masked",
        metadata={
            "help": "PRM800K data: what a step rating of 0 becomes: masked (no loss), positive or negative.",
            "choices": list(NEUTRAL_RATINGS),
        },
    )

    def source_options(self) -> dict[str, str]:
        """The settings a source format's rows are read with (validation and conversion alike)."""
        return {"step_tag": self.step_tag, "neutral_rating": self.neutral_rating}

    def __post_init__(self):
        if self.eval_fraction and not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction={self.eval_fraction} must be in (0, 1)")
        for name in ("max_train_samples", "max_eval_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1 (leave it unset for all rows)")
        if not self.step_tag:
            raise ValueError("step_tag must be a non-empty text")
        check_choices(self)
