"""Checkpoints that survive being killed: atomic saves, and resuming from the last *complete* checkpoint.

The Trainer writes `checkpoint-N` in place, so a job killed while saving leaves a folder that looks like a
checkpoint (a partial `optimizer.pt`, no `trainer_state.json`) and that `resume_from_checkpoint=True` would pick.
rm-trl saves into a staging folder and renames it to `checkpoint-N` once every file is written, and when asked to
resume it checks each candidate and skips (and names) the incomplete ones.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import zipfile

from transformers.trainer_utils import rotate_checkpoints

from .errors import TrainingError

logger = logging.getLogger(__name__)

STAGING_DIR = ".checkpoint-staging"
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors", "pytorch_model.bin")
TORCH_ZIP_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt")
FALSE_WORDS = ("", "false", "no", "none", "0")
TRUE_WORDS = ("true", "yes", "last", "1")


def checkpoint_problem(path: str) -> str | None:
    """Why the checkpoint folder `path` cannot be resumed from, or `None` when it is complete."""
    state = os.path.join(path, "trainer_state.json")
    if not os.path.isfile(state):
        return "no trainer_state.json (the save did not finish)"
    try:
        with open(state, encoding="utf-8") as f:
            saved = json.load(f)
    except (ValueError, UnicodeDecodeError):
        return "trainer_state.json is cut short"
    if not isinstance(saved, dict) or not isinstance(saved.get("global_step"), int):
        return "trainer_state.json holds no trainer state"
    names = set(os.listdir(path))
    sharded = any(n.startswith(("pytorch_model_fsdp", "global_step")) for n in names)  # FSDP / DeepSpeed states
    if not sharded and not names.intersection(WEIGHT_FILES):
        return "no model weights"
    for name in names.intersection(TORCH_ZIP_FILES):
        if not zipfile.is_zipfile(os.path.join(path, name)):  # torch.save writes a zip; a cut one has no directory
            return f"{name} is cut short"
    for name in names:
        if name.endswith(".safetensors") and not _safetensors_complete(os.path.join(path, name)):
            return f"{name} is cut short"
    return None


def _safetensors_complete(path: str) -> bool:
    """A safetensors file is complete when it is as long as its header says."""
    try:
        with open(path, "rb") as f:
            (header_size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_size))
        ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
        return os.path.getsize(path) >= 8 + header_size + max(ends, default=0)
    except (OSError, ValueError, KeyError, struct.error):
        return False


def checkpoints_newest_first(output_dir: str) -> list[str]:
    if not os.path.isdir(output_dir):
        return []
    found = [(int(m.group(1)), name) for name in os.listdir(output_dir) if (m := CHECKPOINT_PATTERN.match(name))]
    return [os.path.join(output_dir, name) for _, name in sorted(found, reverse=True)]


def last_complete_checkpoint(output_dir: str) -> str | None:
    """The newest complete checkpoint in `output_dir`; each newer, incomplete one is named in a warning."""
    for path in checkpoints_newest_first(output_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        logger.warning("Skipping checkpoint %s: %s", path, problem)
    return None


def resolve_resume(resume: bool | str | None, output_dir: str) -> str | None:
    """Turn `resume_from_checkpoint` (unset / false, true / "last", or a folder) into a complete checkpoint folder.

    Raises `TrainingError` when asked to resume and there is nothing complete to resume from: a job that was told
    to resume must not silently start again from step 0.
    """
    if resume is None or resume is False or (isinstance(resume, str) and resume.strip().lower() in FALSE_WORDS):
        return None
    if resume is True or resume.strip().lower() in TRUE_WORDS:
        path = last_complete_checkpoint(output_dir)
        if path is None:
            raise TrainingError(
                f"resume_from_checkpoint: no complete checkpoint-N folder in {output_dir}; "
                "remove the flag to start from scratch"
            )
        logger.warning("Resuming from %s", path)
        return path
    if not os.path.isdir(resume):
        raise TrainingError(f"resume_from_checkpoint: {resume} is not a folder")
    problem = checkpoint_problem(resume)
    if problem is not None:
        raise TrainingError(f"resume_from_checkpoint: {resume} cannot be resumed from: {problem}")
    return resume


def weights_mismatch(checkpoint: str, model) -> str | None:
    """Why the full-model weights saved in `checkpoint` do not fit `model` (other names or shapes), or `None`.

    The Trainer loads checkpoint weights non-strictly, so resuming from another model's checkpoint would go on
    from the new model's random weights. Adapter and sharded checkpoints are not inspected here.
    """
    path = os.path.join(checkpoint, "model.safetensors")
    if not os.path.isfile(path) or hasattr(model, "peft_config"):
        return None
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    saved = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(saved))
    wrong = sorted(k for k in set(saved) & set(expected) if saved[k] != expected[k])
    if not missing and not wrong:
        return None
    tied = [k for k in missing if k.endswith("lm_head.weight")]  # tied weights are saved once
    if not wrong and len(tied) == len(missing):
        return None
    return (
        f"{len(missing)} of the model's {len(expected)} weights are not in it and {len(wrong)} have other shapes "
        f"(e.g. {(missing + wrong)[:3]}): it was saved from another model"
    )


def publish_staged_checkpoint(staging_dir: str, run_dir: str, name: str) -> str:
    """Move a fully written checkpoint from the staging folder to `run_dir/name` (a rename: atomic on one file
    system); a previous folder of that name (a re-save of the same step) is replaced."""
    final = os.path.join(run_dir, name)
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.replace(os.path.join(staging_dir, name), final)
    return final


class SafeCheckpointsMixin:
    """`transformers.Trainer` overrides: atomic checkpoint saves, resuming only from complete checkpoints, and
    refusing to export a run in which no training step ran."""

    def train(self, resume_from_checkpoint: bool | str | None = None, trial=None, ignore_keys_for_eval=None, **kwargs):
        """Train; `resume_from_checkpoint` (`True` / `"true"` / a folder) resumes from the last *complete*
        checkpoint, naming any incomplete one it skips, and refuses a folder that cannot be resumed from."""
        resume = resolve_resume(resume_from_checkpoint, self.args.output_dir)
        mismatch = resume and weights_mismatch(resume, self.accelerator.unwrap_model(self.model))
        if mismatch:
            raise TrainingError(f"resume_from_checkpoint: {resume} does not fit this model: {mismatch}")
        result = super().train(
            resume_from_checkpoint=resume, trial=trial, ignore_keys_for_eval=ignore_keys_for_eval, **kwargs
        )
        if self.state.global_step == 0:
            raise TrainingError(
                f"no training step ran ({len(self.train_dataset or [])} training rows, max_steps="
                f"{self.args.max_steps}, num_train_epochs={self.args.num_train_epochs}): nothing to export"
            )
        return result

    def _get_output_dir(self, trial) -> str:
        return getattr(self, "_staging_dir", None) or super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        """Write the checkpoint into a staging folder, then rename it to `checkpoint-N`: a job killed while saving
        leaves no folder that looks complete (see `rm_trl.checkpoints`)."""
        run_dir = super()._get_output_dir(trial)
        name = f"checkpoint-{self.state.global_step}"
        self._staging_dir = os.path.join(run_dir, STAGING_DIR)
        if self.args.should_save and os.path.isdir(os.path.join(self._staging_dir, name)):
            shutil.rmtree(os.path.join(self._staging_dir, name))  # left by a job killed while saving
        self.accelerator.wait_for_everyone()
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_dir = None
        self.accelerator.wait_for_everyone()  # every rank's shards are written
        if self.args.should_save:
            best = self.state.best_global_step
            best_dir = os.path.join(run_dir, f"checkpoint-{best}")
            if best and (best == self.state.global_step or os.path.isdir(best_dir)):
                self.state.best_model_checkpoint = best_dir
                self.state.save_to_json(os.path.join(run_dir, STAGING_DIR, name, "trainer_state.json"))
            publish_staged_checkpoint(os.path.join(run_dir, STAGING_DIR), run_dir, name)
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )
        self.accelerator.wait_for_everyone()
