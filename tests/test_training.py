"""A short run on a tiny decoder over a learnable synthetic preference: accuracy must rise well above chance."""

import torch
from datasets import Dataset

from rm_trl import PairwiseRewardConfig, PairwiseRewardTrainer

from .conftest import learnable_pairs


def test_tiny_llama_learns_the_preference(tiny_llama, tmp_path):
    model, tokenizer = tiny_llama
    args = PairwiseRewardConfig(
        output_dir=str(tmp_path),
        num_train_epochs=2,
        learning_rate=3e-3,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        max_length=48,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=5,
        seed=0,
        disable_tqdm=True,
    )
    trainer = PairwiseRewardTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(learnable_pairs(160, seed=1)),
        eval_dataset=Dataset.from_list(learnable_pairs(64, seed=2)),
    )
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert after["eval_accuracy"] >= 0.9, after
    assert after["eval_loss"] < before["eval_loss"] - 0.2
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logged and {"accuracy", "margin", "reward_mean", "reward_std"} <= set(logged[-1])
    assert logged[-1]["loss"] < logged[0]["loss"]


def test_margin_and_centering_switch_the_loss(tiny_llama, tmp_path):
    model, tokenizer = tiny_llama
    rows = [dict(r, margin=1.0) for r in learnable_pairs(8)]
    args = PairwiseRewardConfig(
        output_dir=str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=8,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        center_rewards_coefficient=0.01,
        disable_tqdm=True,
    )
    trainer = PairwiseRewardTrainer(
        model=model, args=args, processing_class=tokenizer, train_dataset=Dataset.from_list(rows)
    )
    assert trainer.target_names == ("margin",)
    assert trainer.loss_description() == {
        "type": "bradley_terry",
        "margin_scale": 1.0,
        "center_rewards_coefficient": 0.01,
    }
    args_no_margin = PairwiseRewardConfig(
        output_dir=str(tmp_path), max_steps=1, use_cpu=True, report_to="none", use_margin=False
    )
    trainer = PairwiseRewardTrainer(
        model=model, args=args_no_margin, processing_class=tokenizer, train_dataset=Dataset.from_list(rows)
    )
    assert trainer.target_names == ()


def test_same_seed_same_weights(minilm_path, tmp_path):
    """The reward head is initialised when the model loads: seeding must happen before that."""
    rows = Dataset.from_list(learnable_pairs(16))
    weights = []
    for run in range(2):
        args = PairwiseRewardConfig(
            output_dir=str(tmp_path / str(run)),
            max_steps=2,
            per_device_train_batch_size=8,
            max_length=32,
            report_to="none",
            save_strategy="no",
            seed=7,
            disable_tqdm=True,
        )
        trainer = PairwiseRewardTrainer(model=minilm_path, args=args, train_dataset=rows)
        trainer.train()
        weights.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_evaluate_prepares_a_raw_dataset(tiny_llama, tmp_path):
    model, tokenizer = tiny_llama
    args = PairwiseRewardConfig(output_dir=str(tmp_path), max_steps=1, report_to="none", save_strategy="no")
    trainer = PairwiseRewardTrainer(
        model=model, args=args, processing_class=tokenizer, train_dataset=Dataset.from_list(learnable_pairs(8))
    )
    metrics = trainer.evaluate(eval_dataset=Dataset.from_list(learnable_pairs(12, seed=4)))
    assert "eval_accuracy" in metrics and trainer.data_reports["eval"].rows_out == 12
