"""Diagnostics as Trainer callbacks, switched on by environment variables so any entry point can use them.

`RM_TRL_RANK_DIGEST_DIR=<dir>`: at the end of training each process writes a checksum of every parameter it
holds (`rank<N>.json`), and rank 0 its final weights (`weights.pt`), so data-parallel replicas can be compared
with each other and with a 1-process run (`tests/test_scale_out.py`).
"""

from __future__ import annotations

import hashlib
import json
import os

import torch
from transformers import TrainerCallback

RANK_DIGEST_ENV = "RM_TRL_RANK_DIGEST_DIR"


class RankDigestCallback(TrainerCallback):
    """Writes per-rank parameter checksums into `directory` when training ends."""

    def __init__(self, directory: str):
        self.directory = directory

    def on_train_end(self, args, state, control, model=None, **kwargs):
        os.makedirs(self.directory, exist_ok=True)
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        digest = {k: hashlib.sha256(v.float().numpy().tobytes()).hexdigest() for k, v in weights.items()}
        with open(os.path.join(self.directory, f"rank{args.process_index}.json"), "w") as f:
            json.dump({"world_size": args.world_size, "digest": digest}, f)
        if args.process_index == 0:
            torch.save(weights, os.path.join(self.directory, "weights.pt"))


def diagnostic_callbacks() -> list[TrainerCallback]:
    """The diagnostics the environment asks for (none by default)."""
    directory = os.environ.get(RANK_DIGEST_ENV)
    return [RankDigestCallback(directory)] if directory else []
