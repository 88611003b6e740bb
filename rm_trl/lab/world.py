"""The lab's world: synthetic responses with a hidden true reward, and the tiny model folder rm-trl trains.

A response is a sequence of words. Content words `w000 .. w199` each carry a weight drawn from N(0, 1) with the
world's seed; filler words (`um`, `so`, ...) carry none. The true reward is a bag-of-words linear truth:

    r*(response) = (mean of its content words' weights + interaction) / scale

where `interaction` (0 unless `WorldSpec.interaction` is set) adds `interaction` for each of a few fixed word
pairs that both appear, and `scale` makes r* have unit standard deviation over the response distribution (so
annotator noise levels are in units of the truth's spread). Fillers change a response's length, never its r*:
that is how a spurious length feature is made (`sample_responses(length_signal=...)`).

Prompts come from a few templates and topics; the truth ignores them. The tokenizer is word level (one token per
word, `<eos>` appended by rm-trl, a `<pad>` of its own) and the model a randomly initialised tiny Llama saved as
a `*ForSequenceClassification` folder: rm-trl's recipe, collators, losses and scorer load it as any model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

SPECIAL_TOKENS = ("<unk>", "<pad>", "<eos>")
FILLERS = ("um", "so", "well", "like", "basically", "actually")
TEMPLATES = ("describe", "explain", "summarize", "compare", "review")


@dataclass(frozen=True)
class WorldSpec:
    """What a world is made of; a seed draws its word weights (`World(spec, seed)`)."""

    content_words: int = 200
    topics: int = 40
    min_words: int = 4  # content words per response
    max_words: int = 24
    max_fillers: int = 6  # fillers per response: uniform 0..max_fillers unless length is made spurious
    interaction: float = 0.0  # bonus per co-occurring word pair (see the module doc); 0 = purely linear truth
    interaction_pairs: int = 10


@dataclass(frozen=True)
class Responses:
    """Sampled responses: their prompts, texts, true rewards and lengths (content words + fillers)."""

    prompts: list[str]
    texts: list[str]
    reward: np.ndarray
    fillers: np.ndarray
    length: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, index: np.ndarray | list[int]) -> Responses:
        index = list(np.asarray(index, dtype=int))
        return Responses(
            prompts=[self.prompts[i] for i in index],
            texts=[self.texts[i] for i in index],
            reward=self.reward[index],
            fillers=self.fillers[index],
            length=self.length[index],
        )


class World:
    """A seeded world: word weights, the true reward, and samplers of prompts and responses."""

    def __init__(self, spec: WorldSpec = WorldSpec(), seed: int = 0):
        self.spec = spec
        self.seed = seed
        rng = np.random.default_rng([seed, 1])
        self.words = [f"w{i:03d}" for i in range(spec.content_words)]
        self._index = {word: i for i, word in enumerate(self.words)}
        self.weights = rng.standard_normal(spec.content_words)
        self.pairs = rng.choice(spec.content_words, size=(spec.interaction_pairs, 2), replace=True)
        self.topics = [f"topic{i:02d}" for i in range(spec.topics)]
        self.scale = 1.0
        reference = [self._content(rng) for _ in range(20000)]
        self.scale = float(np.std([self._raw_reward(words) for words in reference]))

    @property
    def vocabulary(self) -> list[str]:
        """Every word a prompt or response can hold, special tokens first."""
        return [*SPECIAL_TOKENS, *TEMPLATES, *self.topics, "answer:", *self.words, *FILLERS]

    def _content(self, rng: np.random.Generator) -> np.ndarray:
        n = rng.integers(self.spec.min_words, self.spec.max_words + 1)
        return rng.integers(0, self.spec.content_words, size=n)

    def _raw_reward(self, words: np.ndarray) -> float:
        value = float(self.weights[words].mean())
        if self.spec.interaction:
            present = set(words.tolist())
            value += self.spec.interaction * sum(int(a in present and b in present) for a, b in self.pairs)
        return value

    def true_reward(self, text: str) -> float:
        """r* of a response text (fillers and unknown words ignored)."""
        words = np.array([self._index[w] for w in text.split() if w in self._index], dtype=int)
        return self._raw_reward(words) / self.scale if len(words) else 0.0

    def sample_prompts(self, n: int, rng: np.random.Generator) -> list[str]:
        """`n` distinct prompts `"<template> <topic> <topic> answer:\n"` (the truth does not read them). Distinct, so
        that rm-trl's converters, which group responses by prompt text, see exactly the pool's groups."""
        topics = len(self.topics)
        combinations = len(TEMPLATES) * topics * topics
        if n > combinations:
            raise ValueError(f"at most {combinations} distinct prompts; asked for {n}")
        codes = rng.choice(combinations, size=n, replace=False)
        template, rest = np.divmod(codes, topics * topics)
        first, second = np.divmod(rest, topics)
        return [
            f"{TEMPLATES[t]} {self.topics[a]} {self.topics[b]} answer:\n" for t, a, b in zip(template, first, second)
        ]

    def sample_responses(
        self, n: int, rng: np.random.Generator, *, length_signal: float = 0.0, group_size: int = 1
    ) -> Responses:
        """`n` fresh responses, in groups of `group_size` consecutive responses to one prompt. With `length_signal`
        in (0, 1], filler counts are matched to the true reward: the same marginal distribution of fillers as an
        unbiased sample, but a fraction `length_signal` of the responses get theirs in the order of r* (more
        fillers for better responses: the train-only spurious length). The content words and prompts depend only
        on `rng`, never on `length_signal`."""
        content_rng, filler_rng = rng.spawn(2)  # the same content whatever the length signal
        content = [self._content(content_rng) for _ in range(n)]
        prompts = [p for p in self.sample_prompts(-(-n // group_size), content_rng) for _ in range(group_size)][:n]
        reward = np.array([self._raw_reward(words) for words in content]) / self.scale
        fillers = filler_rng.integers(0, self.spec.max_fillers + 1, size=n)
        if length_signal:
            fillers = _match_to(fillers, reward, length_signal, filler_rng)
        texts = [self._text(words, k, filler_rng) for words, k in zip(content, fillers)]
        lengths = np.array([len(words) + k for words, k in zip(content, fillers)])
        return Responses(prompts=list(prompts), texts=texts, reward=reward, fillers=fillers, length=lengths)

    def _text(self, words: np.ndarray, fillers: int, rng: np.random.Generator) -> str:
        tokens = [self.words[i] for i in words]
        for _ in range(fillers):  # fillers go anywhere, the first word included
            tokens.insert(int(rng.integers(0, len(tokens) + 1)), FILLERS[int(rng.integers(0, len(FILLERS)))])
        return " ".join(tokens)


def _match_to(counts: np.ndarray, reward: np.ndarray, signal: float, rng: np.random.Generator) -> np.ndarray:
    """Reassign `counts` so that, for a fraction `signal` of the items, higher reward gets more (rank matched);
    the remaining items keep a random count from the same pool. The multiset of counts is unchanged."""
    n = len(counts)
    matched = rng.random(n) < signal
    out = np.empty(n, dtype=counts.dtype)
    pool = rng.permutation(counts)
    sorted_pool = np.sort(pool[: matched.sum()])
    index = np.flatnonzero(matched)
    out[index] = sorted_pool[np.argsort(np.argsort(reward[index]))]
    out[~matched] = pool[matched.sum() :]
    return out


@dataclass(frozen=True)
class ModelSpec:
    """The tiny Llama every lab run starts from (random initialisation, seeded)."""

    hidden_size: int = 32
    intermediate_size: int = 64
    layers: int = 1
    heads: int = 2


def build_model_folder(world: World, folder: str, seed: int, spec: ModelSpec = ModelSpec()) -> str:
    """Save a word-level tokenizer and a randomly initialised tiny `LlamaForSequenceClassification` in `folder`."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForSequenceClassification, LlamaConfig, PreTrainedTokenizerFast

    vocabulary = {word: i for i, word in enumerate(world.vocabulary)}
    backend = Tokenizer(models.WordLevel(vocab=vocabulary, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>", model_max_length=64
    )
    config = LlamaConfig(
        vocab_size=len(vocabulary),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=64,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config)
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
