"""Pushing a finished export to the Hugging Face Hub: the folder rm-trl wrote, complete, in one commit.

`transformers.Trainer.push_to_hub` saves the trainer's own model first (overwriting a baked normalisation or a
merged LoRA export with raw weights), rewrites the card, pushes every checkpoint as it is saved and, for LoRA,
uploads the adapter at the top level. rm-trl instead uploads the export folder as `save_reward_model` left it, once
training, evaluation and export are done; checkpoints and training-only files stay local.
"""

from __future__ import annotations

import logging
import os

from ..errors import TrainingError

logger = logging.getLogger(__name__)

# Written into output_dir by training but not part of the export a consumer loads.
NOT_UPLOADED = [
    "checkpoint-*",
    "checkpoint-*/**",
    ".checkpoint-staging",
    ".checkpoint-staging/**",
    "runs/**",
    "**/training_args.bin",
    "training_args.bin",
    "**/.ipynb_checkpoints/**",
]


def export_files(output_dir: str) -> list[str]:
    """Paths (relative, `/`-separated) of the files in `output_dir` that make up the export."""
    from huggingface_hub.utils import filter_repo_objects

    found = []
    for root, dirs, files in os.walk(output_dir):
        dirs.sort()
        for name in sorted(files):
            found.append(os.path.relpath(os.path.join(root, name), output_dir).replace(os.sep, "/"))
    return list(filter_repo_objects(found, ignore_patterns=NOT_UPLOADED))


def push_export(
    output_dir: str,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Reward model trained with rm-trl",
) -> str:
    """Create `repo_id` if needed and upload the export in `output_dir` as exactly one commit (`create_commit`,
    not `upload_folder`, which may split a folder into several commits); returns the commit URL."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    repo = api.create_repo(repo_id, private=private, exist_ok=True, token=token)
    operations = [
        CommitOperationAdd(path_in_repo=path, path_or_fileobj=os.path.join(output_dir, path))
        for path in export_files(output_dir)
    ]
    commit = api.create_commit(
        repo_id=repo.repo_id, operations=operations, commit_message=commit_message, revision=revision, token=token
    )
    url = getattr(commit, "commit_url", str(commit))
    logger.warning("Pushed %d files of %s to %s in one commit (%s)", len(operations), output_dir, repo.repo_id, url)
    return url


def default_repo_id(output_dir: str, hub_model_id: str | None) -> str:
    """`hub_model_id` when set, else the output folder's name (the Trainer's own rule)."""
    return hub_model_id or os.path.basename(os.path.normpath(os.path.abspath(output_dir)))


def push_finished_export(
    output_dir: str,
    hub_model_id: str | None,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "rm-trl reward model",
) -> str:
    """`push_export` to `hub_model_id` (or the folder's name) after training; a failure (network, token,
    permissions) is a `TrainingError` that says the export is complete and how to upload it later."""
    repo_id = default_repo_id(output_dir, hub_model_id)
    try:
        return push_export(
            output_dir, repo_id, token=token, private=private, revision=revision, commit_message=commit_message
        )
    except Exception as exc:
        raise TrainingError(
            f"push to the Hub ({repo_id}) failed: {type(exc).__name__}: {exc}. The export is complete in "
            f'{os.path.abspath(output_dir)}; upload it later with `python -c "from rm_trl.export.hub import '
            f"push_export; push_export('{output_dir}', '{repo_id}')\"`"
        ) from exc
