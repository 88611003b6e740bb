"""Bad inputs through the real entry points, as a user meets them: `rm-trl score` (and `rm-trl train` for the
conversion path) in a subprocess. One case per class of the outside tester's report: data altered or kept
silently, the conversion path, crashes, and scoring applying training-only rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import REPO_ROOT

MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # packaged, uncased: " Yes" and " yes" tokenize alike
P = {"prompt": "Q?", "chosen": " a good answer", "rejected": " a bad answer"}


def rm_trl(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=REPO_ROOT)
    env.pop("RM_TRL_DEBUG", None)
    cmd = [sys.executable, "-m", "rm_trl.cli", *args]
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def write_lines(path, *lines: str) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def score(tmp_path, name: str, *lines: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    source = write_lines(tmp_path / f"{name}.jsonl", *lines)
    out = tmp_path / f"{name}.scored.jsonl"
    proc = rm_trl("score", "--model", MODEL, "--input", source, "--output", str(out), "--quiet")
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] if out.exists() else []
    return proc, rows


def assert_user_error(proc: subprocess.CompletedProcess, *expected: str) -> None:
    """Non-zero exit, one message naming what is wrong, and no Python traceback."""
    assert proc.returncode != 0, proc.stderr[-3000:]
    for text in expected:
        assert text in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


def test_score_keeps_text_as_written_and_marks_rows_it_cannot_score(tmp_path):
    """Altered data + consumer parity: JSON-looking text stays text beside a non-text value; a response that
    tokenizes to nothing is marked like an empty one; identical responses are scored (a training-only rule)."""
    rows = [
        {**P, "chosen": '"Hello"', "rejected": "123"},
        {**P, "chosen": 7},
        {**P, "chosen": "\u200b\u200b"},
        {**P, "rejected": P["chosen"]},
        {**P, "chosen": "true", "rejected": "null"},
    ]
    proc, out = score(tmp_path, "pairs", *(json.dumps(r) for r in rows))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "scored 3/5 rows" in proc.stderr
    assert "row 1: field 'chosen': expected text, got int 7" in proc.stderr
    assert "row 2: field 'chosen': text tokenizes to no tokens" in proc.stderr
    assert [{k: r[k] for k in P} for r in out] == [{k: r[k] for k in P} for r in rows]  # every text as written
    assert [("reward_error" in r) for r in out] == [False, True, True, False, False]
    assert "field 'chosen'" in out[1]["reward_error"] and "field 'chosen'" in out[2]["reward_error"]
    assert all(isinstance(r["reward_chosen"], float) for i, r in enumerate(out) if i in (0, 3, 4))


def test_score_reads_no_ranks_and_applies_no_training_rule(tmp_path):
    """Crashes + consumer parity: NaN and string ranks are not read when scoring, tied ranks and completions
    identical once tokenized are scored; a completion of the wrong type is marked with its field."""
    k = {"prompt": "Q?", "completions": [" best", " middle", " worst"], "ranks": [0, 1, 2]}
    lines = [
        json.dumps({**k, "ranks": [0, float("nan"), 1]}),  # NaN in the file, as Python's json writes it
        json.dumps({**k, "ranks": [0, 0, 0]}),
        json.dumps({**k, "completions": [" Yes", " yes"], "ranks": ["0", "1"]}),
        json.dumps({**k, "completions": [" a", 5]}),
    ]
    proc, out = score(tmp_path, "ranked", *lines)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "scored 3/4 rows" in proc.stderr and "row 3: field 'completions'" in proc.stderr
    assert [len(r.get("rewards", [])) for r in out] == [3, 3, 2, 0]
    assert out[2]["ranks"] == ["0", "1"] and out[3]["completions"] == [" a", 5]  # written back as given
    assert "field 'completions'" in out[3]["reward_error"]


def test_score_refuses_a_file_it_cannot_read(tmp_path):
    """A line nested 50,000 deep crashed Arrow's JSON reader with a segmentation fault: now a message."""
    deep = '{"prompt": "Q", "chosen": ' + "[" * 50_000 + "]" * 50_000 + "}"
    source = write_lines(tmp_path / "deep.jsonl", json.dumps(P), deep)
    proc = rm_trl("score", "--model", MODEL, "--input", source, "--output", str(tmp_path / "out.jsonl"))
    assert_user_error(proc, "deep.jsonl, line 2 (row 1): nested too deeply")
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    "name, lines, expected",
    [
        ("two", [json.dumps(P), json.dumps(P) + json.dumps(P), json.dumps(P)], "line 2 (row 1): not valid JSON"),
        ("empty", [" ", ""], "holds no rows"),
    ],
)
def test_score_names_the_line_of_an_unreadable_file(tmp_path, capsys, name, lines, expected):
    """The same entry point in-process (no interpreter start-up): exit 1 and one message naming file and line."""
    from rm_trl.cli import main

    source = write_lines(tmp_path / f"{name}.jsonl", *lines)
    assert main(["score", "--model", MODEL, "--input", source, "--output", str(tmp_path / "out.jsonl")]) == 1
    err = capsys.readouterr().err
    assert f"{name}.jsonl" in err and expected in err and "Traceback" not in err
    assert not (tmp_path / "out.jsonl").exists()


def test_train_validates_ranked_rows_before_converting_them(tmp_path):
    """The conversion path: a ranked row with 2 ranks for 3 completions stops `rm-trl train pairwise` with the
    row and field, before any training; nothing is saved."""
    k = {"prompt": "Q?", "completions": [" best", " middle", " worst"], "ranks": [0, 1, 2]}
    source = write_lines(tmp_path / "ranked.jsonl", json.dumps(k), json.dumps({**k, "ranks": [0, 1]}))
    args = ["--train_data", source, "--model_name_or_path", MODEL, "--output_dir", str(tmp_path / "out")]
    proc = rm_trl("train", "pairwise", *args, "--report_to", "none", "--max_steps", "1")
    assert_user_error(proc, "ranked.jsonl", "row 1, field 'ranks': 2 ranks for 3 completions")
    assert not (tmp_path / "out" / "config.json").exists()


def test_score_error_mode_stops_before_writing(tmp_path, capsys):
    """`--invalid_rows error` keeps the strict behaviour for those who want it: exit 1, the rows named."""
    from rm_trl.cli import main

    source = write_lines(tmp_path / "pairs.jsonl", json.dumps(P), json.dumps({**P, "chosen": " "}))
    out = tmp_path / "out.jsonl"
    code = main(["score", "--model", MODEL, "--input", source, "--output", str(out), "--invalid_rows", "error"])
    assert code == 1 and not out.exists()
    assert "row 1: field 'chosen': text is empty" in capsys.readouterr().err


def test_score_writes_rows_back_exactly_and_reads_folders_tsv_and_column_json_itself(tmp_path):
    """Found by an outside run: rows written back must not gain keys or turn ints into floats; a folder of files,
    a TSV with quotes and a one-line JSON object of columns go through rm-trl's readers, text unchanged."""
    rows = [
        {**P, "meta": {"src": "x"}, "n": 1, "uid": 18446744073709551617},
        {**P, "prompt": "Q2", "meta": {"src": "y", "extra": 3}, "n": 2.5, "uid": 5},
    ]
    proc, out = score(tmp_path, "extra", *(json.dumps(r) for r in rows))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [{k: v for k, v in r.items() if not k.startswith(("reward", "preference"))} for r in out] == rows
    assert isinstance(out[0]["n"], int) and out[0]["uid"] == 18446744073709551617

    from rm_trl.data.loading import load_data

    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "train.csv").write_text("prompt,chosen,rejected\nNone,N/A,  spaced \nnan,007,1e5\n", encoding="utf-8")
    (folder / "test.csv").write_text("prompt,chosen,rejected\nT,a,b\n", encoding="utf-8")
    assert load_data(str(folder), "train").to_list() == [
        {"prompt": "None", "chosen": "N/A", "rejected": "  spaced "},
        {"prompt": "nan", "chosen": "007", "rejected": "1e5"},
    ]
    assert load_data(str(folder), "test").to_list() == [{"prompt": "T", "chosen": "a", "rejected": "b"}]
    (tmp_path / "q.tsv").write_text('prompt\tchosen\trejected\n"quoted" start\tmid "q" x\t"whole"\n', encoding="utf-8")
    assert load_data(str(tmp_path / "q.tsv")).to_list() == [
        {"prompt": '"quoted" start', "chosen": 'mid "q" x', "rejected": '"whole"'}
    ]
    (tmp_path / "cols.json").write_text(
        json.dumps({"prompt": ["a", "b"], "chosen": ["c", "d"], "rejected": ["e", "f"]})
    )
    assert len(load_data(str(tmp_path / "cols.json"))) == 2


def test_score_writes_csv_cells_back_as_written_and_csv_when_asked(tmp_path):
    """Found in the roadmap's list: an id `007` or a code `1e3` in a CSV came back as 7 and 1000.0, and `--output
    x.csv` wrote JSON lines into it. Cells are text as the file holds them; a .csv output is CSV."""
    import csv

    from rm_trl.cli import _rows_as_written
    from rm_trl.data.loading import load_data

    source = tmp_path / "in.csv"
    source.write_text(
        'prompt,chosen,rejected,id,code\nQ?,a good answer,a bad answer,007,1e3\n"Q, 2",yes,no,010,00\n',
        encoding="utf-8",
    )
    written = list(_rows_as_written(str(source), load_data(str(source))))
    assert [(r["id"], r["code"], r["prompt"]) for r in written] == [("007", "1e3", "Q?"), ("010", "00", "Q, 2")]
    out = tmp_path / "out.csv"
    proc = rm_trl("score", "--model", MODEL, "--input", str(source), "--output", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["id"], r["code"], r["prompt"]) for r in rows] == [("007", "1e3", "Q?"), ("010", "00", "Q, 2")]
    assert list(rows[0])[:5] == ["prompt", "chosen", "rejected", "id", "code"]
    assert all(float(r["reward_chosen"]) == float(r["reward_chosen"]) for r in rows)  # numbers, not NaN or empty


def test_conversations_whose_messages_have_other_keys_share_their_prompt(tmp_path):
    """Arrow fills `name: null` into every message of a column where one message has a name: the shared prompt
    must still be found (and a pair with no shared message gets a message saying so)."""
    user, bob = {"role": "user", "content": "yo"}, {"role": "user", "content": "yo", "name": "bob"}
    hey, no = {"role": "assistant", "content": "hey"}, {"role": "assistant", "content": "no"}
    rows = [{"chosen": [user, hey], "rejected": [user, no]}, {"chosen": [bob, hey], "rejected": [user, no]}]
    source = write_lines(tmp_path / "conv.jsonl", *(json.dumps(r) for r in rows))
    proc = rm_trl(
        "score", "--model", str(smol_chat_model(tmp_path)), "--input", source, "--output", str(tmp_path / "o")
    )
    out = [json.loads(line) for line in (tmp_path / "o").read_text().splitlines()]
    assert proc.returncode == 0 and "reward_chosen" in out[0], proc.stderr[-3000:]
    assert "no shared prompt" in out[1]["reward_error"]


def smol_chat_model(tmp_path):
    """A tiny random decoder with SmolLM2's chat-template tokenizer, saved as a plain folder."""
    from transformers import AutoTokenizer

    from .conftest import make_tiny_llama, smollm2_gguf_path

    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
    path = tmp_path / "chat-model"
    make_tiny_llama(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
