"""Settings of the stepwise family (process reward models: a reward at the end of every step of a solution).

Kept apart from `config.py` (one module per family would not fit one file); same layer, same conventions: every
field documented where it is declared, so it becomes a flag and a YAML key. See `docs/process_rewards.md`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import RewardConfig
from .data.formats.stepwise import AFTER_FIRST_ERROR, DEFAULT_STEP_SEPARATOR
from .losses import STEPWISE_LOSS_FUNCTIONS
from .metrics.stepwise import STEP_AGGREGATIONS

STEPWISE_LOSSES = tuple(STEPWISE_LOSS_FUNCTIONS)


@dataclass
class StepwiseRewardConfig(RewardConfig):
    r"""Settings of the stepwise family: one logit per step, read at the step separator that ends it.

    How source formats become stepwise rows (Math-Shepherd `step_tag`, PRM800K `neutral_rating`) are data settings
    (`rm_trl.data.DataArguments`).

    Parameters:
        loss_type (`str`, defaults to `"step_bce"`):
            `"step_bce"`: binary cross-entropy of every labelled step (hard or soft labels), mean over labelled
            steps; `"last_step"`: the same on each solution's last labelled step only (outcome supervision from step
            data); `"pqm"`: the comparative loss of Process Q-value Models (Li & Li 2024, arXiv:2410.11287, Eq. 10):
            Q-values rise along the correct steps, wrong steps sit `pqm_margin` below them.
        step_separator (`str`, defaults to `"<|step|>"`):
            Text put after every step; must be ONE token of the tokenizer. When the tokenizer lacks it, it is added
            as a special token (embeddings resized, new row = mean embedding) and saved with the export. A step
            containing it is an invalid row.
        after_first_error (`str`, defaults to `"keep"`):
            Labels after a solution's first wrong step: `"keep"` (train every labelled step), `"mask"` (no loss on
            them), `"truncate"` (drop those steps, counted) or `"error"` (such a row is invalid, named by row and
            step).
        step_error_weight (`float`, defaults to `1.0`):
            `step_bce` only: the weight of a wrong step's term in a weighted mean (a soft label `p` gets
            `1 + (w - 1)(1 - p)`). Wrong steps are the minority, the more so with `after_first_error: mask`; a
            weight above 1 keeps the model from settling on "every step correct".
        pqm_margin (`float`, defaults to `4.0`):
            The margin zeta of the `pqm` loss: how far (in logits) every wrong step must sit below every correct
            step and the question. 4 is the authors' code default (their released checkpoints use 2 and 4).
        step_aggregation (`str`, defaults to `"min"`):
            How a solution's step probabilities fold into one reward for outcome consumers (`RewardFunction`,
            `rm-trl score`, `rm-trl serve`): `"min"` (the weakest step), `"product"`, `"last"` or `"mean"`.
            Recorded in the export.
        step_text_delimiter (`str`, defaults to `"\n"`):
            Recorded in the export: how consumers that receive a plain-text completion (`RewardFunction`,
            `/get_reward`) split it into steps.
        group_solutions (`bool`, defaults to `True`):
            With packing (decoders), merge the training solutions that share a prompt into one row, so the prompt
            is encoded once for all of them. Evaluation rows are never merged (each solution keeps its row).
        append_eos (`bool` or `None`, defaults to `False`):
            Stepwise rows end with their last separator, whose logit is the last step's reward: no EOS is appended.
        normalize_rewards:
            Refused for this family: step rewards are logits whose sigmoid is the probability that a step is
            correct; normalising them would break that reading and the aggregations.
    """

    loss_type: str = field(default="step_bce", metadata={"help": "Stepwise loss.", "choices": list(STEPWISE_LOSSES)})
    step_separator: str = field(
        default=DEFAULT_STEP_SEPARATOR, metadata={"help": "Text after every step; must be (or becomes) one token."}
    )
    after_first_error: str = field(
        default="keep",
        metadata={
            "help": "Labels after the first wrong step: keep, mask, truncate or error.",
            "choices": list(AFTER_FIRST_ERROR),
        },
    )
    pqm_margin: float = field(default=4.0, metadata={"help": "Margin zeta of the pqm loss (logits)."})
    step_error_weight: float = field(
        default=1.0, metadata={"help": "step_bce: weight of a wrong step's term (1 = plain mean)."}
    )
    step_aggregation: str = field(
        default="min",
        metadata={
            "help": "Step probabilities -> one reward: min, product, last or mean.",
            "choices": list(STEP_AGGREGATIONS),
        },
    )
    step_text_delimiter: str = field(
        default="\n", metadata={"help": "How consumers split a plain-text completion into steps (recorded)."}
    )
    group_solutions: bool = field(
        default=True, metadata={"help": "Packing: encode a prompt once for all its training solutions."}
    )
    append_eos: bool | None = field(
        default=False, metadata={"help": "Append EOS to solutions (stepwise: no, the last separator ends them)."}
    )

    def __post_init__(self):
        if self.normalize_rewards:
            raise ValueError(
                "normalize_rewards is not available for stepwise models: step rewards are logits whose sigmoid is the "
                "probability that a step is correct, which normalisation would break"
            )
        if not isinstance(self.step_separator, str) or not self.step_separator:
            raise ValueError(f"step_separator={self.step_separator!r} must be a non-empty text")
        if self.pqm_margin < 0:
            raise ValueError(f"pqm_margin={self.pqm_margin} must be >= 0")
        if not self.step_error_weight > 0:
            raise ValueError(f"step_error_weight={self.step_error_weight} must be > 0")
        super().__post_init__()
