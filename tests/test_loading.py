import os

import pytest
from datasets import Dataset, DatasetDict

from rm_trl.data import DataArguments, DataLoadError, load_data, load_train_eval, split_by_prompt

ROWS = [{"prompt": f"q{i % 7}", "chosen": f" good {i}", "rejected": f" bad {i}"} for i in range(40)]


def test_every_local_source(tmp_path):
    ds = Dataset.from_list(ROWS)
    ds.to_json(tmp_path / "d.jsonl")
    ds.to_csv(tmp_path / "d.csv", index=False)
    ds.to_parquet(tmp_path / "d.parquet")
    ds.save_to_disk(str(tmp_path / "saved"))
    DatasetDict({"train": ds, "test": ds.select(range(3))}).save_to_disk(str(tmp_path / "saved_dict"))
    for source in ("d.jsonl", "d.csv", "d.parquet", "saved", "d.*l"):
        loaded = load_data(str(tmp_path / source))
        assert loaded.num_rows == 40 and loaded[5] == ROWS[5], source
    assert load_data(str(tmp_path / "saved_dict"), split="test").num_rows == 3
    assert load_data(ds) is ds
    assert load_data(DatasetDict({"train": ds}), split="train") is ds
    with pytest.raises(DataLoadError, match="split 'validation' not found"):
        load_data(DatasetDict({"train": ds}), split="validation")


def test_missing_sources_say_what_was_tried(tmp_path):
    with pytest.raises(DataLoadError, match="neither a local file"):
        load_data(str(tmp_path / "nope" / "file.jsonl"))
    with pytest.raises(DataLoadError, match="cannot tell the format"):
        (tmp_path / "x.txt").write_text("hi")
        load_data(str(tmp_path / "x.txt"))
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    with pytest.raises(DataLoadError, match="HF_HUB_OFFLINE=1"):
        load_data("someone/some-dataset-that-is-not-here")


def test_split_by_prompt_keeps_prompts_apart():
    train, evaluation = split_by_prompt(Dataset.from_list(ROWS), 0.3, seed=1)
    assert train.num_rows + evaluation.num_rows == 40
    assert not set(train["prompt"]) & set(evaluation["prompt"])


def test_load_train_eval(tmp_path):
    Dataset.from_list(ROWS).to_json(tmp_path / "d.jsonl")
    args = DataArguments(train_data=str(tmp_path / "d.jsonl"), eval_fraction=0.3, max_train_samples=10)
    train, evaluation = load_train_eval(args)
    assert train.num_rows == 10 and evaluation.num_rows > 0
