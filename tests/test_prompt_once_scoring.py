"""Prompt-once scoring (issue #19): responses that share a prompt are scored in one packed sequence by decoders, with
the rewards of the one-by-one path (1e-5), through every scoring entry point."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset
from transformers import AutoTokenizer

from rm_trl.scoring import RewardScorer

from .conftest import learnable_pairs, make_tiny_llama, make_tiny_qwen2


@pytest.fixture(scope="module")
def tokenizer(smol_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    tok.pad_token = None  # rm-trl's loader picks the pad token, as for any model a user brings
    return tok


def scorers(tmp_path, tokenizer, make_model, seed: int, **kwargs) -> tuple[RewardScorer, RewardScorer]:
    """The same saved model read prompt-once and one by one."""
    path = str(tmp_path / f"rm-{make_model.__name__}-{seed}")
    make_model(tokenizer, seed=seed).save_pretrained(path)
    tokenizer.save_pretrained(path)
    grouped = RewardScorer.from_pretrained(path, **kwargs)
    return grouped, RewardScorer.from_pretrained(path, prompt_once=False, **kwargs)


def grpo_batch(groups: int, g: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """GRPO's shape: each prompt repeated G times, completions of different lengths (one a prefix of another)."""
    rng = np.random.default_rng(seed)
    words = ["great", "kind", "awful", "rude", "sure", "thanks", "never", "clear", "maybe", "ok"]
    prompts, completions = [], []
    for p in range(groups):
        prompt = f"Question {p}: tell me about " + " ".join(rng.choice(words, size=int(rng.integers(20, 40))))
        for k in range(g):
            completion = " " + " ".join(rng.choice(words, size=int(rng.integers(1, 15))))
            prompts.append(prompt)
            completions.append(completion if k != 1 else completions[-1] + " more")
    return prompts, completions


@pytest.mark.parametrize("make_model", [make_tiny_llama, make_tiny_qwen2])
def test_grouped_rewards_equal_one_by_one(tokenizer, make_model, tmp_path):
    grouped, single = scorers(tmp_path, tokenizer, make_model, 3, max_length=128)
    assert grouped.packed_collator is not None and single.packed_collator is None
    prompts, completions = grpo_batch(groups=5, g=4)
    prompts += ["A lone prompt"]  # a prompt given once takes the one-by-one path inside the same call
    completions += [" alone"]
    np.testing.assert_allclose(
        grouped.score_texts(prompts, completions), single.score_texts(prompts, completions), atol=1e-5
    )
    done = grouped._grouped_outputs(prompts, completions, np.zeros((len(prompts), 1)))
    assert done == set(range(20))  # every shared prompt went the packed way; the lone one did not


def test_short_prompts_and_big_groups_are_not_packed_whole(tokenizer, tmp_path, monkeypatch):
    """A prompt shorter than its responses is not packed (little saved, a slower attention mask); a group larger
    than one packed row allows is split into rows, each with the prompt. Rewards stay the one-by-one ones."""
    import rm_trl.scoring

    monkeypatch.setattr(rm_trl.scoring, "PACK_MAX_CHARS", 4096)  # rows of ~1k tokens, to keep the test small
    grouped, single = scorers(tmp_path, tokenizer, make_tiny_llama, 7, max_length=2048)
    short = ["Hi:"] * 4, [" a fairly long answer " * 2] * 4  # a prompt under a quarter of the responses
    assert grouped._grouped_outputs(*short, np.zeros((4, 1))) == set()
    prompt = "p " * 200
    many = [prompt] * 40, [" r" * (i % 7 + 100) for i in range(40)]  # ~200 characters: 17 to a packed row
    calls = []
    real = grouped.score_prepared
    grouped.score_prepared = lambda prepared, **kw: calls.append(len(prepared.dataset)) or real(prepared, **kw)
    np.testing.assert_allclose(grouped.score_texts(*many), single.score_texts(*many), atol=1e-5)
    assert calls[0] == -(-40 // int((4096 - len(prompt)) // 206))  # 3 rows, each with the prompt


def test_pairs_and_lists_are_scored_prompt_once_with_the_same_rewards(tokenizer, tmp_path):
    grouped, single = scorers(tmp_path, tokenizer, make_tiny_llama, 4, max_length=128)
    pairs = Dataset.from_list(learnable_pairs(20, seed=2))
    a, b = np.stack(grouped.score(pairs).scalar_rewards()), np.stack(single.score(pairs).scalar_rewards())
    np.testing.assert_allclose(a, b, atol=1e-5)
    lists = Dataset.from_list(
        [
            {"prompt": f"Q{i}:", "completions": [" a b c", " a", " b c d e f g", " " + "x " * i], "ranks": [0, 1, 2, 3]}
            for i in range(1, 8)
        ]
    )
    np.testing.assert_allclose(
        np.stack(grouped.score(lists).scalar_rewards()), np.stack(single.score(lists).scalar_rewards()), atol=1e-5
    )


def test_a_group_that_would_be_truncated_is_scored_one_by_one(tokenizer, tmp_path):
    """Truncating a group cuts its prompt for the longest response; one by one, each response keeps all the
    prompt that fits beside it. Such groups take the one-by-one path, so the rewards do not depend on grouping."""
    grouped, single = scorers(tmp_path, tokenizer, make_tiny_llama, 5, max_length=40)
    prompt = "context " * 30
    prompts = [prompt] * 3 + ["short prompt"] * 2
    completions = [" ok", " words " * 20, " fine", " a", " b"]  # the second forces the prompt to be cut
    np.testing.assert_allclose(
        grouped.score_texts(prompts, completions), single.score_texts(prompts, completions), atol=1e-5
    )
    assert grouped._grouped_outputs(prompts, completions, np.zeros((5, 1))) == {3, 4}


def test_reward_function_and_server_path_group_too(tokenizer, tmp_path, capfd):
    from rm_trl.rl import RewardFunction
    from rm_trl.serve_items import score_pairs

    model = make_tiny_llama(tokenizer, seed=6)
    path = str(tmp_path / "rm")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    prompts, completions = grpo_batch(groups=3, g=8, seed=1)
    reference = RewardScorer.from_pretrained(path, prompt_once=False).score_texts(prompts, completions)
    function = RewardFunction(path)
    assert function.scorer.packed_collator is not None
    capfd.readouterr()
    np.testing.assert_allclose(function(prompts=prompts, completions=completions), reference, atol=1e-5)
    assert "examples/s" not in capfd.readouterr().err  # an RL step prints no `datasets` progress bars
    served = score_pairs(RewardScorer.from_pretrained(path), prompts, completions)
    np.testing.assert_allclose(np.asarray(served, np.float64), reference, atol=1e-5)


def test_a_hand_built_scorer_pads_with_the_id_the_model_pools_by(llama_tokenizer, caplog):
    """A model whose config pads with another id than its tokenizer: the model's pooling would not see the
    tokenizer's pad tokens and read a short row's reward at the batch's last position. Padded batches use the
    model's id (logged), so each reward equals its own unbatched forward."""
    import copy

    model = make_tiny_llama(llama_tokenizer)
    other = next(i for i in range(10) if i not in (llama_tokenizer.pad_token_id, llama_tokenizer.eos_token_id))
    model.config.pad_token_id = other
    data = Dataset.from_dict(
        {"prompt": ["Hi", "Tell me about the weather today"], "response": [" ok", " it is sunny and warm outside"]}
    )
    alone = RewardScorer(copy.deepcopy(model), llama_tokenizer, prompt_once=False)
    expected = [alone.score(data.select([i]), kind="rated").scalar_rewards()[0][0] for i in range(2)]
    with caplog.at_level("WARNING"):
        batched = RewardScorer(model, llama_tokenizer, prompt_once=False)
    assert f"padding with {other}" in caplog.text
    got = [r[0] for r in batched.score(data, kind="rated").scalar_rewards()]
    np.testing.assert_allclose(got, expected, atol=1e-5)
