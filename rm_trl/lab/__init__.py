"""The loss lab: reward-model losses trained on simulated feedback whose true reward is known.

`world` (responses, the hidden reward r*, the tiny model folder), `annotators` (every feedback kind rm-trl trains
on, from r*, with its cost), `design` (feedback kinds, cells, comparisons, the shared training settings), `runner`
(each cell trained through `rm_trl.recipe.main` and scored by `RewardScorer`), `measure` (metrics against the
truth), `report` (intervals over seeds, paired comparisons). `recipes/lab.py` runs it; `docs/loss_lab.md` says
what it found. Nothing in the rest of rm-trl imports this package.
"""
