"""The body every recipe shares: model -> data -> train -> evaluate -> export. A recipe script picks the
loss family (trainer + config class) and calls `run`; reading this file top to bottom tells what any recipe does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys

import yaml
from transformers import TrainerCallback, set_seed
from trl import TrlParser, get_peft_config, get_quantization_config

from .config import RewardConfig
from .data.arguments import DataArguments
from .data.converters import convert_train_eval
from .data.loading import load_train_eval
from .diagnostics import diagnostic_callbacks
from .errors import ConfigError, pop_debug_flag, run_entry_point, user_error_types
from .model_args import RewardModelConfig, build_from_scratch
from .modeling import load_reward_model
from .trainers import FAMILIES
from .trainers.base import RewardTrainer

logger = logging.getLogger(__name__)

# TRL's reward.py names -> rm-trl's, so a TRL command line or YAML runs unchanged (the renaming is logged).
TRL_ARGUMENT_NAMES = {
    "dataset_name": "train_data",
    "dataset_train_split": "train_split",
    "dataset_test_split": "eval_split",
}
# TRL names rm-trl has no equivalent for, with what to use instead.
TRL_ARGUMENTS_WITHOUT_EQUIVALENT = {
    "dataset_streaming": "streaming datasets are not supported yet; give a local file, a saved dataset or a Hub name",
    "eos_token": "rm-trl keeps the tokenizer's EOS token; `append_eos` decides whether responses end with it",
    "chat_template_path": "conversational rows use the tokenizer's own chat template",
    "model_init_kwargs": "use `dtype`, `attn_implementation`, `trust_remote_code` and the quantisation flags",
}


# Flags that name a model or data: given without `--config`, a run starts from the family's plain defaults.
SOURCE_FLAGS = frozenset(
    f"--{name}"
    for name in ("model_name_or_path", "model_type", "train_data", "eval_data", "dataset_name", "dataset_config")
)


def parse(
    config_class: type[RewardConfig],
    default_config: str | None = None,
    argv: list[str] | None = None,
    family: str | None = None,
) -> tuple[DataArguments, RewardConfig, RewardModelConfig]:
    """Parse `--config <yaml>` plus command-line overrides into (DataArguments, config, RewardModelConfig).

    Without `--config` and without a flag naming a model or data (`SOURCE_FLAGS`), `default_config` (a recipe's
    offline demo) is used, with any other flags on top. A model or data flag without `--config` starts from the
    family's plain defaults: a user's run never inherits the demo's data, model or output folder.
    TRL's reward-script names (`dataset_name`, `dataset_train_split`, `dataset_test_split`) are accepted.
    """
    argv = _split_equals(list(sys.argv[1:] if argv is None else argv))
    family = family or config_class.__name__.removesuffix("RewardConfig").lower()
    parser = _Parser((DataArguments, config_class, RewardModelConfig), prog=f"rm-trl train {family}")
    demo = default_config is not None and "--config" not in argv and not SOURCE_FLAGS.intersection(argv)
    if demo:  # only settings that name no model and no data: the demo, with those settings on top
        argv = ["--config", default_config, *argv]
    config: dict = {}
    if "--config" in argv:
        at = argv.index("--config")
        if at + 1 >= len(argv):
            raise ConfigError("--config needs a YAML file")
        path = argv[at + 1]
        argv = argv[:at] + argv[at + 2 :]
        config = _read_yaml(path)
        for key, value in (config.pop("env", None) or {}).items():
            os.environ[key] = str(value)
        config = _translate_trl_names(config, source=path)
        if demo:  # the demo's data paths are relative to the repository, wherever it is run from
            root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(path))))
            for key in ("train_data", "eval_data"):
                if config.get(key) and not os.path.exists(config[key]):
                    config[key] = os.path.join(root, config[key])
    argv = _translate_trl_flags(argv)
    if "output_dir" not in config and "--output_dir" not in argv:
        config["output_dir"] = os.path.join("outputs", family)
    unknown = parser.set_defaults_with_config(**config)
    if unknown:
        keys = sorted(k.removeprefix("--") for k in unknown[::2])
        raise ConfigError(f"unknown keys in the config file: {keys}; `--help` lists the settings")
    try:
        *parsed, rest = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    except ValueError as exc:  # a setting's own check (__post_init__) refused its value
        raise ConfigError(str(exc)) from exc
    if rest:
        raise ConfigError(f"unknown arguments {rest}; see `--help` for the settings")
    data_args, training_args, model_args = parsed
    if not model_args.model_name_or_path and not model_args.model_type:
        raise ConfigError(
            "no model: give --model_name_or_path (a local folder or a Hub id), --model_type with --tokenizer_name "
            "(from scratch) or a --config file"
        )
    return data_args, training_args, model_args


class _Parser(TrlParser):
    """TrlParser whose usage errors are one line (not the usage of ~150 settings) and exit status 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}\n(`{self.prog} --help` lists every setting)", file=sys.stderr)
        sys.exit(2)


def _split_equals(argv: list[str]) -> list[str]:
    """`--flag=value` -> `--flag value` and `--dashed-name` -> `--dashed_name`, so every spelling argparse accepts
    is seen by the `--config` and TRL-name handling."""
    out = []
    for arg in argv:
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            out.append("--" + name.replace("-", "_"))
            if eq:
                out.append(value)
        else:
            out.append(arg)
    return out


def _read_yaml(path: str) -> dict:
    if os.path.isdir(path):
        raise ConfigError(f"--config {path} is a folder; give a YAML file")
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path} must hold a YAML mapping of setting: value")
    return config


def _no_equivalent(name: str, where: str) -> ConfigError:
    return ConfigError(f"{where}: TRL's `{name}` has no rm-trl equivalent: {TRL_ARGUMENTS_WITHOUT_EQUIVALENT[name]}")


def _translate_trl_names(config: dict, source: str) -> dict:
    out = {}
    for key, value in config.items():
        if key in TRL_ARGUMENTS_WITHOUT_EQUIVALENT:
            raise _no_equivalent(key, source)
        new = TRL_ARGUMENT_NAMES.get(key, key)
        if new != key:
            logger.warning("TRL's `%s` is rm-trl's `%s`: using it as such", key, new)
        out[new] = value
    return out


def _translate_trl_flags(argv: list[str]) -> list[str]:
    out = []
    for arg in argv:
        key = arg[2:] if arg.startswith("--") else None
        if key in TRL_ARGUMENTS_WITHOUT_EQUIVALENT:
            raise _no_equivalent(key, "command line")
        if key in TRL_ARGUMENT_NAMES:
            logger.warning("TRL's `--%s` is rm-trl's `--%s`: using it as such", key, TRL_ARGUMENT_NAMES[key])
            arg = f"--{TRL_ARGUMENT_NAMES[key]}"
        out.append(arg)
    return out


def main(family: str, argv: list[str] | None = None, default_config: str | None = None) -> int:
    """Entry point of `rm-trl train <family>` and the recipe scripts: parse, run, and report user errors as one
    message with exit status 1 (a traceback only with `--debug` or `RM_TRL_DEBUG=1`)."""
    argv, debug = pop_debug_flag(list(sys.argv[1:] if argv is None else argv))
    if family not in FAMILIES:
        print(f"rm-trl train: unknown family {family!r}; choose one of {sorted(FAMILIES)}", file=sys.stderr)
        return 2
    trainer_class = FAMILIES[family]

    def train() -> None:
        run(trainer_class, *parse(trainer_class.config_class, default_config, argv, family))

    return run_entry_point(train, debug=debug, program=f"rm-trl train {family}")


def run(
    trainer_class: type[RewardTrainer],
    data_args: DataArguments,
    training_args: RewardConfig,
    model_args: RewardModelConfig,
    callbacks: list[TrainerCallback] | None = None,
) -> dict[str, float]:
    # 1. The model, as a sequence classifier, and its tokenizer with a safe pad token.
    #    Seed first: the reward head is freshly initialised here.
    set_seed(training_args.seed)
    with setup_errors("loading the model"):
        if model_args.model_type:  # from scratch (`rm_trl.model_args`)
            model, tokenizer = build_from_scratch(
                model_args, num_labels=trainer_class.num_labels(training_args), pad_token=training_args.pad_token
            )
        else:
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
    train_dataset, eval_dataset, train_conversion, eval_conversion = convert_train_eval(
        train_dataset, eval_dataset, target_format, data_args, invalid_rows=training_args.invalid_rows
    )

    # 3. Train (LoRA when --use_peft), then evaluate on the held-out data.
    with setup_errors("setting up training"):
        trainer = trainer_class(
            model=model,
            args=training_args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            peft_config=get_peft_config(model_args),
            # diagnostics are off unless the environment asks (`rm_trl.diagnostics`); `callbacks` are the caller's
            callbacks=[*diagnostic_callbacks(), *(callbacks or [])],
        )
    for split, conversion in (("train", train_conversion), ("eval", eval_conversion)):
        if conversion and split in trainer.data_reports:
            trainer.data_reports[split].settings["converted"] = conversion
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    metrics = trainer.evaluate() if eval_dataset is not None else {}

    # 4. Save the portable export (plain AutoModelForSequenceClassification + tokenizer + card + data report).
    #    With `push_to_hub`, that folder, complete, is the upload (one commit; checkpoints stay local).
    output_dir = trainer.save_reward_model(metrics=metrics, datasets=hub_dataset_names(data_args))
    if trainer.push_export_at_end:
        trainer.push_to_hub()

    if trainer.is_world_process_zero():
        print_summary(trainer, metrics, output_dir)
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    return metrics


@contextlib.contextmanager
def setup_errors(step: str):
    """Before training starts, what fails is a setting the user gave (a LoRA target the model lacks, 4-bit without
    LoRA, a logger that is not installed, evaluation asked for without eval data): report it as such."""
    try:
        yield
    except user_error_types():
        raise
    except (ValueError, RuntimeError, ImportError) as exc:
        raise ConfigError(f"{step}: {type(exc).__name__}: {exc}") from exc


def hub_dataset_names(data_args: DataArguments) -> list[str]:
    """The Hub datasets trained / evaluated on, for the model card (local files are not named there)."""
    sources = [data_args.train_data, data_args.eval_data]
    return [s for s in dict.fromkeys(sources) if s and not os.path.exists(s) and s.count("/") == 1]


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
