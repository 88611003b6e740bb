"""Every case of the bad-input matrix through the entry point a user runs (`rm-trl train <family>` or `rm-trl score`),
each in its own subprocess: an error exits 1 with the same message the library raises and no traceback; a counted
case exits 0. Slow (one process per case: about 10 s each); `tests/test_bad_input_cli.py` runs one case per class
in the default suite."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from transformers import AutoTokenizer

from rm_trl import DataArguments, ListwiseRewardConfig, PairwiseRewardConfig, PointwiseRewardConfig

from .bad_inputs import Case, all_cases
from .conftest import REPO_ROOT, make_tiny_llama, smollm2_gguf_path
from .test_bad_input_reported import jsonl, write_file

pytestmark = pytest.mark.slow

FAMILY = {"pairwise": "pairwise", "conversational": "pairwise", "rated": "pointwise", "ranked": "listwise"}
CLI_SETTINGS = {
    f.name
    for cls in (DataArguments, PairwiseRewardConfig, PointwiseRewardConfig, ListwiseRewardConfig)
    for f in dataclasses.fields(cls)
}
PLAIN_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # the matrix's "plain" tokenizer, as a packaged model


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory) -> str:
    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
    path = tmp_path_factory.mktemp("chat-model")
    make_tiny_llama(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def command(case: Case, folder: str, model: str) -> list[str]:
    data = write_file(folder, case) if (case.rows or case.file_bytes is not None) else _empty_file(folder)
    if case.purpose == "score":
        return ["score", "--model", model, "--input", data, "--output", os.path.join(folder, "out.jsonl"), "--quiet"]
    options = {"max_length": 128, **case.options}
    library_only = sorted(set(options) - CLI_SETTINGS)
    if library_only:
        pytest.skip(f"{library_only}: a parse option of the Python API, not a setting of `rm-trl train`")
    flags = ["train", FAMILY[case.format], "--model_name_or_path", model, "--train_data", data]
    for key, value in options.items():
        flags += [f"--{key}", " ".join(value) if isinstance(value, list) else str(value)]
    if case.convert_from:
        flags += ["--source_format", case.convert_from]
    if case.eval_rows is not None:
        eval_path = os.path.join(folder, "eval.jsonl")
        with open(eval_path, "wb") as f:
            f.write(jsonl(*case.eval_rows))
        flags += ["--eval_data", eval_path]
    quick = ["--max_steps", "1", "--per_device_train_batch_size", "2", "--report_to", "none", "--save_strategy", "no"]
    return flags + quick + ["--output_dir", os.path.join(folder, "out"), "--disable_tqdm", "true"]


def _empty_file(folder: str) -> str:
    path = os.path.join(folder, "data.jsonl")
    open(path, "wb").close()
    return path


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: f"{c.format}:{c.name}")
def test_each_bad_input_case_through_the_entry_point(case, chat_model, tmp_path):
    model = chat_model if case.format == "conversational" else PLAIN_MODEL
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=REPO_ROOT)
    env.pop("RM_TRL_DEBUG", None)
    cmd = [sys.executable, "-m", "rm_trl.cli", *command(case, str(tmp_path), model)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    if case.expect[0] == "error":  # the wording (which here also names the file) is checked in-process
        assert proc.returncode == 1, json.dumps(case.options) + proc.stderr[-3000:]
        assert len([line for line in proc.stderr.splitlines() if ": error: " in line]) == 1, proc.stderr[-3000:]
    else:
        assert proc.returncode == 0, proc.stderr[-3000:]
