"""Reliability: the bad-input matrix, a validator fuzz test, train/eval overlap, non-finite losses, security."""

import math

import pytest
import torch
from datasets import Dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rm_trl import PairwiseRewardConfig, PairwiseRewardTrainer, load_reward_model
from rm_trl.data import DataLoadError, DataValidationError, prepare_dataset
from rm_trl.data.formats import SCHEMAS

from .bad_inputs import all_cases, run_case
from .conftest import learnable_pairs


@pytest.fixture(scope="module")
def tokenizers(minilm_path, smol_tokenizer_dir):
    return {
        "plain": AutoTokenizer.from_pretrained(minilm_path),
        "chat": AutoTokenizer.from_pretrained(smol_tokenizer_dir),
    }


CASES = all_cases()


def subset_matches(expected, actual) -> bool:
    """Every expected key is there with the expected value; an expected string need only be part of the actual one;
    an expected empty dict means none."""
    if isinstance(expected, dict):
        if not expected:
            return actual in ({}, None)
        return isinstance(actual, dict) and all(subset_matches(v, actual.get(k)) for k, v in expected.items())
    if isinstance(expected, str) and isinstance(actual, str):
        return expected in actual
    return expected == actual


@pytest.mark.parametrize("case", CASES, ids=[f"{c.format}: {c.name}" for c in CASES])
def test_bad_input_matrix(case, tokenizers):
    outcome, detail = run_case(case, tokenizers)
    expected_outcome, expected = case.expect
    assert outcome == expected_outcome, str(detail)[:2000]
    if outcome == "error":
        assert expected in detail, detail
        return
    assert subset_matches(expected, detail), {k: v for k, v in detail.items() if k != "texts"}
    # nothing is lost silently: every input row is kept, or counted where it went
    accounted = detail["rows_out"] + sum(detail["skipped_invalid"].values()) + sum(detail["dropped"].values())
    assert accounted == detail["rows_in"]
    # text reaches the tokenizer exactly as the data holds it, and never in unbounded pieces
    for text in case.texts:
        assert any(text in seen for seen in detail["texts"]), (text, detail["texts"])
    if case.max_text_chars is not None:
        assert max(len(seen) for seen in detail["texts"]) <= case.max_text_chars


def test_the_matrix_covers_every_format_and_kind():
    formats = {c.format for c in CASES}
    assert formats == {"pairwise", "rated", "ranked", "stepwise", "conversational"}
    assert len(CASES) >= 100
    assert all(c.expect[0] in ("ok", "error") for c in CASES)


# ----- fuzz: random rows either pass or raise the project's own error -----------------------------------------------
scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12)
)
value = st.one_of(
    scalar,
    st.lists(scalar, max_size=4),
    st.lists(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "assistant", "x"]), "content": st.one_of(st.text(max_size=8), st.none())}
        ),
        max_size=3,
    ),
)
FIELDS = {
    "pairwise": ["prompt", "chosen", "rejected", "margin"],
    "rated": ["prompt", "response", "score"],
    "ranked": ["prompt", "completions", "ranks"],
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(sorted(FIELDS)),
    row=st.dictionaries(st.sampled_from(sorted({f for fields in FIELDS.values() for f in fields})), value, max_size=5),
)
def test_fuzz_validator_raises_only_its_own_error(tokenizers, kind, row):
    try:
        dataset = Dataset.from_list([row])
    except Exception:  # Arrow cannot even hold the row: nothing reaches rm-trl
        return
    tokenizer = tokenizers["chat"]
    try:
        prepare_dataset(
            dataset,
            SCHEMAS[kind],
            tokenizer,
            split="fuzz",
            max_length=64,
            truncation="truncate_prompt",
            invalid_rows="error",
            append_eos=None,
        )
    except (DataValidationError, DataLoadError):
        pass


# ----- train / eval overlap -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["warn", "drop", "error"])
def test_train_eval_overlap(tiny_llama, tmp_path, policy):
    model, tokenizer = tiny_llama
    train = learnable_pairs(20)
    evaluation = train[:3] + learnable_pairs(5, seed=9)
    args = PairwiseRewardConfig(output_dir=str(tmp_path), max_steps=1, report_to="none", eval_overlap=policy)

    def build():
        return PairwiseRewardTrainer(
            model=model,
            args=args,
            processing_class=tokenizer,
            train_dataset=Dataset.from_list(train),
            eval_dataset=Dataset.from_list(evaluation),
        )

    if policy == "error":
        with pytest.raises(DataValidationError, match="3 evaluation rows also appear in the training data"):
            build()
        return
    report = build().data_reports["eval"]
    assert report.settings["overlap_with_train"]["rows"] == 3
    if policy == "drop":
        assert report.dropped["overlap_with_train"] == 3 and report.rows_out == 5
    else:
        assert report.flagged["overlap_with_train"] == 3 and report.rows_out == 8


# ----- non-finite losses --------------------------------------------------------------------------------------------
def poison(model, rows_to_poison, trainer_ref):
    """Make the model output NaN for batches containing a poisoned row."""

    def hook(module, args, output):
        batch_rows = trainer_ref["rows"]
        if any(r in rows_to_poison for r in batch_rows):
            return output * float("nan")
        return output

    model.model.norm.register_forward_hook(hook)  # upstream of the head, so every reader of it sees NaN


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_nonfinite_loss_is_caught(tiny_llama, tmp_path, policy):
    model, tokenizer = tiny_llama
    args = PairwiseRewardConfig(
        output_dir=str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=4,
        train_sampling_strategy="sequential",
        report_to="none",
        save_strategy="no",
        nonfinite_loss=policy,
        logging_steps=1,
        disable_tqdm=True,
    )
    trainer = PairwiseRewardTrainer(
        model=model, args=args, processing_class=tokenizer, train_dataset=Dataset.from_list(learnable_pairs(16))
    )
    state = {"rows": []}
    original = trainer.compute_rewards

    def remember_rows(model, inputs):
        state["rows"] = inputs["row"].tolist()
        return original(model, inputs)

    trainer.compute_rewards = remember_rows
    poison(model, {5}, state)  # row 5 is in the second batch (rows 4-7)
    if policy == "error":
        with pytest.raises(FloatingPointError, match=r"step 2 .*rows \[4, 5, 6, 7\]"):
            trainer.train()
        return
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    assert trainer.skipped_nonfinite_batches == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())  # the other batches trained
    assert trainer.state.log_history[-2]["skipped_nonfinite_batches"] == 1


# ----- security -----------------------------------------------------------------------------------------------------
def test_pickle_weights_are_refused(tiny_llama, tmp_path):
    model, tokenizer = tiny_llama
    model.config.pad_token_id = 0
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # a pickle checkpoint only
    tokenizer.save_pretrained(tmp_path)
    assert not (tmp_path / "model.safetensors").exists()
    with pytest.raises(OSError):
        load_reward_model(str(tmp_path))


def test_remote_code_is_off_by_default():
    assert PairwiseRewardConfig(output_dir="x").trust_remote_code is False
    import inspect

    from rm_trl.scoring import RewardScorer  # noqa: F401
    from rm_trl.serve import ServerSettings

    assert inspect.signature(load_reward_model).parameters["trust_remote_code"].default is False
    assert ServerSettings(model="m").trust_remote_code is False
    assert ServerSettings(model="m").host == "127.0.0.1"


def test_same_seed_same_data_same_weights_on_decoder(llama_tokenizer, tmp_path):
    from .conftest import make_tiny_llama

    weights = []
    models = [make_tiny_llama(llama_tokenizer, seed=3) for _ in range(2)]  # before a trainer sets the pad token
    for run, model in enumerate(models):
        args = PairwiseRewardConfig(
            output_dir=str(tmp_path / str(run)),
            max_steps=3,
            learning_rate=1e-3,
            per_device_train_batch_size=4,
            report_to="none",
            save_strategy="no",
            seed=11,
            disable_tqdm=True,
        )
        trainer = PairwiseRewardTrainer(
            model=model,
            args=args,
            processing_class=llama_tokenizer,
            train_dataset=Dataset.from_list(learnable_pairs(16)),
        )
        trainer.train()
        weights.append(trainer.model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not math.isnan(sum(float(v.sum()) for v in weights[0].values()))


def test_loading_weights_uses_safetensors(minilm_path):
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=1, use_safetensors=True)
    assert model is not None


# ----- kill and resume ----------------------------------------------------------------------------------------------
def test_sigkill_then_resume_matches_an_uninterrupted_run(llama_tokenizer, tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys

    from safetensors.torch import load_file

    from .conftest import REPO_ROOT, make_tiny_llama

    model_dir = tmp_path / "base"
    make_tiny_llama(llama_tokenizer).save_pretrained(model_dir)
    llama_tokenizer.save_pretrained(model_dir)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=REPO_ROOT)

    def worker(name, *extra):
        cmd = [
            sys.executable,
            "-m",
            "tests.resume_worker",
            "--model",
            str(model_dir),
            "--output_dir",
            str(tmp_path / name),
            "--rows_log",
            str(tmp_path / f"{name}.rows"),
            *extra,
        ]
        return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)

    killed = worker("interrupted", "--kill_at", "4")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (tmp_path / "interrupted" / "checkpoint-4").is_dir()
    resumed = worker("interrupted", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = worker("straight")
    assert straight.returncode == 0, straight.stderr[-2000:]

    def steps(name):
        return [json.loads(line) for line in open(tmp_path / f"{name}.rows")]

    interrupted, uninterrupted = steps("interrupted"), steps("straight")
    assert [s["step"] for s in interrupted] == list(range(1, 9))  # steps 1-4, killed, then 5-8 after resuming
    assert interrupted == uninterrupted  # the same rows at the same steps
    seen = sorted(r for s in interrupted for r in s["rows"])
    assert seen == list(range(32))  # within the epoch: every row once, none twice, none skipped
    a = load_file(tmp_path / "interrupted" / "final" / "model.safetensors")
    b = load_file(tmp_path / "straight" / "final" / "model.safetensors")
    for key in b:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5, msg=key)


def test_a_busy_machine_is_said_when_threads_are_chosen(monkeypatch, caplog):
    """On cores that other work keeps busy, several torch threads wait for each other (a 2-thread padding-free run
    was 4x slower than 1 thread beside another training): the log says so when rm-trl picks the thread count."""
    import os

    import torch

    from rm_trl.trainers import guards

    busy = guards.busy_cores()
    assert busy is None or 0 <= busy <= (os.cpu_count() or 1) + 1e-6
    before = torch.get_num_threads()
    monkeypatch.setattr(guards, "busy_cores", lambda: 64.0)
    try:
        with caplog.at_level("WARNING"):
            guards.set_cpu_threads(None)
        cores = len(os.sched_getaffinity(0))
        assert ("busy with other work" in caplog.text) == (cores > 1)
        caplog.clear()
        with caplog.at_level("WARNING"):
            guards.set_cpu_threads(1)  # chosen by the user: nothing to say
        assert "busy with other work" not in caplog.text
    finally:
        torch.set_num_threads(before)
