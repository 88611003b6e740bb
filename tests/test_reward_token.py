"""The reward-token rule: the score is read at the last real token, in training and in a plain export forward.

Three backbones: a tiny Llama-style decoder whose tokenizer has no pad token, a tiny Qwen2-style decoder whose pad
token is its EOS token, and the packaged MiniLM (BERT encoder). After a few training steps the export is reloaded
with plain `AutoModelForSequenceClassification` and must give the training-time rewards, unpadded, right padded
and (decoders) left padded.
"""

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rm_trl import PairwiseRewardConfig, PairwiseRewardTrainer
from rm_trl.data.pipeline import PROMPT_IDS, RESPONSE_IDS

from .conftest import learnable_pairs, make_tiny_llama, make_tiny_qwen2

ATOL = 1e-5


def train_briefly(model, tokenizer, output_dir, steps=4, learning_rate=5e-3):
    args = PairwiseRewardConfig(
        output_dir=str(output_dir),
        max_steps=steps,
        learning_rate=learning_rate,
        per_device_train_batch_size=4,
        max_length=48,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
    )
    trainer = PairwiseRewardTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(learnable_pairs(24)), processing_class=tokenizer
    )
    trainer.train()
    trainer.model.eval()
    return trainer


def sequences_of(trainer, n=6):
    rows = [trainer.train_dataset[i] for i in range(n)]
    return [r[PROMPT_IDS] + resp for r in rows for resp in r[RESPONSE_IDS]], rows


def pad(seqs, pad_id, side):
    length = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), length), pad_id)
    mask = torch.zeros((len(seqs), length), dtype=torch.long)
    for i, s in enumerate(seqs):
        if side == "right":
            ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
        else:
            ids[i, length - len(s) :], mask[i, length - len(s) :] = torch.tensor(s), 1
    return ids, mask


def plain_scores(model, seqs, pad_id, side):
    ids, mask = pad(seqs, pad_id, side)
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits[:, 0]


def check_export(trainer, tmp_path, sides):
    seqs, rows = sequences_of(trainer)
    with torch.no_grad():
        batch = trainer.data_collator(rows)
        training_rewards = trainer.compute_rewards(trainer.model, batch)[:, 0]
    export = trainer.save_reward_model(str(tmp_path / "export"))
    model = AutoModelForSequenceClassification.from_pretrained(export).eval()
    pad_id = model.config.pad_token_id
    assert pad_id == trainer.processing_class.pad_token_id
    with torch.no_grad():
        one_by_one = torch.stack([model(input_ids=torch.tensor([s])).logits[0, 0] for s in seqs])
    torch.testing.assert_close(one_by_one, training_rewards, atol=ATOL, rtol=0)
    for side in sides:
        torch.testing.assert_close(plain_scores(model, seqs, pad_id, side), training_rewards, atol=ATOL, rtol=0)
    # The rewards differ between sequences: the check above is not comparing constants.
    assert training_rewards.std() > 1e-3
    return model, seqs, training_rewards


def last_real_token_reference(model, seqs, pad_id):
    """Reward computed by hand: the head applied to the hidden state at the last attention-mask position."""
    ids, mask = pad(seqs, pad_id, "right")
    with torch.no_grad():
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
        last = mask.sum(dim=1) - 1
        return model.score(hidden[torch.arange(len(seqs)), last])[:, 0]


@pytest.mark.parametrize(
    "make_model, fixture",
    [(make_tiny_llama, "llama_tokenizer"), (make_tiny_llama, "bare_tokenizer"), (make_tiny_qwen2, "qwen2_tokenizer")],
)
def test_decoder_export_reads_last_real_token(make_model, fixture, request, tmp_path):
    tokenizer = request.getfixturevalue(fixture)
    eos = tokenizer.eos_token_id
    trainer = train_briefly(make_model(tokenizer), tokenizer, tmp_path)
    assert tokenizer.pad_token_id is not None and tokenizer.pad_token_id != eos
    model, seqs, rewards = check_export(trainer, tmp_path, sides=("right", "left"))
    assert all(s[-1] == eos for s in seqs)  # every sequence ends with EOS: the reward is read there
    torch.testing.assert_close(
        last_real_token_reference(model, seqs, model.config.pad_token_id), rewards, atol=ATOL, rtol=0
    )


def test_qwen2_reuses_an_existing_pad_like_token(qwen2_tokenizer, tmp_path):
    vocab_before = len(qwen2_tokenizer)
    train_briefly(make_tiny_qwen2(qwen2_tokenizer), qwen2_tokenizer, tmp_path, steps=1)
    assert qwen2_tokenizer.pad_token == "<|fim_pad|>" and len(qwen2_tokenizer) == vocab_before


def test_llama_without_pad_reuses_its_unknown_token(llama_tokenizer, tmp_path):
    vocab_before = len(llama_tokenizer)
    train_briefly(make_tiny_llama(llama_tokenizer), llama_tokenizer, tmp_path, steps=1)
    assert llama_tokenizer.pad_token == "<|endoftext|>" == llama_tokenizer.unk_token
    assert len(llama_tokenizer) == vocab_before


def test_tokenizer_without_pad_or_unk_gets_a_dedicated_pad_token(bare_tokenizer, tmp_path):
    vocab_before = len(bare_tokenizer)
    trainer = train_briefly(make_tiny_llama(bare_tokenizer), bare_tokenizer, tmp_path, steps=1)
    assert bare_tokenizer.pad_token == "<|pad|>" and len(bare_tokenizer) == vocab_before + 1
    assert trainer.model.get_input_embeddings().weight.shape[0] == vocab_before + 1


def test_encoder_export_matches_training(minilm_path, tmp_path):
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    trainer = train_briefly(model, tokenizer, tmp_path, learning_rate=5e-5)  # a pretrained encoder: gentle steps
    check_export(trainer, tmp_path, sides=("right",))
    # BERT adds absolute position embeddings, so its scores depend on left padding; the saved tokenizer pads right.
    assert AutoTokenizer.from_pretrained(tmp_path / "export").padding_side == "right"


def test_the_check_catches_the_pad_equals_eos_bug(qwen2_tokenizer):
    """Negative control: with pad == eos left in place, a plain forward reads the token before EOS."""
    model = make_tiny_qwen2(qwen2_tokenizer).eval()
    eos = qwen2_tokenizer.eos_token_id
    assert model.config.pad_token_id == eos
    seqs = [qwen2_tokenizer("Question: yes or no?")["input_ids"] + [eos], qwen2_tokenizer("Hi")["input_ids"] + [eos]]
    wrong = plain_scores(model, seqs, eos, "right")
    right = last_real_token_reference(model, seqs, eos)
    assert not torch.allclose(wrong, right, atol=1e-3)


def test_text_path_matches_training_ids(llama_tokenizer, tmp_path):
    """A consumer tokenizing `prompt + response + eos_token` as one text gets the ids rm-trl trained on."""
    trainer = train_briefly(make_tiny_llama(llama_tokenizer), llama_tokenizer, tmp_path, steps=1)
    raw = learnable_pairs(24)
    for i in range(6):
        row = trainer.train_dataset[i]
        text = raw[row["row"]]["prompt"] + raw[row["row"]]["chosen"] + llama_tokenizer.eos_token
        assert llama_tokenizer(text)["input_ids"] == row[PROMPT_IDS] + row[RESPONSE_IDS][0]
