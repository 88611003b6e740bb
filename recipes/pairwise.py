"""Train a pairwise (chosen vs rejected) reward model, evaluate it, and save a portable export.

    accelerate launch recipes/pairwise.py                    # offline demo: MiniLM on data/demo, a few minutes on CPU
    accelerate launch recipes/pairwise.py --config recipes/configs/pairwise_hh_rlhf.yaml
    accelerate launch --config_file accelerate_configs/multi_gpu.yaml recipes/pairwise.py \
        --config recipes/configs/pairwise_hh_rlhf.yaml --learning_rate 1e-5 --use_peft

Every field of `DataArguments`, `PairwiseRewardConfig` (and `transformers.TrainingArguments`) and TRL's
`ModelConfig` can be set in the YAML config or overridden on the command line. Without `--config`, the demo
config `recipes/configs/pairwise_demo.yaml` is used.
"""

import os
import sys

from trl import ModelConfig, TrlParser, get_peft_config, get_quantization_config

from rm_trl import DataArguments, PairwiseRewardConfig, PairwiseRewardTrainer, load_reward_model
from rm_trl.data import load_train_eval

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "pairwise_demo.yaml")


def main(data_args: DataArguments, training_args: PairwiseRewardConfig, model_args: ModelConfig) -> dict:
    # 1. The model, as a sequence classifier with one output, and its tokenizer with a safe pad token.
    model, tokenizer = load_reward_model(
        model_args.model_name_or_path,
        dtype=model_args.dtype,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
        attn_implementation=model_args.attn_implementation,
        quantization_config=get_quantization_config(model_args),
        pad_token=training_args.pad_token,
    )

    # 2. The data: any local file, saved dataset or Hub dataset; validated and tokenized by the trainer.
    train_dataset, eval_dataset = load_train_eval(data_args)

    # 3. Train (LoRA when --use_peft), then evaluate on the held-out pairs.
    trainer = PairwiseRewardTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    trainer.train()
    metrics = trainer.evaluate() if eval_dataset is not None else {}

    # 4. Save the portable export (plain AutoModelForSequenceClassification + tokenizer + card + data report).
    output_dir = trainer.save_reward_model(metrics=metrics)
    if training_args.push_to_hub:
        trainer.push_to_hub()

    if trainer.is_world_process_zero():
        for report in trainer.data_reports.values():
            print(f"data   {report.summary()}")
        if metrics:
            pairs = trainer.data_reports["eval"].rows_out
            print(f"eval   accuracy {metrics['eval_accuracy']:.4f} on {pairs} pairs, loss {metrics['eval_loss']:.4f}")
        print(f"saved  {os.path.abspath(output_dir)}")
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    return metrics


if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--config" not in argv:
        argv = ["--config", DEFAULT_CONFIG, *argv]
    parser = TrlParser((DataArguments, PairwiseRewardConfig, ModelConfig))
    main(*parser.parse_args_and_config(argv))
