"""What an export records about itself: the `rm_trl` entry of `config.json` (how it was trained and how to
feed it: reward token rule, pad token, EOS rule, truncation, max length, library versions), so any consumer can
reproduce the training-time scores.
"""

from __future__ import annotations

import os
from typing import Any

from ..modeling import METADATA_KEY, get_metadata

__all__ = [
    "METADATA_KEY",
    "get_metadata",
    "is_hub_id",
    "library_versions",
    "reward_token_rule",
    "training_metadata",
]


def reward_token_rule(model) -> str:
    """How the architecture's head picks the token it scores."""
    if hasattr(model, "score"):
        return "last_non_pad_token"
    return "architecture_pooler"  # e.g. BERT's [CLS] pooler


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a reward model's scores, recorded in the export and its card."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("rm-trl", "transformers", "trl", "peft", "accelerate", "torch"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def is_hub_id(name: str | None) -> bool:
    """`org/name` that is not a local path: worth naming in a card's metadata (the Hub links it)."""
    return bool(name) and name.count("/") == 1 and not os.path.exists(name) and not name.startswith((".", "/"))


def training_metadata(
    model,
    tokenizer,
    args,
    *,
    family: str,
    loss: dict[str, Any],
    layout=None,
    template=None,
) -> dict[str, Any]:
    """The `rm_trl` entry recorded at the start of training (so checkpoints carry it too): the family and loss,
    and everything a consumer needs to feed the model as training did. `layout` / `template` are the training
    data's (`rm_trl.data.PreparedData`); without data only the model-side entries are written."""
    metadata = {
        "version": library_versions().get("rm-trl", "0+unknown"),
        "libraries": library_versions(),
        "family": family,
        "loss": loss,
        "num_labels": model.config.num_labels,
        "base_model": model.config._name_or_path,
        "reward_token": reward_token_rule(model),
        "pad_token": tokenizer.pad_token,
        "padding_side": "right",
        "max_length": args.max_length,
        "truncation": args.truncation,
    }
    if args.license:
        metadata["license"] = args.license
    if layout is not None and template is not None:
        prefix, suffix = list(template.prefix), list(template.suffix)
        metadata["format"] = layout.describe()
        metadata["append_eos"] = tokenizer.eos_token_id is not None and tokenizer.eos_token_id in template.suffix
        metadata["conversational"] = layout.conversational
        metadata["special_tokens"] = {
            "prefix": tokenizer.convert_ids_to_tokens(prefix),
            "suffix": tokenizer.convert_ids_to_tokens(suffix),
        }
        # TRL's online trainers score `tokenizer(prompt + completion, add_special_tokens=False)` and append
        # nothing: the same ids as training only when training added no special tokens of its own.
        metadata["trl_path_compatible"] = not prefix and not suffix
    return metadata
