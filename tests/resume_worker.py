"""Subprocess worker for the kill-and-resume test: trains a tiny reward model, logs the rows of every step, and
(with --kill_at N) kills itself with SIGKILL right after saving checkpoint N."""

import argparse
import json
import os
import signal

from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback

from rm_trl import PairwiseRewardConfig, PairwiseRewardTrainer
from tests.conftest import learnable_pairs


class KillAfterSave(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--rows_log", required=True)
    parser.add_argument("--kill_at", type=int)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    model = AutoModelForSequenceClassification.from_pretrained(args.model)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    config = PairwiseRewardConfig(
        output_dir=args.output_dir,
        max_steps=8,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        seed=13,
        save_strategy="steps",
        save_steps=2,
        report_to="none",
        disable_tqdm=True,
        logging_steps=1,
    )
    trainer = PairwiseRewardTrainer(
        model=model,
        args=config,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(learnable_pairs(32)),
        callbacks=[KillAfterSave(args.kill_at)] if args.kill_at else None,
    )
    compute_rewards = trainer.compute_rewards

    def logging_rewards(model, inputs):
        if model.training:
            with open(args.rows_log, "a") as f:
                f.write(json.dumps({"step": trainer.state.global_step + 1, "rows": inputs["row"].tolist()}) + "\n")
        return compute_rewards(model, inputs)

    trainer.compute_rewards = logging_rewards
    trainer.train(resume_from_checkpoint=True if args.resume else None)
    trainer.save_model(os.path.join(args.output_dir, "final"))


if __name__ == "__main__":
    main()
