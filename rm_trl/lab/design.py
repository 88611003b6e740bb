"""The lab's design: which feedback kinds exist, which loss trains on which (a cell), the training settings every
cell shares, and the paired comparisons the lab reports. `runner.py` executes it, `report.py` tabulates it.

Every cell trains through rm-trl's recipe entry (`rm_trl.recipe.main`), so a cell is just a family, a
`loss_type`, a feedback kind and recipe flags; data conversions (rated -> pairwise, ranked -> pairwise) are rm-trl's
own converters, asked for with the same flags a user gives (`pair_strategy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from . import annotators
from .annotators import Feedback

# ----- feedback kinds: (annotator stream, function) ------------------------------------------------------------------
# Kinds on one stream draw the same random numbers from the same pool: `pairs_flipped` is `pairs` with flips on top,
# `ratings_outliers` is `ratings` with some ratings replaced, `likert` cuts the same noisy latent. So a comparison of
# two kinds on one stream differs only in what the kinds differ in.
FEEDBACK_KINDS: dict[str, tuple[str, Callable[..., Feedback]]] = {
    "ratings": ("ratings", partial(annotators.ratings, kind="ratings")),
    "ratings_outliers": ("ratings", partial(annotators.ratings, outlier_fraction=0.1, kind="ratings_outliers")),
    "likert": ("ratings", annotators.likert),
    "ratings_biased": ("ratings", annotators.biased_ratings),
    "thumbs": ("thumbs", annotators.thumbs),
    "pairs": ("pairs", partial(annotators.pairs, kind="pairs")),
    "pairs_margin": ("pairs", partial(annotators.pairs, margin=True, kind="pairs_margin")),
    "pairs_flipped": ("pairs", partial(annotators.pairs, flip=0.2, kind="pairs_flipped")),
    "pairs_thurstone": ("pairs", partial(annotators.pairs, model="thurstone", kind="pairs_thurstone")),
    "pairs_ties": ("pairs", partial(annotators.pairs, tie_band=0.3, kind="pairs_ties")),
    "lists": ("lists", partial(annotators.rankings, kind="lists")),
    "lists_ties": ("lists", partial(annotators.rankings, tie_band=0.3, kind="lists_ties")),
}
STREAMS = {"ratings": 1, "thumbs": 2, "pairs": 3, "lists": 4}
FEEDBACK_NOTES = {
    "ratings": "r* + N(0, 0.75^2)",
    "ratings_outliers": "as ratings, 10% replaced by r* +- U(3, 6)",
    "likert": "1-5: r* + N(0, 0.75^2) cut at -1.5, -0.5, 0.5, 1.5",
    "ratings_biased": "as ratings + a per-annotator offset N(0, 1) (8 annotators, one per prompt group)",
    "thumbs": "1 with P = sigmoid(r*)",
    "pairs": "Bradley-Terry choice, beta 1",
    "pairs_margin": "the same choices + margin = r*_chosen - r*_rejected",
    "pairs_flipped": "the same choices, 20% flipped",
    "pairs_thurstone": "probit choice Phi(gap / 1.7)",
    "pairs_ties": "the same choices; |gap| < 0.3 judged a tie and dropped",
    "lists": "Plackett-Luce rankings of 4, beta 1",
    "lists_ties": "the same rankings; neighbours within 0.3 tied",
}
SPURIOUS_LENGTH = 0.8  # the spurious pool: 80% of filler counts rank-matched to r* (train only)


@dataclass(frozen=True)
class Cell:
    """One loss trained on one feedback kind: `family` and `loss_type` as in `rm-trl train <family>`."""

    loss: str  # label in tables
    family: str
    loss_type: str
    feedback: str
    flags: tuple[str, ...] = ()
    spurious: bool = False  # train on the pool whose length correlates with r*

    @property
    def name(self) -> str:
        return f"{self.loss} | {self.feedback}" + (" | spurious length" if self.spurious else "")

    @property
    def choice_model(self) -> str:
        """The annotator model whose preference probability calibration is measured against."""
        return "thurstone" if self.feedback == "pairs_thurstone" else "bradley_terry"

    @property
    def probabilistic(self) -> bool:
        """Whether `sigmoid(r_a - r_b)` is meant as a preference probability (calibration is reported)."""
        return self.family != "pointwise" or self.loss_type == "bce"


def make_cell(loss: str, feedback: str, *flags: str, spurious: bool = False) -> Cell:
    """A cell of the loss labelled `loss` in `LOSSES` (its family, `loss_type` and flags) on `feedback`."""
    family, loss_type, own = LOSSES[loss]
    return Cell(loss, family, loss_type, feedback, (*own, *flags), spurious)


# label -> (family, loss_type, flags)
LOSSES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "mse": ("pointwise", "mse", ()),
    "huber": ("pointwise", "huber", ()),
    "bce": ("pointwise", "bce", ()),
    "bt": ("pairwise", "bradley_terry", ("--use_margin", "false")),
    "bt_margin": ("pairwise", "bradley_terry", ("--use_margin", "true")),
    "bt_smooth": ("pairwise", "bradley_terry", ("--label_smoothing", "0.2")),
    "plackett_luce": ("listwise", "plackett_luce", ()),
    "all_pairs": ("listwise", "all_pairs", ()),
    "infonce": ("contrastive", "infonce", ("--pair_strategy", "best_vs_worst")),
    "hinge": ("pairwise", "hinge", ("--use_margin", "false")),  # max(0, 1 - (r_c - r_r))
    "bt_center": ("pairwise", "bradley_terry", ("--use_margin", "false", "--center_rewards_coefficient", "0.01")),
    "best_of_n": ("listwise", "best_of_n", ()),
    "margin_ranking": ("contrastive", "margin_ranking", ("--pair_strategy", "best_vs_worst")),
}

CELLS: tuple[Cell, ...] = (
    make_cell("mse", "ratings"),
    make_cell("huber", "ratings"),
    make_cell("mse", "ratings_outliers"),
    make_cell("huber", "ratings_outliers"),
    make_cell("mse", "likert"),
    make_cell("bce", "thumbs"),
    make_cell("mse", "ratings_biased"),
    make_cell("bt", "ratings", "--pair_strategy", "all_pairs"),  # rated -> pairwise by rm-trl's converter
    make_cell("bt", "ratings_biased", "--pair_strategy", "all_pairs"),
    make_cell("bt", "pairs"),
    make_cell("bt_margin", "pairs_margin"),
    make_cell("bt", "pairs_flipped"),
    make_cell("bt_smooth", "pairs_flipped"),
    make_cell("bt", "pairs_thurstone"),
    make_cell("bt", "pairs_ties"),
    make_cell("plackett_luce", "lists"),
    make_cell("all_pairs", "lists"),
    make_cell("bt", "lists", "--pair_strategy", "all_pairs"),  # ranked -> pairwise: every pair the rankings imply
    make_cell("plackett_luce", "lists_ties"),
    make_cell("infonce", "lists"),  # best vs worst of each ranking, in-batch negatives
    make_cell("mse", "ratings", spurious=True),
    make_cell("bt", "pairs", spurious=True),
    make_cell("plackett_luce", "lists", spurious=True),
    make_cell("infonce", "lists", spurious=True),
)
# The registered refinements beside the named comparisons: run by `recipes/lab.py --refinements` (and the full lab),
# compared with the cells above on the same seeds.
REFINEMENT_CELLS: tuple[Cell, ...] = (
    make_cell("hinge", "pairs"),
    make_cell("hinge", "pairs_flipped"),
    make_cell("bt_center", "pairs"),
    make_cell("best_of_n", "lists"),
    make_cell("margin_ranking", "lists"),  # best vs worst of each ranking, in-batch negatives, as InfoNCE
)
CURVE_CELLS: tuple[Cell, ...] = (  # sample efficiency: these also run at every budget of the curve
    make_cell("mse", "ratings"),
    make_cell("bt", "pairs"),
    make_cell("plackett_luce", "lists"),
)


@dataclass(frozen=True)
class Comparison:
    """`a - b` on the same seeds (same world, pool, test set and initial model), for each metric named."""

    title: str
    a: str  # cell names
    b: str
    metrics: tuple[str, ...] = ("spearman", "pair_accuracy")


def _names(*cells: Cell) -> tuple[str, ...]:
    return tuple(c.name for c in cells)


COMPARISONS: tuple[Comparison, ...] = (
    Comparison("Huber vs MSE, ratings with 10% outliers", "huber | ratings_outliers", "mse | ratings_outliers"),
    Comparison("Huber vs MSE, clean ratings (control)", "huber | ratings", "mse | ratings"),
    Comparison(
        "Label smoothing 0.2 vs plain BT, 20% flipped labels",
        "bt_smooth | pairs_flipped",
        "bt | pairs_flipped",
        ("pair_accuracy", "prob_mae", "prob_ece"),
    ),
    Comparison(
        "Margin BT (true gap) vs BT, same choices",
        "bt_margin | pairs_margin",
        "bt | pairs",
        ("spearman", "pair_accuracy", "prob_mae"),
    ),
    Comparison("Plackett-Luce lists vs BT pairs, equal cost", "plackett_luce | lists", "bt | pairs"),
    Comparison("All-pairs lists vs BT pairs, equal cost", "all_pairs | lists", "bt | pairs"),
    Comparison("Plackett-Luce vs BT on the pairs of the same rankings", "plackett_luce | lists", "bt | lists"),
    Comparison("Plackett-Luce vs all-pairs, same rankings", "plackett_luce | lists", "all_pairs | lists"),
    Comparison("InfoNCE on best vs worst vs Plackett-Luce, same rankings", "infonce | lists", "plackett_luce | lists"),
    Comparison("Ratings (MSE) vs pairwise choices (BT), equal annotator time", "mse | ratings", "bt | pairs"),
    Comparison("Ratings converted to pairs (BT) vs pairwise choices (BT), equal time", "bt | ratings", "bt | pairs"),
    Comparison("Likert 1-5 vs continuous ratings, MSE", "mse | likert", "mse | ratings"),
    Comparison("Thumbs up/down (BCE) vs ratings (MSE), equal time", "bce | thumbs", "mse | ratings"),
    Comparison("Annotator bias: MSE on biased vs clean ratings", "mse | ratings_biased", "mse | ratings"),
    Comparison(
        "Annotator bias: BT on within-prompt pairs of biased ratings vs MSE",
        "bt | ratings_biased",
        "mse | ratings_biased",
    ),
    Comparison(
        "Thurstone (probit) choices vs BT choices, BT loss",
        "bt | pairs_thurstone",
        "bt | pairs",
        ("pair_accuracy", "prob_mae"),
    ),
    Comparison("Ties dropped vs every choice kept, BT", "bt | pairs_ties", "bt | pairs"),
    Comparison(
        "Tied rankings vs strict rankings, Plackett-Luce", "plackett_luce | lists_ties", "plackett_luce | lists"
    ),
    Comparison("Hinge vs BT, same choices", "hinge | pairs", "bt | pairs", ("spearman", "pair_accuracy", "prob_mae")),
    Comparison(
        "Hinge vs BT, 20% flipped labels",
        "hinge | pairs_flipped",
        "bt | pairs_flipped",
        ("spearman", "pair_accuracy", "prob_mae"),
    ),
    Comparison(
        "Reward centering 0.01 vs plain BT, same choices",
        "bt_center | pairs",
        "bt | pairs",
        ("spearman", "pair_accuracy", "prob_mae"),
    ),
    Comparison("Best-of-N vs Plackett-Luce, same rankings", "best_of_n | lists", "plackett_luce | lists"),
    Comparison("Margin ranking vs InfoNCE, same best-vs-worst pairs", "margin_ranking | lists", "infonce | lists"),
    *(
        Comparison(
            f"Spurious length, {loss}",
            f"{loss} | {feedback} | spurious length",
            f"{loss} | {feedback}",
            ("spearman", "length_corr", "filler_corr"),
        )
        for loss, feedback in (("mse", "ratings"), ("bt", "pairs"), ("plackett_luce", "lists"), ("infonce", "lists"))
    ),
)


@dataclass(frozen=True)
class TrainSettings:
    """One set of hyperparameters for every cell (the fair comparison). Each optimizer step sees
    `sequences_per_batch` response sequences whatever the format (32 ratings, 16 pairs or 8 lists of 4), and a run
    takes `epochs` passes' worth of the budget's responses in steps (at least `min_steps`): training compute is
    proportional to the annotation budget and equal for every cell at one budget, converted data included (pairs
    made from ratings are more rows than the ratings; they get the same number of steps)."""

    epochs: float = 3.0
    min_steps: int = 50
    learning_rate: float = 3e-3
    sequences_per_batch: int = 32
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_length: int = 64

    def steps(self, budget: int) -> int:
        return max(self.min_steps, round(self.epochs * budget / self.sequences_per_batch))


@dataclass(frozen=True)
class LabDesign:
    """What one invocation runs: seeds x cells at `budget`, plus `CURVE_CELLS` at each of `curve_budgets`."""

    seeds: tuple[int, ...] = (0, 1, 2)
    budget: int = 1000  # responses read per cell (a multiple of annotators.GROUP)
    curve_budgets: tuple[int, ...] = ()
    test_responses: int = 500
    cells: tuple[Cell, ...] = CELLS
    curve_cells: tuple[Cell, ...] = CURVE_CELLS
    comparisons: tuple[Comparison, ...] = COMPARISONS
    train: TrainSettings = field(default_factory=TrainSettings)

    def runs(self) -> list[tuple[int, Cell]]:
        """(budget, cell) pairs one seed runs, main budget first."""
        out = [(self.budget, cell) for cell in self.cells]
        for budget in self.curve_budgets:
            if budget != self.budget:
                out += [(budget, cell) for cell in self.curve_cells]
        return out


QUICK = LabDesign(curve_budgets=(250, 500, 1000))
FULL = LabDesign(seeds=tuple(range(8)), curve_budgets=(250, 500, 1000, 2000, 4000), cells=CELLS + REFINEMENT_CELLS)
