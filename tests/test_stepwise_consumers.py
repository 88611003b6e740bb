"""Process reward models as their consumers read them: the export loaded with plain transformers only (in its own
Python, which never imports rm_trl), `rm-trl score` and `rm-trl serve` in subprocesses from an empty folder, and
`RewardFunction` called as TRL calls a reward function and through TRL's GRPO trainer. Each must give the step
rewards training computed (1e-5) and the aggregate the export records.

Exports: a tiny Llama with its own pad token, a tiny Llama whose tokenizer pads with EOS as shipped (SmolLM2's), and
MiniLM reading each step from its own prefix. Every comparison is a cell of the consumer matrix
(`tests/consumer_record.py`: it also holds the export's `rm_trl.consumers` flag to the outcome), written to
docs/consumers.md by `scripts/make_consumers_doc.py` (`--stepwise` regenerates only these rows).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

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
from .consumer_record import check_cell
from .test_stepwise_training import SEPARATOR, config, learnable_steps

ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
BACKBONES = ("llama_pad", "smol_pad_eos", "minilm")
DECODERS = ("llama_pad", "smol_pad_eos")
# The CLI and server tests start a process per backbone (~15 s each): the default run keeps the hardest backbone (a
# decoder whose pad token is EOS) and the encoder; the other decoder runs with the slow tests.
PROCESS_BACKBONES = ("smol_pad_eos", "minilm", pytest.param("llama_pad", marks=pytest.mark.slow))
VARIANT = "stepwise"  # the consumer matrix's column group for these exports
EVAL_ROWS = learnable_steps(10, seed=5, problems=4)


def backbone(name: str, minilm_path: str, smol_tokenizer_dir: str):
    if name == "minilm":
        return minilm_path, None
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    if name == "llama_pad":
        tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    else:
        assert tokenizer.pad_token_id == tokenizer.eos_token_id  # pads with EOS, as shipped
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
        trained = training_step_rewards(trainer)
        assert sorted(trained) == list(range(len(EVAL_ROWS)))
        out[name] = (folder, trained)
    return out


def flags(folder: str) -> dict[str, str]:
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        return json.load(f)["rm_trl"]["consumers"]


def flat_steps(trained: dict[int, list[float]]) -> np.ndarray:
    """Every eval row's step logits, concatenated in row order."""
    return np.concatenate([trained[i] for i in range(len(EVAL_ROWS))])


def aggregates(trained: dict[int, list[float]], rule: str = "min") -> np.ndarray:
    return np.array([aggregate_steps(step_probabilities(np.array(trained[i])), rule) for i in range(len(EVAL_ROWS))])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_export_records_how_steps_are_read(exports):
    for name, (folder, _) in exports.items():
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            config_json = json.load(f)
        metadata = config_json["rm_trl"]
        steps = metadata["step_rewards"]
        assert steps["separator"] == SEPARATOR and steps["aggregation"] == "min" and steps["text_delimiter"] == "\n"
        assert steps["reading"] == ("prefix" if name == "minilm" else "token")
        assert AutoTokenizer.from_pretrained(folder).convert_tokens_to_ids(SEPARATOR) == steps["separator_id"]
        assert config_json["architectures"][0].endswith("ForSequenceClassification")  # one class; see the card
        assert "normalization" not in metadata  # stepwise models refuse normalize_rewards
        assert set(metadata["consumers"]) == set(CONSUMERS)
        assert metadata["consumers"]["trl_path"].startswith("differs")  # one logit of the whole text
        assert metadata["consumers"]["trl_reward_function"].startswith("exact")
        card = open(os.path.join(folder, "README.md"), encoding="utf-8").read()
        reader = "AutoModelForSequenceClassification" if name == "minilm" else "AutoModelForTokenClassification"
        assert "process reward model" in card and reader in card and "**min** of the step probabilities" in card
        assert ("score.bias" in card) == (name != "minilm")


def test_card_reads_the_score_head_where_the_token_class_would_not_hold_it(tmp_path):
    """GPT-2's token-classification class names its head `classifier` (it would start from a random head): the card
    then reads the sequence-classification `score` on the hidden states instead."""
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from rm_trl.export import write_model_card

    GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_embd=32, n_head=2, num_labels=1)).save_pretrained(tmp_path)
    steps = {
        "separator": SEPARATOR,
        "separator_id": 7,
        "aggregation": "min",
        "reading": "token",
        "text_delimiter": "\n",
    }
    card = open(write_model_card(str(tmp_path), {"family": "stepwise", "step_rewards": steps}), encoding="utf-8").read()
    card = card.split("## Consumers")[0]  # the usage section (the flags name both classes)
    assert "AutoModelForTokenClassification" not in card
    assert "model.score(model.base_model(**inputs).last_hidden_state)" in card


# ----- plain transformers, in a Python that never imports rm_trl ------------------------------------------------------
PLAIN_TRANSFORMERS = textwrap.dedent(
    """
    import json, sys
    import torch
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

    rows_file, folders = sys.argv[1], sys.argv[2:]
    rows = [json.loads(line) for line in open(rows_file)]
    answer = {}
    for folder in folders:
        steps = json.load(open(folder + "/config.json"))["rm_trl"]["step_rewards"]
        separator, separator_id = steps["separator"], steps["separator_id"]
        tokenizer = AutoTokenizer.from_pretrained(folder)
        out = answer[folder] = {}
        if steps["reading"] == "token":  # every step's logit at its separator
            texts = [row["prompt"] + "".join(s + separator for s in row["completions"]) for row in rows]
            model, info = AutoModelForTokenClassification.from_pretrained(folder, output_loading_info=True)
            model.eval()
            out["loading"] = {k: sorted(info[k]) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
            out["bias_is_zero"] = bool((model.score.bias == 0).all())
            sequence_model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
            one, hidden, last = [], [], []
            for text in texts:  # one solution per forward, as the model card shows
                ids = tokenizer(text, return_tensors="pt")
                at = ids["input_ids"][0] == separator_id
                with torch.no_grad():
                    one.append(model(**ids).logits[0, :, 0][at].tolist())
                    states = sequence_model.base_model(**ids).last_hidden_state
                    hidden.append(sequence_model.score(states)[0, :, 0][at].tolist())
                    last.append(sequence_model(**ids).logits[0, 0].item())
            out.update(one=one, hidden=hidden, last=last)
            for side in ("right", "left"):  # all solutions in one padded batch
                tokenizer.padding_side = side
                ids = tokenizer(texts, return_tensors="pt", padding=True)
                with torch.no_grad():
                    logits = model(**ids).logits[:, :, 0]
                at = ids["input_ids"] == separator_id
                out[side] = [logits[i][at[i]].tolist() for i in range(len(texts))]
        else:  # each step's logit from its own prefix, one padded batch per solution
            model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
            for side in ("right", "left"):
                tokenizer.padding_side = side
                out[side] = []
                for row in rows:
                    steps_so_far = [row["completions"][: i + 1] for i in range(len(row["completions"]))]
                    prefixes = [row["prompt"] + "".join(s + separator for s in some) for some in steps_so_far]
                    ids = tokenizer(prefixes, return_tensors="pt", padding=True)
                    with torch.no_grad():
                        out[side].append(model(**ids).logits[:, 0].tolist())
    print(json.dumps(answer))
    """
)


@pytest.fixture(scope="module")
def plain_reads(exports, tmp_path_factory) -> dict[str, dict]:
    """What plain transformers reads from each export (one subprocess for all of them)."""
    tmp = tmp_path_factory.mktemp("plain")
    rows_file = tmp / "rows.jsonl"
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in EVAL_ROWS), encoding="utf-8")
    script = tmp / "plain.py"
    script.write_text(PLAIN_TRANSFORMERS, encoding="utf-8")
    folders = [folder for folder, _ in exports.values()]
    command = [sys.executable, str(script), str(rows_file), *folders]
    proc = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rm_trl" not in proc.stderr
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: answer[folder] for name, (folder, _) in exports.items()}


def test_plain_transformers_reads_training_step_rewards(exports, plain_reads):
    """The card's recipe without rm_trl: every step's logit equals training's (1e-5), one solution per forward and
    in padded batches; decoders through `AutoModelForTokenClassification` (whose missing `score.bias` is zero), the
    sequence-classification head on the hidden states, and the sequence-classification class (last step)."""
    for name, (folder, trained) in exports.items():
        read, export = plain_reads[name], (name, VARIANT)
        want = flat_steps(trained)
        for got in [read["right"]] + ([read["one"], read["hidden"]] if name in DECODERS else []):
            assert [len(steps) for steps in got] == [len(r["labels"]) for r in EVAL_ROWS], name
        if name in DECODERS:
            assert read["loading"] == {"missing_keys": ["score.bias"], "unexpected_keys": [], "mismatched_keys": []}
            assert read["bias_is_zero"]
            check_cell(
                "transformers, token class at separators",
                export,
                flags(folder),
                "transformers",
                np.concatenate(read["one"]),
                want,
            )
            check_cell(
                "transformers, score head on hidden states",
                export,
                flags(folder),
                "transformers",
                np.concatenate(read["hidden"]),
                want,
            )
            last = np.array([trained[i][-1] for i in range(len(EVAL_ROWS))])
            check_cell(
                "transformers, sequence class (last step)", export, flags(folder), "transformers", read["last"], last
            )
            consumer = "transformers, token class, batch of 10"
        else:
            consumer = "transformers, step prefixes, batch per solution"
        check_cell(
            f"{consumer}, right padding", export, flags(folder), "transformers", np.concatenate(read["right"]), want
        )
        check_cell(
            f"{consumer}, left padding",
            export,
            flags(folder),
            "transformers_left_padding",
            np.concatenate(read["left"]),
            want,
        )


# ----- rm-trl score ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PROCESS_BACKBONES)
def test_rm_trl_score_writes_step_and_aggregated_rewards(name, exports, tmp_path):
    """`rm-trl score` in a subprocess from an empty folder on stepwise rows without labels: every row gets its
    steps' rewards, their probabilities and the recorded aggregate; an unscorable row is kept and marked."""
    folder, trained = exports[name]
    write_score_input(tmp_path)
    command = [sys.executable, "-m", "rm_trl.cli", "score", "--model", folder, "--quiet", "--format", "stepwise"]
    command += ["--input", "in.jsonl", "--output", "out.jsonl"]
    proc = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scored = read_score_output(tmp_path / "out.jsonl")
    for row in scored:
        assert len(row["step_rewards"]) == len(row["step_probabilities"]) == len(row["completions"])
        np.testing.assert_allclose(row["step_probabilities"], step_probabilities(np.array(row["step_rewards"])))
    export, flag = (name, VARIANT), flags(folder)
    steps = np.concatenate([row["step_rewards"] for row in scored])
    check_cell("rm-trl score, step_rewards", export, flag, "rm_trl_score", steps, flat_steps(trained))
    got = [row["reward"] for row in scored]
    check_cell("rm-trl score, reward (recorded aggregation)", export, flag, "rm_trl_score", got, aggregates(trained))


def test_rm_trl_score_step_aggregation_overrides_the_recorded_rule(exports, tmp_path, monkeypatch):
    """`--step_aggregation product` (in-process `rm-trl score`; the rows are detected as stepwise from their
    completions + labels)."""
    from rm_trl.cli import main

    folder, trained = exports["smol_pad_eos"]
    write_score_input(tmp_path, labels=True)
    monkeypatch.chdir(tmp_path)
    command = ["score", "--model", folder, "--quiet", "--input", "in.jsonl", "--output", "out.jsonl"]
    assert main(command + ["--step_aggregation", "product"]) == 0
    scored = read_score_output(tmp_path / "out.jsonl")
    np.testing.assert_allclose([row["reward"] for row in scored], aggregates(trained, "product"), atol=1e-6)
    np.testing.assert_allclose(np.concatenate([r["step_rewards"] for r in scored]), flat_steps(trained), atol=1e-5)


def write_score_input(folder, labels: bool = False) -> None:
    """The eval rows (without labels unless asked) and one row that cannot be scored (a step holds the separator)."""
    keys = ("prompt", "completions", "labels") if labels else ("prompt", "completions")
    rows = [{k: r[k] for k in keys} for r in EVAL_ROWS]
    rows.append({"prompt": "Problem x", "completions": ["fine", f"holds {SEPARATOR} inside"], "labels": [1, 1]})
    if not labels:
        rows[-1].pop("labels")
    (folder / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def read_score_output(path) -> list[dict]:
    """The scored eval rows, after checking that every input row was written and the bad one marked."""
    written = [json.loads(line) for line in open(path, encoding="utf-8")]
    assert len(written) == len(EVAL_ROWS) + 1
    assert "completions[1]" in written[-1]["reward_error"] and "reward" not in written[-1]
    return written[: len(EVAL_ROWS)]


# ----- RewardFunction, as TRL calls it and through TRL's GRPO trainer -------------------------------------------------
def test_reward_function_aggregates_steps_as_trl_calls_it(exports):
    """TRL calls `f(prompts=..., completions=..., **columns)`; a completion's steps are split on the recorded text
    delimiter ("\\n"), empty pieces dropped; a completion with no step gets None."""
    for name, (folder, trained) in exports.items():
        reward_function = RewardFunction(folder)
        prompts = [r["prompt"] for r in EVAL_ROWS] + ["Problem y", "Problem z"]
        completions = ["\n".join(r["completions"]) for r in EVAL_ROWS] + ["", "\n\n"]
        rewards = reward_function(prompts=prompts, completions=completions, completion_ids=None)
        assert rewards[-2:] == [None, None]
        np.testing.assert_allclose(rewards[:-2], aggregates(trained), atol=1e-6, err_msg=name)
        with_blank_lines = ["\n\n".join(r["completions"]) + "\n" for r in EVAL_ROWS]
        np.testing.assert_allclose(reward_function(prompts[:-2], with_blank_lines), rewards[:-2], atol=1e-6)


def test_reward_function_on_conversational_prompts_and_completions(exports):
    """Message-list prompts (rendered with the chat template, as the stepwise format does) and completions (their
    messages' text, split into steps): the same rewards as the scorer gives the equivalent stepwise rows."""
    from datasets import Dataset

    folder, _ = exports["llama_pad"]
    reward_function = RewardFunction(folder)
    prompts = [[{"role": "user", "content": r["prompt"]}] for r in EVAL_ROWS[:4]]
    completions = [[{"role": "assistant", "content": "\n".join(r["completions"])}] for r in EVAL_ROWS[:4]]
    got = reward_function(prompts=prompts, completions=completions)
    rows = Dataset.from_dict({"prompt": prompts, "completions": [r["completions"] for r in EVAL_ROWS[:4]]})
    scorer = reward_function.scorer
    scored = scorer.score_prepared(scorer.prepare_scorable(rows, kind="stepwise"))
    np.testing.assert_allclose(got, [scorer.aggregate(steps) for steps in scored.step_rewards()], atol=1e-6)


def test_trl_grpo_calculate_rewards(exports, tmp_path, smol_tokenizer_dir):
    """TRL's own `GRPOTrainer._calculate_rewards` holding each export twice: `RewardFunction` gives the recorded
    aggregate; `reward_funcs="<folder>"` (one logit of the whole text) differs, as the export's flag says."""
    import trl
    from datasets import Dataset

    from .consumer_models import make_policy

    prompts = [r["prompt"] for r in EVAL_ROWS]
    completions = ["\n".join(r["completions"]) for r in EVAL_ROWS]
    folders = [folder for folder, _ in exports.values()]
    args = trl.GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=4,
        bf16=False,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = trl.GRPOTrainer(
        model=make_policy(str(tmp_path / "policy"), smol_tokenizer_dir),
        reward_funcs=folders + [RewardFunction(folder) for folder in folders],
        args=args,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
    )
    inputs = [{"prompt": p} for p in prompts]
    rewards = trainer._calculate_rewards(inputs, prompts, completions, [[] for _ in prompts]).cpu().numpy()
    for j, (name, (folder, trained)) in enumerate(exports.items()):
        export, flag = (name, VARIANT), flags(folder)
        want = aggregates(trained)
        check_cell('TRL GRPO, reward_funcs="<folder>"', export, flag, "trl_path", rewards[:, j], want)
        check_cell("TRL GRPO, RewardFunction", export, flag, "trl_reward_function", rewards[:, len(folders) + j], want)


# ----- rm-trl serve ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PROCESS_BACKBONES)
def test_serve_answers_step_requests(name, exports, tmp_path):
    """`rm-trl serve` on a process reward model: `/score` with step lists gives step rewards and the aggregate;
    OpenRLHF's `/get_reward` (prompt + generation, EOS kept) splits the generation into steps. A `/get_reward`
    without prompts, or whose query does not start with its prompt, is refused (422, saying why); an empty
    generation gets `empty_reward` (it has no steps)."""
    import httpx

    from rm_trl.serve import wait_until_healthy

    folder, trained = exports[name]
    export, flag = (name, VARIANT), flags(folder)
    port = free_port()
    log = open(tmp_path / "server.log", "w+b")
    command = [sys.executable, "-m", "rm_trl.cli", "serve", "--model", folder, "--port", str(port)]
    command += ["--empty_reward", "-7"]
    server = subprocess.Popen(command, env=ENV, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_healthy(url, timeout=120, process=server)
        except (RuntimeError, TimeoutError):
            pytest.fail((tmp_path / "server.log").read_text(errors="replace")[-3000:])
        prompts = [r["prompt"] for r in EVAL_ROWS]
        body = {"prompts": prompts, "steps": [r["completions"] for r in EVAL_ROWS]}
        reply = httpx.post(f"{url}/score", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        assert answer["aggregation"] == "min"
        steps = np.concatenate(answer["step_rewards"])
        check_cell(
            "rm-trl serve /score {prompts, steps}: step_rewards",
            export,
            flag,
            "openrlhf_remote",
            steps,
            flat_steps(trained),
        )
        check_cell(
            "rm-trl serve /score {prompts, steps}: rewards",
            export,
            flag,
            "openrlhf_remote",
            answer["rewards"],
            aggregates(trained),
        )
        eos = AutoTokenizer.from_pretrained(folder).eos_token or ""
        queries = [r["prompt"] + "\n".join(r["completions"]) + eos for r in EVAL_ROWS]
        reply = httpx.post(f"{url}/get_reward", json={"query": queries, "prompts": prompts}, timeout=60)
        assert reply.status_code == 200, reply.text
        check_cell(
            "OpenRLHF /get_reward (prompt + generation + EOS) -> rm-trl serve",
            export,
            flag,
            "openrlhf_remote",
            reply.json()["rewards"],
            aggregates(trained),
        )
        if name != "llama_pad":
            return
        bad = httpx.post(f"{url}/score", json={"steps": [["ok"], [f"a{SEPARATOR}b"]]}, timeout=60)
        assert bad.status_code == 422 and "steps[1]" in bad.json()["error"]
        no_prompts = httpx.post(f"{url}/get_reward", json={"query": queries[:2]}, timeout=60)
        assert no_prompts.status_code == 422 and "'prompts'" in no_prompts.json()["error"]
        mismatch = httpx.post(f"{url}/get_reward", json={"query": queries[:2], "prompts": ["Other", prompts[1]]})
        assert mismatch.status_code == 422 and "query[0]" in mismatch.json()["error"]
        assert "query[1]" not in mismatch.json()["error"]
        empty = {"query": [prompts[0] + eos, queries[1]], "prompts": prompts[:2]}
        reply = httpx.post(f"{url}/get_reward", json=empty, timeout=60)
        assert reply.status_code == 200, reply.text
        assert reply.json()["rewards"][0] == -7.0 and reply.json()["empty"] == [0]
        assert reply.json()["rewards"][1] == pytest.approx(aggregates(trained)[1], abs=1e-6)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


# ----- in-process scoring and evaluation ------------------------------------------------------------------------------
def test_scorer_refuses_stepwise_rows_for_an_outcome_model(exports):
    from datasets import Dataset

    from rm_trl.errors import ConfigError
    from rm_trl.scoring import RewardScorer

    folder, _ = exports["llama_pad"]
    scorer = RewardScorer.from_pretrained(folder)
    assert get_metadata(scorer.model)["step_rewards"]["reading"] == "token"
    scorer.steps = None  # as an outcome model's scorer
    with pytest.raises(ConfigError, match="process reward model"):
        scorer.prepare(Dataset.from_list(EVAL_ROWS), kind="stepwise")


def test_scorer_gives_step_rewards_per_row_and_the_recorded_aggregate(exports):
    """`RewardScorer.score` on stepwise rows (format detected from completions + labels): `rewards[i]` holds row
    i's step logits, in order; `aggregate` follows the export's rule unless `step_aggregation` overrides it."""
    from datasets import Dataset

    from rm_trl.scoring import RewardScorer

    for name, (folder, trained) in exports.items():
        scored = RewardScorer.from_pretrained(folder).score(Dataset.from_list(EVAL_ROWS))
        for row, steps in zip(scored.rows, scored.step_rewards()):
            np.testing.assert_allclose(steps, trained[row], atol=1e-5, err_msg=name)
        product = RewardScorer.from_pretrained(folder, step_aggregation="product")
        assert product.aggregate(np.array(trained[0])) == pytest.approx(aggregates(trained, "product")[0])


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
    labels = np.concatenate([np.asarray(r["labels"], float) for r in EVAL_ROWS])
    assert result.metrics["step_f1"] == pytest.approx(step_metrics(flat_steps(trained), labels)["step_f1"])
