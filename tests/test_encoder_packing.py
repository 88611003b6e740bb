"""Padding-free encoder rows (`rm_trl.encoder_packing`) give the rewards and gradients of separate forwards."""

import copy
import json
import random

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    CamembertConfig,
    ElectraConfig,
    RobertaConfig,
    XLMRobertaConfig,
)

from rm_trl import PairwiseRewardConfig, PairwiseRewardTrainer
from rm_trl.data.collators import RewardDataCollator
from rm_trl.encoder_packing import (
    FIRST_TOKEN_READERS,
    SEGMENT_ATTENTION,
    SegmentPackedCollator,
    position_padding_index,
    read_first_tokens,
    segment_packing_support,
    use_segment_attention,
)
from rm_trl.reward_reading import PooledRewardReader
from rm_trl.scoring import RewardScorer

from .conftest import learnable_pairs

CONFIGS = {
    "bert": BertConfig,
    "electra": ElectraConfig,
    "roberta": RobertaConfig,
    "xlm-roberta": XLMRobertaConfig,
    "camembert": CamembertConfig,
}
SHAPE = dict(
    vocab_size=120,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=80,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def tiny_encoder(model_type, num_labels=1):
    torch.manual_seed(0)
    config = CONFIGS[model_type](**SHAPE, pad_token_id=1, num_labels=num_labels)
    if model_type == "electra":
        config.embedding_size = 32
    return AutoModelForSequenceClassification.from_config(config)


def random_rows(n=5, seed=0):
    """Rows of 2-4 responses; token ids avoid the pad id (RoBERTa derives positions from it in a plain forward)."""
    rng = random.Random(seed)
    tokens = lambda k: [rng.randrange(5, 120) for _ in range(k)]  # noqa: E731
    return [
        {
            "row": i,
            "prompt_ids": [2, *tokens(rng.randint(1, 20))],
            "response_ids": [tokens(rng.randint(1, 12)) + [3] for _ in range(rng.randint(2, 4))],
        }
        for i in range(n)
    ]


def separate_rewards(model, rows):
    return torch.cat(
        [model(input_ids=torch.tensor([r["prompt_ids"] + resp])).logits for r in rows for resp in r["response_ids"]]
    )


def test_every_listed_encoder_has_a_test():
    assert set(CONFIGS) == set(FIRST_TOKEN_READERS)


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
@pytest.mark.parametrize("num_labels", [1, 3])
def test_padding_free_rewards_and_gradients_match_separate_forwards(model_type, num_labels):
    rows = random_rows()
    reference = tiny_encoder(model_type, num_labels)
    packed = tiny_encoder(model_type, num_labels)
    assert segment_packing_support(packed) == (True, "ok")
    use_segment_attention(packed)
    batch = SegmentPackedCollator(padding_index=position_padding_index(packed))(rows)
    expected = separate_rewards(reference, rows)
    got = PooledRewardReader()(packed, batch)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)

    weights = torch.randn(expected.shape, generator=torch.Generator().manual_seed(1))
    (expected * weights).sum().backward()
    (got * weights).sum().backward()
    reference_grads = dict(reference.named_parameters())
    for name, parameter in packed.named_parameters():
        if parameter.grad is not None or reference_grads[name].grad is not None:
            torch.testing.assert_close(parameter.grad, reference_grads[name].grad, atol=1e-5, rtol=1e-4, msg=name)


def test_padded_batches_still_work_on_a_switched_model():
    """The switched attention only changes padding-free rows: padded batches (scoring, a user's collator) are sdpa."""
    rows = random_rows(seed=2)
    model = tiny_encoder("bert")
    expected = separate_rewards(model, rows)
    use_segment_attention(model)
    padded = RewardDataCollator(pad_token_id=0)(rows)
    torch.testing.assert_close(PooledRewardReader()(model, padded), expected, atol=1e-5, rtol=1e-5)


def test_unswitched_model_refuses_a_padding_free_row():
    """Without per-sequence attention the sequences of the row would silently attend to each other."""
    model = tiny_encoder("bert")
    batch = SegmentPackedCollator()(random_rows())
    with pytest.raises(ValueError, match="per-sequence attention"):
        read_first_tokens(model, batch)


def test_collator_layout():
    rows = [{"row": 0, "prompt_ids": [2, 7, 8], "response_ids": [[9, 3], [10, 11, 3]]}]
    batch = SegmentPackedCollator()(rows)
    assert batch["input_ids"].tolist() == [[2, 7, 8, 9, 3, 2, 7, 8, 10, 11, 3]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5]]
    roberta = SegmentPackedCollator(padding_index=1)(rows)  # positions after the padding index, as RoBERTa counts
    assert roberta["position_ids"].tolist() == [[2, 3, 4, 5, 6, 2, 3, 4, 5, 6, 7]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 5, 11]
    assert batch["segment_starts"].tolist() == [0, 5]
    assert batch["reward_index"].tolist() == [4, 10]
    assert batch["token_counts"].tolist() == [11, 11]
    assert batch["group_sizes"].tolist() == [2]


def test_collator_refuses_step_rewards():
    rows = [{"row": 0, "prompt_ids": [2, 7], "response_ids": [[9, 4, 3]], "reward_positions": [[1, 2]]}]
    with pytest.raises(ValueError, match=r"\(step rewards\) need a decoder"):
        SegmentPackedCollator()(rows)


def test_lora_model_matches_separate_forwards():
    from peft import LoraConfig, get_peft_model

    rows = random_rows(seed=3)
    model = get_peft_model(tiny_encoder("roberta"), LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query"]))
    expected = separate_rewards(model, rows)
    use_segment_attention(model)
    batch = SegmentPackedCollator(padding_index=position_padding_index(model))(rows)
    torch.testing.assert_close(PooledRewardReader()(model, batch), expected, atol=1e-5, rtol=1e-5)


def test_minilm_trains_padding_free_and_evaluates_like_padded_batches(minilm_path, tmp_path):
    """The real MiniLM: the trainer picks padding-free rows, logs no padding, evaluates exactly as padded batches,
    and the export carries no trace of the training-time attention."""
    data = Dataset.from_list(learnable_pairs(24))
    args = dict(
        max_steps=2,
        per_device_train_batch_size=8,
        max_length=64,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=1,
        use_cpu=True,
    )
    metrics = {}
    for packing in (True, False):
        config = PairwiseRewardConfig(output_dir=str(tmp_path / str(packing)), packing=packing, **args)
        trainer = PairwiseRewardTrainer(model=minilm_path, args=config, train_dataset=data, eval_dataset=data)
        assert isinstance(trainer.data_collator, SegmentPackedCollator) == packing
        metrics[packing] = trainer.evaluate()
        if packing:
            trainer.train()
            assert [e["padding_fraction"] for e in trainer.state.log_history if "padding_fraction" in e] == [0, 0]
            trainer.save_model(str(tmp_path / "export"))
    assert metrics[True]["eval_loss"] == pytest.approx(metrics[False]["eval_loss"], abs=1e-5)
    assert metrics[True]["eval_accuracy"] == metrics[False]["eval_accuracy"]
    assert SEGMENT_ATTENTION not in json.dumps(json.load(open(tmp_path / "export" / "config.json")))
    reloaded = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "export"))
    assert reloaded.config._attn_implementation == "sdpa"
    assert AutoTokenizer.from_pretrained(str(tmp_path / "export")) is not None


def test_scorer_reads_encoders_padding_free_with_the_rewards_of_padded_batches(minilm_path):
    """`RewardScorer` on an encoder: one padding-free row per batch, the same rewards as padded batches and as a
    plain transformers forward of each text."""
    rows = learnable_pairs(6, seed=7)
    data = Dataset.from_list(rows)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=1)  # a fresh random head
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    reference = copy.deepcopy(model)
    fast = RewardScorer(model, tokenizer)
    assert isinstance(fast.collator, SegmentPackedCollator)
    padded = RewardScorer(reference, tokenizer, prompt_once=False)
    assert isinstance(padded.collator, RewardDataCollator)
    got, expected = fast.score(data).scalar_rewards(), padded.score(data).scalar_rewards()
    np.testing.assert_allclose(np.stack(got), np.stack(expected), atol=1e-5)
    with torch.no_grad():
        plain = [reference(**tokenizer(r["prompt"] + r["chosen"], return_tensors="pt")).logits.item() for r in rows]
    np.testing.assert_allclose([g[0] for g in got], plain, atol=1e-5)


def test_collator_refuses_an_empty_sequence():
    with pytest.raises(ValueError, match="empty sequence"):
        SegmentPackedCollator()(
            [{"row": 0, "prompt_ids": [], "response_ids": [[], [5]], "reward_positions": [[-1], [0]]}]
        )


@pytest.mark.parametrize("model_type", ["roberta", "xlm-roberta", "camembert"])
def test_roberta_positions_skip_pad_tokens_inside_a_sequence_as_a_plain_forward_does(model_type):
    """A literal pad token in the text: RoBERTa gives it the padding position and counts the others without it."""
    rows = random_rows(seed=4)
    rows[1]["prompt_ids"][2] = 1  # the pad id, inside the prompt
    rows[2]["response_ids"][0][0] = 1
    reference, packed = tiny_encoder(model_type), tiny_encoder(model_type)
    use_segment_attention(packed)
    batch = SegmentPackedCollator(padding_index=position_padding_index(packed))(rows)
    torch.testing.assert_close(
        PooledRewardReader()(packed, batch), separate_rewards(reference, rows), atol=1e-5, rtol=0
    )


def test_positions_follow_the_embeddings_padding_index_not_a_later_pad_token():
    """A pad token set after the model was built changes `config.pad_token_id`, not the embeddings' index."""
    model = tiny_encoder("roberta")
    model.config.pad_token_id = 100
    assert position_padding_index(model) == 1


def test_a_chosen_attention_implementation_is_respected():
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(
        BertConfig(**SHAPE, num_labels=1), attn_implementation="eager"
    )
    supported, reason = segment_packing_support(model)
    assert not supported and "'eager' was chosen" in reason


def test_bounds_that_do_not_cover_the_row_are_refused():
    """nn.DataParallel would hand one replica the whole row with half the bounds: an error, not mixed sequences."""
    model = tiny_encoder("bert")
    use_segment_attention(model)
    batch = SegmentPackedCollator()(random_rows())
    batch["cu_seq_lens_q"] = batch["cu_seq_lens_k"] = batch["cu_seq_lens_q"][:3]
    with pytest.raises(ValueError, match="DataParallel"):
        read_first_tokens(model, batch)


def test_several_gpus_in_one_process_fall_back_to_padded_batches(caplog):
    """The Trainer wraps the model in nn.DataParallel when one process sees several GPUs: it would split a packed
    row's bounds from its tokens, so packing is off, and the log says why."""
    from types import SimpleNamespace

    from rm_trl.packing import default_collator

    args = SimpleNamespace(packing=True, n_gpu=2, pad_to_multiple_of=None, pack_rows_tokens=None)
    tokenizer = SimpleNamespace(pad_token_id=0)
    with caplog.at_level("WARNING"):
        collator = default_collator(tiny_encoder("bert"), tokenizer, args, ())
    assert type(collator) is RewardDataCollator and "DataParallel" in caplog.text
