"""Stepwise training end to end: the separator set-up, a tiny decoder learning a trivially learnable step signal,
packed (prompt once, several solutions) step rewards against separate forwards, MiniLM reading prefixes, the
evaluation's step and first-error metrics, and the LoRA merged export carrying the added separator."""

from __future__ import annotations

import json
import os
import random

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rm_trl import StepwiseRewardConfig, StepwiseRewardTrainer, ensure_step_separator
from rm_trl.data import prepare_dataset
from rm_trl.data.collators import RewardDataCollator
from rm_trl.data.formats import STEPWISE_SCHEMA
from rm_trl.data.pipeline import PROMPT_IDS, RESPONSE_IDS, REWARD_POSITIONS
from rm_trl.data.steps import group_solutions_by_prompt
from rm_trl.encoder_packing import SegmentPackedCollator
from rm_trl.modeling import setup_pad_token
from rm_trl.packing import PackedRewardDataCollator
from rm_trl.reward_reading import TokenRewardCapture

SEPARATOR = "<|step|>"
GOOD = ["add", "carry", "sum", "check", "keep", "count"]
BAD = ["oops", "drop", "flip", "lose", "skip", "mess"]


def learnable_steps(n: int, seed: int = 0, problems: int | None = None) -> list[dict]:
    """Solutions whose steps are built from 'good' words (label true) or 'bad' words (false); every step's label
    is readable from its own words. `problems` < n makes several solutions share a prompt."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        labels = [rng.random() < 0.6 for _ in range(rng.randint(1, 4))]
        steps = [" ".join(rng.choice(GOOD if ok else BAD) for _ in range(rng.randint(1, 3))) for ok in labels]
        prompt = f"Problem {i % problems if problems else i}: work it out."
        rows.append({"prompt": prompt, "completions": steps, "labels": labels})
    return rows


def config(tmp_path, **overrides) -> StepwiseRewardConfig:
    settings = dict(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        max_length=96,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=1,
        seed=0,
    )
    settings.update(overrides)
    return StepwiseRewardConfig(**settings)


# ----- the separator ------------------------------------------------------------------------------------------------
def test_ensure_step_separator_adds_one_token_with_the_mean_embedding(tiny_llama):
    model, tokenizer = tiny_llama
    rows_before = model.get_input_embeddings().weight.shape[0]
    mean = model.get_input_embeddings().weight[:rows_before].mean(dim=0).detach().clone()
    assert len(tokenizer(SEPARATOR, add_special_tokens=False)["input_ids"]) > 1
    token_id = ensure_step_separator(model, tokenizer, SEPARATOR)
    assert tokenizer(f"two{SEPARATOR}three", add_special_tokens=False)["input_ids"].count(token_id) == 1
    assert tokenizer(SEPARATOR, add_special_tokens=False)["input_ids"] == [token_id]
    weight = model.get_input_embeddings().weight
    assert weight.shape[0] == max(rows_before, token_id + 1)
    torch.testing.assert_close(weight[token_id], mean)
    assert ensure_step_separator(model, tokenizer, SEPARATOR) == token_id  # idempotent
    assert model.get_input_embeddings().weight.shape[0] == weight.shape[0]
    existing = tokenizer.eos_token  # already one token: kept as it is, nothing added
    assert ensure_step_separator(model, tokenizer, existing) == tokenizer.eos_token_id


def test_a_tokenizer_shared_by_two_trainers_grows_each_model(llama_tokenizer, tmp_path):
    """The first trainer adds the separator to the shared tokenizer; the second, fresh model must get its row too
    (it failed with an IndexError in the embeddings: found by a reviewing helper)."""
    from .conftest import make_tiny_llama

    models = [make_tiny_llama(llama_tokenizer, seed=seed) for seed in (0, 1)]  # both sized before any separator
    for seed, model in enumerate(models):
        trainer = StepwiseRewardTrainer(
            model=model,
            args=config(tmp_path / str(seed), max_steps=1),
            processing_class=llama_tokenizer,
            train_dataset=Dataset.from_list(learnable_steps(8)),
        )
        assert trainer.model.get_input_embeddings().weight.shape[0] > trainer.step_separator_id
        trainer.train()


def test_config_refuses_normalized_rewards_and_lists_the_losses(tmp_path):
    with pytest.raises(ValueError, match="normalize_rewards"):
        config(tmp_path, normalize_rewards=True)
    with pytest.raises(ValueError):
        config(tmp_path, loss_type="nope")
    args = config(tmp_path)
    assert (args.loss_type, args.step_separator, args.append_eos, args.step_aggregation) == (
        "step_bce",
        SEPARATOR,
        False,
        "min",
    )


# ----- packing: prompt once, several solutions, rewards as separate forwards ----------------------------------------
def test_packed_step_rewards_equal_separate_forwards(tiny_llama):
    model, tokenizer = tiny_llama
    setup_pad_token(model, tokenizer)
    separator_id = ensure_step_separator(model, tokenizer, SEPARATOR)
    model.eval()
    data = Dataset.from_list(learnable_steps(9, seed=3, problems=3))  # 3 prompts, 3 solutions each
    prepared = prepare_dataset(
        data,
        STEPWISE_SCHEMA,
        tokenizer,
        split="train",
        max_length=96,
        truncation="drop",
        invalid_rows="error",
        append_eos=False,
        parse_options={"step_separator": SEPARATOR},
    ).dataset
    grouped = group_solutions_by_prompt(prepared)
    assert len(grouped) == 3 and all(len(r) == 3 for r in grouped[RESPONSE_IDS])
    rows = grouped.to_list()
    for row in rows:  # every step's reward position is its separator
        for response, positions in zip(row[RESPONSE_IDS], row[REWARD_POSITIONS]):
            assert [response[p] for p in positions] == [separator_id] * len(positions)
            assert positions[-1] == len(response) - 1  # no EOS after the last separator

    # Reference: each solution alone, and each step from the prompt + the solution up to that step only.
    captured = {}
    handle = model.score.register_forward_hook(lambda m, a, out: captured.update(out=out))
    reference, prefix_reference = [], []
    with torch.no_grad():
        for row in rows:
            for response, positions in zip(row[RESPONSE_IDS], row[REWARD_POSITIONS]):
                model(input_ids=torch.tensor([row[PROMPT_IDS] + response]))
                reference += [captured["out"][0, len(row[PROMPT_IDS]) + p, 0] for p in positions]
                for p in positions:  # the step sees the prompt and the steps before it, nothing after
                    model(input_ids=torch.tensor([row[PROMPT_IDS] + response[: p + 1]]))
                    prefix_reference.append(captured["out"][0, -1, 0])
    handle.remove()
    reference, prefix_reference = torch.stack(reference), torch.stack(prefix_reference)
    torch.testing.assert_close(reference, prefix_reference, atol=1e-5, rtol=0)

    for collator in (
        PackedRewardDataCollator(pad_token_id=tokenizer.pad_token_id, target_names=("labels",)),
        PackedRewardDataCollator(pad_token_id=tokenizer.pad_token_id, target_names=("labels",), max_row_tokens=128),
        RewardDataCollator(pad_token_id=tokenizer.pad_token_id, target_names=("labels",)),
    ):
        batch = collator(rows)
        with torch.no_grad():
            packed = TokenRewardCapture(model)(model, batch)[:, 0]
        torch.testing.assert_close(packed, reference, atol=1e-5, rtol=0, msg=type(collator).__name__)
        assert batch["labels"].shape == packed.shape
        assert batch["position_counts"].tolist() == [len(p) for row in rows for p in row[REWARD_POSITIONS]]
    expected_labels = [float(y) for row in rows for y in row["labels"]]
    assert batch["labels"].tolist() == expected_labels


# ----- training -----------------------------------------------------------------------------------------------------
def test_tiny_decoder_learns_the_step_signal(tiny_llama, tmp_path):
    model, tokenizer = tiny_llama
    args = config(
        tmp_path,
        max_steps=-1,
        num_train_epochs=3,
        learning_rate=3e-3,
        per_device_train_batch_size=4,
        logging_steps=5,
    )
    trainer = StepwiseRewardTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(learnable_steps(96, seed=1, problems=32)),
        eval_dataset=Dataset.from_list(learnable_steps(32, seed=2)),
    )
    assert isinstance(trainer.data_collator, PackedRewardDataCollator) and not trainer.steps_as_prefixes
    assert len(trainer.train_dataset) == 32  # solutions sharing a prompt were merged into one row
    assert trainer.data_reports["eval"].rows_out == 32  # evaluation keeps one solution per row
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert after["eval_step_f1"] >= 0.9, after
    assert after["eval_loss"] < before["eval_loss"] - 0.2
    assert {"eval_first_error_f1", "eval_first_error_accuracy_erroneous", "eval_step_auroc"} <= set(after)
    assert after["eval_first_error_accuracy_correct"] >= 0.8
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logged[-1]["loss"] < logged[0]["loss"] and "step_f1" in logged[-1]
    assert trainer.headline_metric() == "step_f1"


@pytest.mark.parametrize("loss_type,packing", [("last_step", True), ("pqm", True), ("step_bce", False)])
def test_other_losses_and_padded_batches_train(tiny_qwen2, tmp_path, loss_type, packing):
    model, tokenizer = tiny_qwen2  # a tokenizer that pads with EOS
    args = config(tmp_path, loss_type=loss_type, pqm_margin=2.0, packing=packing, eval_strategy="steps", eval_steps=1)
    trainer = StepwiseRewardTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(learnable_steps(8, problems=4)),
        eval_dataset=Dataset.from_list(learnable_steps(5, seed=9)),
    )
    assert len(trainer.train_dataset) == (4 if packing else 8)  # solutions merge by prompt only when packed
    trainer.train()
    assert sum("eval_step_f1" in e for e in trainer.state.log_history) == 2  # evaluation during training
    assert all(torch.isfinite(torch.tensor(e["loss"])) for e in trainer.state.log_history if "loss" in e)
    described = trainer.loss_description()
    assert described["type"] == loss_type and "center_rewards_coefficient" not in described
    assert ("pqm_margin" in described) == (loss_type == "pqm")


def test_minilm_reads_steps_as_prefixes(minilm_path, tmp_path):
    args = config(tmp_path, max_length=64, learning_rate=1e-4)
    data = learnable_steps(8, seed=4)
    trainer = StepwiseRewardTrainer(
        model=minilm_path,
        args=args,
        train_dataset=Dataset.from_list(data),
        eval_dataset=Dataset.from_list(learnable_steps(6, seed=5)),
    )
    assert trainer.steps_as_prefixes and isinstance(trainer.data_collator, SegmentPackedCollator)  # padding-free
    assert len(trainer.train_dataset) == 8  # encoders: no merging; a row is one solution, a response one prefix
    assert [len(r) for r in trainer.train_dataset[RESPONSE_IDS]] == [len(r["completions"]) for r in data]
    trainer.train()
    metrics = trainer.evaluate()
    assert metrics["eval_steps"] == sum(len(r["completions"]) for r in learnable_steps(6, seed=5))
    assert {"eval_step_f1", "eval_first_error_f1", "eval_step_accuracy"} <= set(metrics)


def test_lora_merged_export_carries_the_added_separator(tiny_llama, tmp_path):
    from peft import LoraConfig

    model, tokenizer = tiny_llama
    args = config(tmp_path, max_steps=1)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="SEQ_CLS")
    trainer = StepwiseRewardTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(learnable_steps(8)),
        peft_config=lora,
    )
    separator_id = trainer.step_separator_id
    embeddings = trainer.model.get_input_embeddings().weight
    row = embeddings[separator_id].detach().clone()
    assert not embeddings.requires_grad  # under LoRA the new row is not trained, but it exists in the base weights
    trainer.train()
    out = trainer.save_reward_model()
    exported_tokenizer = AutoTokenizer.from_pretrained(out)
    assert exported_tokenizer(SEPARATOR, add_special_tokens=False)["input_ids"] == [separator_id]
    exported = AutoModelForSequenceClassification.from_pretrained(out)
    torch.testing.assert_close(exported.get_input_embeddings().weight[separator_id], row)
    assert json.load(open(os.path.join(out, "config.json")))["rm_trl"]["family"] == "stepwise"


def test_recipe_trains_a_stepwise_model(minilm_path, tmp_path, capsys):
    from rm_trl.recipe import main

    train, evaluation = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    for path, seed in ((train, 6), (evaluation, 7)):  # extra columns (as the demo data has) ride along
        rows = [{**row, "problem_id": f"p{i}"} for i, row in enumerate(learnable_steps(8, seed=seed))]
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "export"
    flags = ["--model_name_or_path", minilm_path, "--train_data", str(train), "--eval_data", str(evaluation)]
    flags += ["--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "4"]
    flags += ["--max_length", "64", "--report_to", "none", "--save_strategy", "no", "--loss_type", "pqm"]
    assert main("stepwise", flags) == 0
    printed = capsys.readouterr().out
    assert "eval   step_f1" in printed and "first_error_f1" in printed
    recorded = json.load(open(out / "config.json"))["rm_trl"]
    assert recorded["family"] == "stepwise" and recorded["loss"]["type"] == "pqm"
    assert AutoTokenizer.from_pretrained(out)(SEPARATOR, add_special_tokens=False)["input_ids"] == [
        AutoTokenizer.from_pretrained(out).convert_tokens_to_ids(SEPARATOR)
    ]
