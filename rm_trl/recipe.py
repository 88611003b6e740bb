"""The body every recipe shares: model -> data -> train -> evaluate -> export. A recipe script picks the
loss family (trainer + config class) and calls `run`; reading this file top to bottom tells what any recipe does.
"""

from __future__ import annotations

import json
import os
import sys

from transformers import set_seed
from trl import ModelConfig, TrlParser, get_peft_config, get_quantization_config

from .config import DataArguments, RewardConfig
from .data.converters import convert_for
from .data.loading import load_train_eval
from .modeling import load_reward_model
from .trainers.base import RewardTrainer


def parse(config_class: type[RewardConfig], default_config: str, argv: list[str] | None = None):
    """Parse `--config <yaml>` plus CLI overrides into (DataArguments, config, ModelConfig); without `--config`
    the recipe's `default_config` is used."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--config" not in argv:
        argv = ["--config", default_config, *argv]
    return TrlParser((DataArguments, config_class, ModelConfig)).parse_args_and_config(argv)


def run(
    trainer_class: type[RewardTrainer],
    data_args: DataArguments,
    training_args: RewardConfig,
    model_args: ModelConfig,
) -> dict[str, float]:
    # 1. The model, as a sequence classifier, and its tokenizer with a safe pad token.
    #    Seed first: the reward head is freshly initialised here.
    set_seed(training_args.seed)
    model, tokenizer = load_reward_model(
        model_args.model_name_or_path,
        num_labels=trainer_class.num_labels(training_args),
        dtype=model_args.dtype,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
        attn_implementation=model_args.attn_implementation,
        quantization_config=get_quantization_config(model_args),
        pad_token=training_args.pad_token,
    )

    # 2. The data: any local file, saved dataset or Hub dataset, converted to the family's format when the
    #    config asks (rated -> pairwise / ranked, ranked -> pairwise); validated and tokenized by the trainer.
    train_dataset, eval_dataset = load_train_eval(data_args)
    target_format = trainer_class.schema.name
    train_dataset, train_conversion = convert_for(train_dataset, target_format, data_args)
    eval_conversion = None
    if eval_dataset is not None:
        eval_dataset, eval_conversion = convert_for(eval_dataset, target_format, data_args)

    # 3. Train (LoRA when --use_peft), then evaluate on the held-out data.
    trainer = trainer_class(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    for split, conversion in (("train", train_conversion), ("eval", eval_conversion)):
        if conversion and split in trainer.data_reports:
            trainer.data_reports[split].settings["converted"] = conversion
    trainer.train()
    if os.environ.get(RANK_DIGEST_ENV):
        write_rank_digest(trainer, os.environ[RANK_DIGEST_ENV])
    metrics = trainer.evaluate() if eval_dataset is not None else {}

    # 4. Save the portable export (plain AutoModelForSequenceClassification + tokenizer + card + data report).
    output_dir = trainer.save_reward_model(metrics=metrics)
    if training_args.push_to_hub:
        trainer.push_to_hub()

    if trainer.is_world_process_zero():
        print_summary(trainer, metrics, output_dir)
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    return metrics


RANK_DIGEST_ENV = "RM_TRL_RANK_DIGEST_DIR"


def write_rank_digest(trainer: RewardTrainer, directory: str) -> None:
    """Diagnostics for multi-process runs: each rank writes a checksum of every parameter it holds, so replicas
    can be compared (`RM_TRL_RANK_DIGEST_DIR=<dir>`). Also saves rank 0's final weights as `weights.pt`."""
    import hashlib

    import torch

    os.makedirs(directory, exist_ok=True)
    model = trainer.accelerator.unwrap_model(trainer.model)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    digest = {k: hashlib.sha256(v.float().numpy().tobytes()).hexdigest() for k, v in state.items()}
    rank = trainer.accelerator.process_index
    with open(os.path.join(directory, f"rank{rank}.json"), "w") as f:
        json.dump({"world_size": trainer.accelerator.num_processes, "digest": digest}, f)
    if rank == 0:
        torch.save(state, os.path.join(directory, "weights.pt"))


def print_summary(trainer: RewardTrainer, metrics: dict[str, float], output_dir: str) -> None:
    for report in trainer.data_reports.values():
        print(f"data   {report.summary()}")
    if metrics:
        headline = trainer.headline_metric()
        rows = trainer.data_reports["eval"].rows_out
        print(
            f"eval   {headline} {metrics[f'eval_{headline}']:.4f} on {rows} {trainer.row_unit}, "
            f"loss {metrics['eval_loss']:.4f}"
        )
        others = {k[5:]: round(v, 4) for k, v in metrics.items() if k.startswith("eval_") and isinstance(v, float)}
        print(f"       {json.dumps(others)}")
    print(f"saved  {os.path.abspath(output_dir)}")
