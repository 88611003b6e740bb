"""Load data from any source: in-memory, local files (read by rm-trl's own readers), a saved dataset, or the Hub."""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
from typing import TYPE_CHECKING

from datasets import Dataset, DatasetDict, concatenate_datasets, load_dataset, load_from_disk

from .columns import set_source, source_of
from .readers import check_utf8, read_csv, read_json, read_parquet, table_delimiter
from .report import DataLoadError

if TYPE_CHECKING:
    from .arguments import DataArguments

logger = logging.getLogger(__name__)

__all__ = ["DataLoadError", "check_utf8", "load_data", "load_train_eval", "read_file", "split_by_prompt"]

FILE_BUILDERS = {
    ".json": "json",
    ".jsonl": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".arrow": "arrow",
}


def read_file(path: str) -> Dataset:
    """One local data file, read by rm-trl's own readers (see `readers`): no value is converted to fit a column."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FILE_BUILDERS:
        raise DataLoadError(f"cannot tell the format of {path!r}: expected one of {sorted(FILE_BUILDERS)}")
    if ext in (".json", ".jsonl"):
        return read_json(path)
    if ext in (".csv", ".tsv"):
        return read_csv(path, delimiter=table_delimiter(path))
    if ext == ".parquet":
        return read_parquet(path)
    return set_source(load_dataset("arrow", data_files=path, split="train"), path)


def _concatenate(parts: list[Dataset], files: list[str], pattern: str) -> Dataset:
    """Files of one glob, in name order; rows are numbered across them (said in the source description)."""
    if len(parts) == 1:
        return parts[0]
    try:
        combined = concatenate_datasets(parts)
    except Exception as exc:  # columns or types that differ between files
        raise DataLoadError(
            f"the files of {pattern!r} cannot be read as one dataset ({exc}); give them the same columns and types"
        ) from None
    starts = [0]
    for part in parts[:-1]:
        starts.append(starts[-1] + len(part))
    shown = ", ".join(f"{f} from row {s}" for f, s in list(zip(files, starts))[:5])
    return set_source(combined, f"{pattern} ({len(files)} files: {shown}{', ...' if len(files) > 5 else ''})")


def load_data(source: str | Dataset | DatasetDict, split: str = "train", config: str | None = None) -> Dataset:
    """Return one split of `source` as a `Dataset`.

    `source` may be a `Dataset`, a `DatasetDict` (the `split` is taken), a local file (`.json`, `.jsonl`, `.csv`,
    `.tsv`, `.parquet`: the whole file is the split), a glob of such files, a directory (a `save_to_disk` folder or
    a folder of data files), or a Hugging Face Hub dataset name (needs network access).
    """
    if isinstance(source, Dataset):
        return source
    if isinstance(source, DatasetDict):
        return _pick_split(source, split, "the DatasetDict")
    if not isinstance(source, str) or not source:
        raise DataLoadError(f"unsupported data source {source!r}")
    path = os.path.expanduser(source)
    if os.path.isfile(path):
        return read_file(path)
    if any(ch in path for ch in "*?["):
        files = sorted(f for f in glob.glob(path) if os.path.isfile(f))
        if not files:
            raise DataLoadError(f"no file matches {source!r}")
        return _concatenate([read_file(f) for f in files], files, source)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "dataset_info.json")) or os.path.exists(
            os.path.join(path, "dataset_dict.json")
        ):
            loaded = load_from_disk(path)
            return loaded if isinstance(loaded, Dataset) else _pick_split(loaded, split, path)
        return _read_folder(path, split, source)
    if os.sep in source and not _looks_like_hub_id(source):
        raise DataLoadError(f"{source!r} is neither a local file or directory nor a Hub dataset name")
    try:
        return load_dataset(source, config, split=split)
    except ValueError as exc:
        if "split" not in str(exc).lower():
            raise DataLoadError(f"could not load {source!r} from the Hub: {exc}") from exc
        raise MissingSplitError(f"{source!r} has no split {split!r}: {exc}") from exc
    except Exception as exc:  # network / missing dataset: say what was tried
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        hint = " The Hub is disabled (HF_HUB_OFFLINE=1)." if offline else ""
        raise DataLoadError(
            f"could not load {source!r}: it is not a local path, and loading it from the Hugging Face Hub failed "
            f"({type(exc).__name__}: {exc}).{hint}"
        ) from exc


SPLIT_WORDS = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "eval": "validation",
}


def _split_of(relative_path: str) -> str:
    """The split a data file in a folder belongs to: the first split word among its path's name parts
    (`data/test-00000.jsonl`, `validation/a.csv`), else `train` (as the `datasets` folder loader does)."""
    for part in re.split(r"[\\/_.\-\s]+", relative_path.lower()):
        if part in SPLIT_WORDS:
            return SPLIT_WORDS[part]
    return "train"


def _read_folder(path: str, split: str, source: str) -> Dataset:
    """A folder of data files, each read by rm-trl's own readers (no type guessing), grouped into splits by name."""
    files = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(path)
        for name in names
        if os.path.splitext(name)[1].lower() in FILE_BUILDERS and not name.startswith(".")
    )
    if not files:
        raise DataLoadError(f"the folder {source!r} holds no data files ({', '.join(sorted(FILE_BUILDERS))})")
    splits: dict[str, list[str]] = {}
    for file in files:
        splits.setdefault(_split_of(os.path.relpath(file, path)), []).append(file)
    wanted = SPLIT_WORDS.get(split, split)
    if wanted not in splits:
        raise MissingSplitError(f"split {split!r} not found in the folder {source!r}; available: {sorted(splits)}")
    chosen = splits[wanted]
    return _concatenate([read_file(f) for f in chosen], chosen, source)


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


class MissingSplitError(DataLoadError):
    """The source has named splits, but not the one asked for."""


def _pick_split(data: DatasetDict, split: str, where: str) -> Dataset:
    if split not in data:
        raise MissingSplitError(f"split {split!r} not found in {where}; available: {sorted(data)}")
    return data[split]


def split_by_prompt(dataset: Dataset, eval_fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Hold out `eval_fraction` of the rows, grouped by prompt so no prompt is in both parts.

    Rows without a `prompt` column are grouped by their first text column. Assignment hashes the group key with
    the seed, so it is deterministic and independent of row order.
    """
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction={eval_fraction} must be in (0, 1)")
    key = "prompt" if "prompt" in dataset.column_names else dataset.column_names[0]
    threshold = int(eval_fraction * 2**32)

    def is_eval(value) -> bool:
        digest = hashlib.sha256(f"{seed}:{value!r}".encode()).digest()
        return int.from_bytes(digest[:4], "little") < threshold

    flags = [is_eval(v) for v in dataset[key]]
    train_idx = [i for i, f in enumerate(flags) if not f]
    eval_idx = [i for i, f in enumerate(flags) if f]
    if not train_idx or not eval_idx:
        raise DataLoadError(f"eval_fraction={eval_fraction} leaves an empty train or eval part")
    train, evaluation = dataset.select(train_idx), dataset.select(eval_idx)
    source = source_of(dataset)
    if source is not None:  # row numbers now count within each part: say so wherever the source is named
        for part, name in ((train, "train"), (evaluation, "held-out eval")):
            set_source(part, f"{source}, its {name} part (eval_fraction={eval_fraction}; rows numbered in the part)")
    return train, evaluation


def _has_named_splits(source) -> bool:
    if isinstance(source, DatasetDict):
        return True
    if not isinstance(source, str):
        return False
    path = os.path.expanduser(source)
    single_saved = os.path.isfile(os.path.join(path, "dataset_info.json")) and not os.path.isfile(
        os.path.join(path, "dataset_dict.json")
    )  # a `save_to_disk` of one Dataset: the whole folder is one split
    return not os.path.isfile(path) and not single_saved and not any(ch in path for ch in "*?[")


def load_train_eval(args: DataArguments) -> tuple[Dataset, Dataset | None]:
    """Load the training and (optional) evaluation data described by a `DataArguments`."""
    train = load_data(args.train_data, args.train_split, args.dataset_config)
    evaluation = None
    if args.eval_data:
        evaluation = load_data(args.eval_data, args.eval_split or "test", args.dataset_config)
    elif args.eval_fraction:
        train, evaluation = split_by_prompt(train, args.eval_fraction)
    elif _has_named_splits(args.train_data):  # a Hub dataset, DatasetDict or folder: its test split, if any
        try:
            evaluation = load_data(args.train_data, args.eval_split or "test", args.dataset_config)
        except MissingSplitError as exc:
            if args.eval_split:
                raise
            logger.warning("No evaluation data: %s (give eval_data, eval_split or eval_fraction)", exc)
    elif args.eval_split:
        raise DataLoadError(
            f"eval_split={args.eval_split!r}: {args.train_data!r} is a file, which has no splits; "
            "give eval_data or eval_fraction"
        )
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    if evaluation is not None and args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(args.max_eval_samples, len(evaluation))))
    return train, evaluation
