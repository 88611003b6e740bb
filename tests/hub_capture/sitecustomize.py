"""Offline stand-in for the Hugging Face Hub's write calls, for tests that push from a subprocess.

Put this folder on PYTHONPATH and set RM_TRL_TEST_HUB_CAPTURE=<dir>: `HfApi.create_repo` is recorded and
`HfApi.create_commit` writes exactly the files of each commit it would send to `<dir>/commit-<n>/` (plus
`_commit.json` with the repo id and message), so a test can count the commits and load the upload back. Every
other Hub call is left as it is (and fails offline, as it would for a user without network).
"""

import json
import os

CAPTURE = os.environ.get("RM_TRL_TEST_HUB_CAPTURE")

if CAPTURE:
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.hf_api import CommitInfo, RepoUrl

    def _log(entry: dict) -> None:
        os.makedirs(CAPTURE, exist_ok=True)
        with open(os.path.join(CAPTURE, "calls.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def create_repo(self, repo_id, *args, **kwargs):
        _log({"call": "create_repo", "repo_id": repo_id, "private": kwargs.get("private")})
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def create_commit(self, repo_id, operations, *, commit_message, **kwargs):
        index = sum(name.startswith("commit-") for name in os.listdir(CAPTURE)) if os.path.isdir(CAPTURE) else 0
        folder = os.path.join(CAPTURE, f"commit-{index}")
        files = []
        for op in operations:
            if not isinstance(op, CommitOperationAdd):
                raise TypeError(f"unexpected operation {op!r}")
            target = os.path.join(folder, op.path_in_repo)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            source = op.path_or_fileobj
            if isinstance(source, (str, os.PathLike)):
                with open(source, "rb") as f:
                    data = f.read()
            elif isinstance(source, bytes):
                data = source
            else:
                data = source.read()
            with open(target, "wb") as f:
                f.write(data)
            files.append(op.path_in_repo)
        with open(os.path.join(folder, "_commit.json"), "w", encoding="utf-8") as f:
            json.dump({"repo_id": repo_id, "message": commit_message, "files": files}, f)
        _log({"call": "create_commit", "repo_id": repo_id, "files": len(files)})
        url = f"https://huggingface.co/{repo_id}/commit/{index:040d}"
        return CommitInfo(commit_url=url, commit_message=commit_message, commit_description="", oid=f"{index:040d}")

    HfApi.create_repo = create_repo
    HfApi.create_commit = create_commit
