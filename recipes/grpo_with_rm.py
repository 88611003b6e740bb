"""GRPO with a reward model trained by rm-trl (TRL's GRPOTrainer), offline on CPU with tiny defaults.

    python recipes/grpo_with_rm.py --reward_model outputs/pairwise-demo --policy <causal LM path or Hub id>
    python recipes/grpo_with_rm.py --reward_model outputs/pairwise-demo --policy ... --trl_path   # TRL's own loader

By default the reward model is wrapped in `rm_trl.rl.RewardFunction`, which scores each (prompt, completion) with
the tokenization the model was trained with. `--trl_path` passes the folder to TRL instead, which is exact only for
models whose config says `rm_trl.consumers.trl_path: exact`; otherwise it warns why and what to use.
"""

import argparse
import logging

from datasets import load_dataset
from trl import GRPOConfig, GRPOTrainer

from rm_trl.rl import RewardFunction, check_trl_reward_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reward_model", required=True)
    parser.add_argument("--policy", required=True, help="a causal LM folder or Hub id")
    parser.add_argument("--prompts", default="data/demo/pairwise_train.jsonl", help="rows with a 'prompt' column")
    parser.add_argument("--max_prompts", type=int, default=64)
    parser.add_argument("--output_dir", default="outputs/grpo")
    parser.add_argument("--max_steps", type=int, default=10)
    parser.add_argument("--trl_path", action="store_true", help="let TRL load the reward model from its folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.trl_path:
        check_trl_reward_path(args.reward_model)  # warns, quoting the export's `trl_path` flag, when TRL reads wrong
    reward = args.reward_model if args.trl_path else RewardFunction(args.reward_model)
    prompts = load_dataset("json", data_files=args.prompts, split="train").select_columns(["prompt"])
    prompts = prompts.select(range(min(args.max_prompts, len(prompts))))
    config = GRPOConfig(
        output_dir=args.output_dir,
        max_steps=args.max_steps,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=32,
        learning_rate=1e-5,
        bf16=False,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
    )
    trainer = GRPOTrainer(model=args.policy, reward_funcs=reward, args=config, train_dataset=prompts)
    trainer.train()
    rewards = [entry["reward"] for entry in trainer.state.log_history if "reward" in entry]
    print(f"mean reward per step: {[round(r, 4) for r in rewards]}")


if __name__ == "__main__":
    main()
