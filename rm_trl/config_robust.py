"""Robust-reward settings mixed into the pairwise family's config: ensembles (E reward heads on one backbone) and a
length-disentangled reward (ODIN: a quality head and a length head).

Kept apart from `config.py` for size; every field documented where it is declared, so it becomes a flag and a YAML
key. See `rm_trl.ensemble`, `rm_trl.losses.length_disentangle_loss` and `docs/robust_rewards.md`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ensemble import CONSERVATIVE_RULES, ENSEMBLE_READINGS
from .ensemble_heads import HEADS_FILE


@dataclass
class EnsembleSettings:
    r"""E reward heads on a shared backbone (one forward), each trained on its own bootstrap resample of every batch
    from its own random initialisation; their disagreement is the model's uncertainty.

    Parameters:
        ensemble_heads (`int`, defaults to `1`):
            Number of reward heads. With more than one, the export is a standard one-output reward model whose
            reward is the heads' mean (what plain transformers, TRL and PPO pipelines read), the heads are saved
            beside it in `ensemble_heads.safetensors`, and `rm_trl.ensemble` in `config.json` records it; rm-trl's
            consumers read mean, std and conservative reward from one forward.
        ensemble_bootstrap (`bool`, defaults to `True`):
            Each head trains on its own resample (rows drawn with replacement) of every batch; `False` trains every
            head on every row (the heads then differ only by their initialisation).
        conservative_reward (`str`, defaults to `"mean_minus_std"`):
            The conservative reward rm-trl's consumers return beside mean and std: `"mean_minus_std"`
            (`mean - uncertainty_penalty * std`, uncertainty-weighted optimisation) or `"min"` (the lowest head,
            worst-case optimisation); Coste et al. 2024. Recorded in the export.
        uncertainty_penalty (`float`, defaults to `1.0`):
            k in `mean - k * std`.
        ensemble_reward (`str`, defaults to `"mean"`):
            What `RewardFunction` (TRL's GRPO / RLOO) returns by default for this model: `"mean"` or
            `"conservative"`. Recorded in the export; plain consumers always read the mean (`logits[:, 0]`).
    """

    ensemble_heads: int = field(default=1, metadata={"help": "Reward heads on the shared backbone (1: no ensemble)."})
    ensemble_bootstrap: bool = field(
        default=True, metadata={"help": "Train each head on its own bootstrap resample of every batch."}
    )
    conservative_reward: str = field(
        default="mean_minus_std",
        metadata={"help": "Conservative ensemble reward.", "choices": list(CONSERVATIVE_RULES)},
    )
    uncertainty_penalty: float = field(default=1.0, metadata={"help": "k in mean - k * std."})
    ensemble_reward: str = field(
        default="mean",
        metadata={"help": "RewardFunction's default ensemble reading.", "choices": list(ENSEMBLE_READINGS)},
    )

    def check_ensemble(self) -> None:
        """Refuse settings an ensemble cannot honour (called by the config's `__post_init__`)."""
        if self.ensemble_heads < 1:
            raise ValueError(f"ensemble_heads={self.ensemble_heads} must be at least 1")
        if self.uncertainty_penalty < 0:
            raise ValueError(f"uncertainty_penalty={self.uncertainty_penalty} must be >= 0")
        if self.ensemble_heads > 1 and getattr(self, "normalize_rewards", False):
            raise ValueError(
                "normalize_rewards with ensemble_heads > 1 is not supported: normalise the mean and the heads "
                "yourself from `rm-trl score` output, or train one head"
            )

    def ensemble_metadata(self) -> dict | None:
        """The export's `rm_trl.ensemble` entry (None for one head)."""
        if self.ensemble_heads == 1:
            return None
        return {
            "heads": self.ensemble_heads,
            "outputs": f"logits[:, 0] is the mean of the heads; the heads are in {HEADS_FILE} (rm-trl reads them)",
            "bootstrap": "rows drawn with replacement per batch" if self.ensemble_bootstrap else "none",
            "std": "population standard deviation over the heads",
            "conservative_reward": self.conservative_reward,
            "uncertainty_penalty": self.uncertainty_penalty,
            "reward": self.ensemble_reward,
        }


@dataclass
class LengthHeadSettings:
    r"""A length-disentangled reward (ODIN, Chen et al. 2024, arXiv:2402.07319): two linear heads on the shared
    backbone, whose sum is trained on the preferences; the length head is pulled onto response length, the quality
    head pushed off it (Pearson correlations over each batch), and their weights kept orthogonal. The export's
    reward is the quality head alone (the length head is dropped, exactly: one row of the linear head).

    Parameters:
        length_head (`bool`, defaults to `False`):
            Train the quality + length heads; `rm_trl.length_head` in the export records it.
        length_correlation_weight (`float`, defaults to `1.0`):
            Weight of the length terms `(1 - rho(length head, length)) + |rho(quality head, length)|` (the authors'
            `correlation_with_length`).
        orthogonal_weight (`float`, defaults to `1.0`):
            Weight of `|w_Q . w_L|` on the centred, unit-norm head rows (the authors' `ortho_reg`).
    """

    length_head: bool = field(default=False, metadata={"help": "ODIN: a quality head and a length head."})
    length_correlation_weight: float = field(default=1.0, metadata={"help": "Weight of ODIN's length terms."})
    orthogonal_weight: float = field(default=1.0, metadata={"help": "Weight of ODIN's head orthogonality term."})

    def check_length_head(self) -> None:
        if self.length_head and getattr(self, "ensemble_heads", 1) > 1:
            raise ValueError("length_head with ensemble_heads > 1 is not supported: choose one")
        if self.length_head and getattr(self, "normalize_rewards", False):
            raise ValueError("length_head with normalize_rewards is not supported yet")
        if self.length_correlation_weight < 0 or self.orthogonal_weight < 0:
            raise ValueError("length_correlation_weight and orthogonal_weight must be >= 0")

    def length_head_metadata(self) -> dict | None:
        """The export's `rm_trl.length_head` entry (None without the length head)."""
        if not self.length_head:
            return None
        return {
            "method": "ODIN (Chen et al. 2024, arXiv:2402.07319)",
            "exported": "the quality head (logits[:, 0]); the length head was dropped",
            "length_correlation_weight": self.length_correlation_weight,
            "orthogonal_weight": self.orthogonal_weight,
        }
