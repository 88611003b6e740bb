"""Process reward models as their consumers read them: the export loaded with plain transformers only (in its own
Python, which never imports rm_trl), `rm-trl score` and `rm-trl serve` in subprocesses from an empty folder, and
`RewardFunction` called as TRL calls a reward function. Each must give the step rewards training computed (1e-5)
and the aggregate the export records.

Exports: a tiny Llama with its own pad token, a tiny Llama whose tokenizer pads with EOS as shipped (SmolLM2's), and
MiniLM reading each step from its own prefix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from rm_trl import StepwiseRewardTrainer
from rm_trl.data.pipeline import ROW
from rm_trl.export.consumers import CONSUMERS
from rm_trl.metrics.stepwise import aggregate_steps, step_probabilities
from rm_trl.modeling import get_metadata
from rm_trl.rl import RewardFunction

from .conftest import make_tiny_llama
from .test_stepwise_training import SEPARATOR, config, learnable_steps

ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
BACKBONES = ("llama_pad", "smol_pad_eos", "minilm")
EVAL_ROWS = learnable_steps(10, seed=5, problems=4)


def backbone(name: str, minilm_path: str, smol_tokenizer_dir: str):
    if name == "minilm":
        return minilm_path, None
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    if name == "llama_pad":
        tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    return make_tiny_llama(tokenizer), tokenizer


def training_step_rewards(trainer: StepwiseRewardTrainer) -> dict[int, list[float]]:
    """Per source row of the eval data, the step logits training computes (its own collator and reader)."""
    model = trainer.model.eval()
    dataset = trainer.prepared["eval"].dataset
    batch = trainer.data_collator([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        logits = trainer.compute_rewards(model, batch)[:, 0].tolist()
    sizes = trainer.solution_sizes(batch).tolist()
    out, start = {}, 0
    for row, size in zip(batch[ROW].tolist(), sizes):
        out[row] = logits[start : start + size]
        start += size
    return out


@pytest.fixture(scope="module")
def exports(tmp_path_factory, minilm_path, smol_tokenizer_dir):
    """name -> (export folder, training-time step logits per eval row)."""
    from datasets import Dataset

    out = {}
    for name in BACKBONES:
        folder = str(tmp_path_factory.mktemp(f"prm-{name}"))
        model, tokenizer = backbone(name, minilm_path, smol_tokenizer_dir)
        trainer = StepwiseRewardTrainer(
            model=model,
            args=config(folder, max_steps=3, learning_rate=1e-3, step_aggregation="min"),
            train_dataset=Dataset.from_list(learnable_steps(24, seed=1, problems=8)),
            eval_dataset=Dataset.from_list(EVAL_ROWS),
            processing_class=tokenizer,
        )
        trainer.train()
        trainer.save_reward_model()
        out[name] = (folder, training_step_rewards(trainer))
    return out


PLAIN_TRANSFORMERS = textwrap.dedent(
    """
    import json, sys
    import torch
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

    folder, rows_file = sys.argv[1], sys.argv[2]
    steps = json.load(open(folder + "/config.json"))["rm_trl"]["step_rewards"]
    separator = steps["separator"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rows = [json.loads(line) for line in open(rows_file)]
    out = []
    if steps["reading"] == "token":  # every step's logit at its separator, one forward per solution
        model = AutoModelForTokenClassification.from_pretrained(folder).eval()
        for row in rows:
            ids = tokenizer(row["prompt"] + "".join(s + separator for s in row["completions"]), return_tensors="pt")
            with torch.no_grad():
                logits = model(**ids).logits[0, :, 0]
            out.append(logits[ids["input_ids"][0] == steps["separator_id"]].tolist())
    else:  # each step's logit from its own prefix
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        for row in rows:
            steps_so_far = [row["completions"][: i + 1] for i in range(len(row["completions"]))]
            prefixes = ["".join(s + separator for s in some) for some in steps_so_far]
            ids = tokenizer([row["prompt"] + p for p in prefixes], return_tensors="pt", padding=True)
            with torch.no_grad():
                out.append(model(**ids).logits[:, 0].tolist())
    print(json.dumps(out))
    """
)


def test_export_records_how_steps_are_read(exports):
    for name, (folder, _) in exports.items():
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            metadata = json.load(f)["rm_trl"]
        steps = metadata["step_rewards"]
        assert steps["separator"] == SEPARATOR and steps["aggregation"] == "min"
        assert steps["reading"] == ("prefix" if name == "minilm" else "token")
        assert AutoTokenizer.from_pretrained(folder).convert_tokens_to_ids(SEPARATOR) == steps["separator_id"]
        assert set(metadata["consumers"]) == set(CONSUMERS)
        assert metadata["consumers"]["trl_path"].startswith("differs")  # one logit of the whole text
        assert metadata["consumers"]["trl_reward_function"].startswith("exact")
        card = open(os.path.join(folder, "README.md"), encoding="utf-8").read()
        reader = "AutoModelForSequenceClassification" if name == "minilm" else "AutoModelForTokenClassification"
        assert "process reward model" in card and reader in card and "**min** of the step probabilities" in card


def test_plain_transformers_reads_training_step_rewards(exports, tmp_path):
    """The card's recipe in a Python that never imports rm_trl: per-step logits equal training's (1e-5)."""
    rows_file = tmp_path / "rows.jsonl"
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in EVAL_ROWS), encoding="utf-8")
    script = tmp_path / "plain.py"
    script.write_text(PLAIN_TRANSFORMERS, encoding="utf-8")
    for name, (folder, trained) in exports.items():
        proc = subprocess.run(
            [sys.executable, str(script), folder, str(rows_file)],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        for row, logits in trained.items():
            assert len(got[row]) == len(EVAL_ROWS[row]["labels"]) == len(logits), name
            np.testing.assert_allclose(got[row], logits, atol=1e-5, rtol=1e-5, err_msg=f"{name} row {row}")


def test_rm_trl_score_writes_step_and_aggregated_rewards(exports, tmp_path):
    """`rm-trl score` from an empty folder on stepwise rows without labels: every row gets its steps' rewards and
    the recorded aggregate; `--step_aggregation` overrides the rule."""
    folder, trained = exports["smol_pad_eos"]
    rows = [{"prompt": r["prompt"], "completions": r["completions"]} for r in EVAL_ROWS]
    rows.append({"prompt": "Problem x", "completions": ["fine", f"holds {SEPARATOR} inside"]})  # not scorable
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for rule in ("min", "product"):
        command = [sys.executable, "-m", "rm_trl.cli", "score", "--model", folder, "--quiet", "--format", "stepwise"]
        command += ["--input", "in.jsonl", "--output", f"{rule}.jsonl"]
        command += ["--step_aggregation", rule] if rule != "min" else []
        proc = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        written = [json.loads(line) for line in open(tmp_path / f"{rule}.jsonl", encoding="utf-8")]
        assert len(written) == len(rows)
        for row, logits in trained.items():
            np.testing.assert_allclose(written[row]["step_rewards"], logits, atol=1e-5)
            expected = aggregate_steps(step_probabilities(np.array(logits)), rule)
            assert written[row]["reward"] == pytest.approx(expected, abs=1e-6)
        assert "completions[1]" in written[-1]["reward_error"] and "reward" not in written[-1]


def test_reward_function_aggregates_steps_as_trl_calls_it(exports):
    """TRL calls `f(prompts=..., completions=..., **columns)`; a completion's steps are split on the recorded text
    delimiter ("\\n")."""
    for folder, trained in exports.values():
        reward_function = RewardFunction(folder)
        prompts = [r["prompt"] for r in EVAL_ROWS] + ["Problem y", "Problem z"]
        completions = ["\n".join(r["completions"]) for r in EVAL_ROWS] + ["", "\n\n"]
        rewards = reward_function(prompts=prompts, completions=completions, completion_ids=None)
        assert rewards[-2:] == [None, None]
        for row, logits in trained.items():
            assert rewards[row] == pytest.approx(aggregate_steps(step_probabilities(np.array(logits)), "min"), abs=1e-6)


def test_serve_answers_step_requests(exports, tmp_path):
    """`rm-trl serve` on a process reward model: `/score` with step lists gives step rewards and the aggregate;
    OpenRLHF's `/get_reward` (prompt + generation, EOS kept) splits the generation into steps."""
    import httpx

    from .test_consumers import free_port

    folder, trained = exports["llama_pad"]
    port = free_port()
    log = open(tmp_path / "server.log", "w+b")
    command = [sys.executable, "-m", "rm_trl.cli", "serve", "--model", folder, "--port", str(port)]
    server = subprocess.Popen(command, env=ENV, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text(errors="replace")[-3000:]
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not come up in 120 s"
                time.sleep(0.5)
        prompts = [r["prompt"] for r in EVAL_ROWS]
        body = {"prompts": prompts, "steps": [r["completions"] for r in EVAL_ROWS]}
        reply = httpx.post(f"{url}/score", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        expected = [aggregate_steps(step_probabilities(np.array(trained[i])), "min") for i in range(len(EVAL_ROWS))]
        np.testing.assert_allclose(answer["rewards"], expected, atol=1e-6)
        for i, logits in trained.items():
            np.testing.assert_allclose(answer["step_rewards"][i], logits, atol=1e-5)
        eos = AutoTokenizer.from_pretrained(folder).eos_token or ""
        queries = [r["prompt"] + "\n".join(r["completions"]) + eos for r in EVAL_ROWS]
        reply = httpx.post(f"{url}/get_reward", json={"query": queries, "prompts": prompts}, timeout=60)
        assert reply.status_code == 200, reply.text
        np.testing.assert_allclose(reply.json()["rewards"], expected, atol=1e-6)
        bad = httpx.post(f"{url}/score", json={"steps": [["ok"], [f"a{SEPARATOR}b"]]}, timeout=60)
        assert bad.status_code == 422 and "steps[1]" in bad.json()["error"]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_scorer_refuses_stepwise_rows_for_an_outcome_model(exports, tmp_path):
    from datasets import Dataset

    from rm_trl.errors import ConfigError
    from rm_trl.scoring import RewardScorer

    folder, _ = exports["llama_pad"]
    scorer = RewardScorer.from_pretrained(folder)
    assert get_metadata(scorer.model)["step_rewards"]["reading"] == "token"
    scorer.steps = None  # as an outcome model's scorer
    with pytest.raises(ConfigError, match="process reward model"):
        scorer.prepare(Dataset.from_list(EVAL_ROWS), kind="stepwise")


def test_evaluation_of_an_export_gives_step_and_first_error_metrics_with_an_interval(exports):
    """`recipes/evaluate.py`'s path (`evaluate_dataset`): the format is detected from completions + labels, the
    headline step_f1 has a bootstrap interval, and the step metrics agree with the training-time logits."""
    from datasets import Dataset

    from rm_trl.evaluation import evaluate_dataset
    from rm_trl.metrics.stepwise import step_metrics
    from rm_trl.scoring import RewardScorer

    folder, trained = exports["llama_pad"]
    result = evaluate_dataset(RewardScorer.from_pretrained(folder), Dataset.from_list(EVAL_ROWS), bootstrap_samples=50)
    assert result.kind == "stepwise"
    low, high = result.intervals["step_f1"]
    assert low <= result.metrics["step_f1"] <= high
    assert {"first_error_f1", "first_error_accuracy_erroneous", "best_of_n_min"} <= set(result.metrics)
    logits = np.concatenate([trained[i] for i in range(len(EVAL_ROWS))])
    labels = np.concatenate([np.asarray(r["labels"], float) for r in EVAL_ROWS])
    assert result.metrics["step_f1"] == pytest.approx(step_metrics(logits, labels)["step_f1"])
