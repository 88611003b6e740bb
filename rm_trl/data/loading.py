"""Load data from any source `datasets` understands: in-memory, local files, a saved dataset, or the Hub."""

from __future__ import annotations

import glob
import hashlib
import os

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

FILE_BUILDERS = {
    ".json": "json",
    ".jsonl": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".arrow": "arrow",
}


class DataLoadError(ValueError):
    """The data source could not be found or read."""


def _builder_for(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in FILE_BUILDERS:
        raise DataLoadError(f"cannot tell the format of {path!r}: expected one of {sorted(FILE_BUILDERS)}")
    return FILE_BUILDERS[ext]


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
        builder = _builder_for(path)
        kwargs = {"delimiter": "\t"} if path.endswith(".tsv") else {}
        if builder in ("json", "csv"):
            check_utf8(path)  # Arrow's readers accept invalid bytes and fail later, far from the cause
        try:
            return load_dataset(builder, data_files=path, split="train", **kwargs)
        except Exception as exc:
            problem = diagnose_file(path)
            if problem:
                raise DataLoadError(problem) from exc
            raise
    if any(ch in path for ch in "*?["):
        files = sorted(glob.glob(path))
        if not files:
            raise DataLoadError(f"no file matches {source!r}")
        return load_dataset(_builder_for(files[0]), data_files=files, split="train")
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "dataset_info.json")) or os.path.exists(
            os.path.join(path, "dataset_dict.json")
        ):
            loaded = load_from_disk(path)
            return loaded if isinstance(loaded, Dataset) else _pick_split(loaded, split, path)
        return load_dataset(path, config, split=split)
    if os.sep in source and not _looks_like_hub_id(source):
        raise DataLoadError(f"{source!r} is neither a local file or directory nor a Hub dataset name")
    try:
        return load_dataset(source, config, split=split)
    except Exception as exc:  # network / missing dataset: say what was tried
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        hint = " The Hub is disabled (HF_HUB_OFFLINE=1)." if offline else ""
        raise DataLoadError(
            f"could not load {source!r}: it is not a local path, and loading it from the Hugging Face Hub failed "
            f"({type(exc).__name__}: {exc}).{hint}"
        ) from exc


def check_utf8(path: str, chunk_size: int = 1 << 24) -> None:
    """Raise a `DataLoadError` naming the byte and line of the first invalid UTF-8 sequence in a text file."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = lines = 0
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                position = offset + exc.start
                line = lines + chunk[: exc.start].count(b"\n") + 1
                raise DataLoadError(
                    f"{path} is not valid UTF-8: byte {position} (line {line}, row {line - 1}) cannot be decoded "
                    f"({exc.reason}); re-encode the file as UTF-8"
                ) from None
            offset += len(chunk)
            lines += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise DataLoadError(
            f"{path} is not valid UTF-8: it ends inside a multi-byte character ({exc.reason})"
        ) from None


def diagnose_file(path: str) -> str | None:
    """Find why a text data file cannot be loaded, in terms of its lines: bad encoding, bad JSON, or a field
    whose type changes from one row to the next (Arrow needs one type per column)."""
    if path.endswith(".parquet") or path.endswith(".arrow"):
        return None
    if not (path.endswith(".jsonl") or path.endswith(".json")):
        return None
    with open(path, encoding="utf-8") as f:
        text = f.read()
    import json

    first_type: dict[str, tuple[str, int]] = {}
    row = -1
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row += 1
        try:
            record = json.loads(line)
        except ValueError as exc:
            if number == 1 and path.endswith(".json"):
                return None  # a JSON document, not JSON lines: leave it to the loader's own message
            return f"{path}, line {number} (row {row}): not valid JSON ({exc})"
        if not isinstance(record, dict):
            return f"{path}, line {number} (row {row}): expected a JSON object, got {type(record).__name__}"
        for key, value in record.items():
            if value is None:
                continue
            kind = "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__
            seen = first_type.setdefault(key, (kind, row))
            if seen[0] != kind:
                return (
                    f"{path}, line {number} (row {row}), field {key!r}: {kind} {value!r:.60} where row {seen[1]} has "
                    f"a {seen[0]}; one column holds one type, so fix the row (or quote all values as text)"
                )
    return None


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def _pick_split(data: DatasetDict, split: str, where: str) -> Dataset:
    if split not in data:
        raise DataLoadError(f"split {split!r} not found in {where}; available: {sorted(data)}")
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
    return dataset.select(train_idx), dataset.select(eval_idx)


def load_train_eval(args) -> tuple[Dataset, Dataset | None]:
    """Load the training and (optional) evaluation data described by a `rm_trl.DataArguments`."""
    train = load_data(args.train_data, args.train_split, args.dataset_config)
    evaluation = None
    if args.eval_data:
        evaluation = load_data(args.eval_data, args.eval_split, args.dataset_config)
    elif args.eval_fraction:
        train, evaluation = split_by_prompt(train, args.eval_fraction)
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    if evaluation is not None and args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(args.max_eval_samples, len(evaluation))))
    return train, evaluation
