"""`rm-trl` command line: `rm-trl score` (JSONL in, JSONL out), `rm-trl serve` (HTTP reward server) and
`rm-trl calibrate` (fit an export's preference temperature on held-out data, `docs/calibration.md`).

`rm-trl score` reads any registered feedback format (`rm_trl.data.formats.FORMATS`): `--format` choices and what it
writes per row (`FeedbackFormat.write_scores`) come from the registry."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys

import numpy as np


def _write_uncertainty(row: dict, scorer, feedback_format, outputs) -> None:
    """An ensemble's `<reward key>_std` and `<reward key>_conservative` beside each reward key the format writes
    (`reward_chosen_std`, `rewards_std`, ...), and `reward_heads` (each response's heads, in response order)."""
    stats = scorer.uncertainty(outputs)
    for name in ("std", "conservative"):
        written: dict = {}
        feedback_format.write_scores(written, stats[name])
        row.update({f"{key}_{name}": value for key, value in written.items() if key.startswith("reward")})
    row["reward_heads"] = outputs[:, 1:].tolist()


def score_main(args: argparse.Namespace) -> int:
    """Score every scorable row; each other row is written back unchanged with a `reward_error` naming the field.
    Exit 0 with counts on stderr; only an unreadable input file (or `--invalid_rows error`) is an error."""
    from .data.formats import FORMATS, detect_format
    from .data.formats.pairwise import PAIRWISE
    from .data.formats.ranked import RANKED
    from .data.loading import load_data
    from .data.report import DataValidationError
    from .errors import ConfigError
    from .metrics import best_probabilities
    from .scoring import RewardScorer

    dataset = load_data(args.input)  # before the model: an unreadable file fails fast
    kind = detect_format(dataset.column_names) if args.format == "auto" else args.format
    scorer = RewardScorer.from_pretrained(
        args.model,
        batch_tokens=args.batch_tokens,
        max_length=args.max_length,
        normalize=args.normalize,
        trust_remote_code=args.trust_remote_code,
        step_aggregation=args.step_aggregation,
    )
    if args.uncertainty and (not scorer.ensemble or FORMATS[kind].per_position):
        raise ConfigError(
            f"--uncertainty needs an ensemble export (trained with ensemble_heads > 1); {args.model} is not"
        )
    prepared = scorer.prepare_scorable(dataset, kind)
    problems = [f"  row {row}: {why}" for row, why in sorted(prepared.not_kept.items())]
    if problems and args.invalid_rows == "error":
        shown = "\n".join(problems[:10])
        raise DataValidationError(f"{len(problems)} row(s) of {args.input} cannot be scored:\n{shown}")
    scored = scorer.score_prepared(prepared, progress=not args.quiet)
    feedback_format = FORMATS[kind]
    calibrated = scorer.temperature is not None and kind in (PAIRWISE, RANKED)  # calibrated probabilities too
    by_row = dict(zip(scored.rows, scored.rewards_for(feedback_format)))
    outputs_by_row = dict(zip(scored.rows, scored.response_outputs())) if args.uncertainty else {}
    table = args.output.lower().endswith((".csv", ".tsv"))
    table_rows: list[dict] = []
    with (
        open(args.output, "w", encoding="utf-8")
        if args.output != "-" and not table
        else contextlib.nullcontext(sys.stdout) as out
    ):
        for index, row in enumerate(_rows_as_written(args.input, dataset)):
            rewards = by_row.get(index)
            if rewards is None:  # not scorable: kept in the output, marked with the reason
                row["reward_error"] = prepared.not_kept.get(index, "not scored")
            else:
                feedback_format.write_scores(row, rewards)
                if calibrated and kind == PAIRWISE:  # beside `preference_probability` (T = 1), the one at the T
                    row["preference_probability_calibrated"] = float(scorer.preference_probability(*rewards[:2]))
                elif calibrated:  # a list: beside `best_probabilities` (T = 1), those at the export's T
                    row["best_probabilities_calibrated"] = best_probabilities(rewards, scorer.temperature).tolist()
                if feedback_format.per_position:  # a process reward model: its steps' rewards, then their aggregate
                    row["reward"] = scorer.aggregate(rewards)
                if args.uncertainty:
                    _write_uncertainty(row, scorer, feedback_format, outputs_by_row[index])
            if table:
                table_rows.append(row)
            else:
                out.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
    if table:
        _write_table(args.output, table_rows)
    report = prepared.report
    print(f"scored {report.rows_out}/{report.rows_in} rows ({report.summary()}) -> {args.output}", file=sys.stderr)
    if calibrated:
        column = "preference_probability_calibrated" if kind == PAIRWISE else "best_probabilities_calibrated"
        print(f"calibrated: T = {scorer.temperature:.4g} ({column})", file=sys.stderr)
    if problems:
        more = f"\n  ... {len(problems) - 10} more" if len(problems) > 10 else ""
        print(
            f"{len(problems)} row(s) not scored, marked with reward_error:\n" + "\n".join(problems[:10]) + more,
            file=sys.stderr,
        )
    return 0


def _rows_as_written(path: str, dataset):
    """Each input row as the file holds it: a JSON / JSON-lines file is re-read as parsed (Arrow would fill in
    missing keys and turn ints into floats); other sources give their rows with set-aside values put back."""
    from .data.columns import restore_row
    from .data.readers import csv_records, json_records, table_delimiter

    if os.path.isfile(path) and path.lower().endswith((".json", ".jsonl")):
        return json_records(path)
    if os.path.isfile(path) and path.lower().endswith((".csv", ".tsv")):  # cells as text, as the file has them
        return csv_records(path, table_delimiter(path))
    return (restore_row(row) for row in dataset)


def _write_table(path: str, rows: list[dict]) -> None:
    """`--output x.csv` / `x.tsv`: one column per key (input columns first, then the scores), lists and objects as
    JSON text, missing values empty."""
    import csv

    columns = list(dict.fromkeys(key for row in rows for key in row))
    from .data.readers import table_delimiter

    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=table_delimiter(path))
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(column)) for column in columns])


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def serve_main(args: argparse.Namespace) -> int:
    from .serve import ServerSettings, run_server

    settings = ServerSettings(
        model=args.model,
        host=args.host,
        port=args.port,
        normalize=args.normalize,
        batch_tokens=args.batch_tokens,
        max_batch_wait_ms=args.max_batch_wait_ms,
        max_items=args.max_items,
        max_body_bytes=args.max_body_bytes,
        max_text_chars=args.max_text_chars,
        trust_remote_code=args.trust_remote_code,
        step_aggregation=args.step_aggregation,
        ensemble_reward=args.ensemble_reward,
        empty_response=args.empty_response,
        empty_reward=args.empty_reward,
        strip_end_strings=not args.no_strip_suffixes,
        body_timeout_s=args.body_timeout_s,
        max_connections=args.max_connections,
        keep_alive_s=args.keep_alive_s,
    )
    if args.strip_suffixes is not None:
        settings.strip_suffixes = tuple(args.strip_suffixes)
    run_server(settings)
    return 0


def calibrate_main(args: argparse.Namespace) -> int:
    """Fit the export's preference temperature on `--data` and write it into its config.json and card."""
    from .export.calibration import calibrate_export

    entry = calibrate_export(
        args.model,
        args.data,
        split=args.split,
        data_config=args.data_config,
        kind=None if args.format == "auto" else args.format,
        score_column=args.score_column,
        invalid_rows=args.invalid_rows,
        batch_tokens=args.batch_tokens,
        trust_remote_code=args.trust_remote_code,
        write=not args.dry_run,
    )
    print(
        f"temperature T = {entry['temperature']:.4g} ({entry['status']}) on {entry['pairs']} pairs of "
        f"{entry['fitted_on']}: ECE {entry['ece_before']:.4f} -> {entry['ece_after']:.4f}, Brier "
        f"{entry['brier_before']:.4f} -> {entry['brier_after']:.4f}",
        file=sys.stderr,
    )
    if args.dry_run:
        print("nothing written (--dry_run)", file=sys.stderr)
    else:
        config = os.path.join(args.model, "config.json")
        print(f"recorded in {config} (rm_trl.calibration) and the model card; rewards unchanged", file=sys.stderr)
    print(json.dumps(entry))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .data.formats import FORMATS, join_or  # `rm-trl score` reads every format registered by now
    from .metrics.stepwise import STEP_AGGREGATIONS

    parser = argparse.ArgumentParser(
        prog="rm-trl",
        description="Train, score with, serve or calibrate an rm-trl reward model (--debug: tracebacks).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train a reward model: rm-trl train <family> --config my.yaml (see rm-trl train -h)")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", required=True, help="saved reward model folder (export or adapter) or Hub id")
        p.add_argument("--normalize", action="store_true", help="apply the reward normalisation stored in the model")
        p.add_argument("--batch_tokens", type=int, default=16384, help="padded tokens per forward")
        p.add_argument("--trust_remote_code", action="store_true")
        p.add_argument(
            "--step_aggregation",
            default=None,
            choices=STEP_AGGREGATIONS,
            help="process reward models: how step rewards make one reward (default: the rule the model recorded)",
        )

    score = sub.add_parser("score", help=f"JSONL in -> JSONL out with rewards ({join_or(list(FORMATS))} rows)")
    common(score)
    score.add_argument("--input", required=True, help="JSONL/JSON/CSV/Parquet file (or any rm-trl data source)")
    score.add_argument(
        "--output", default="-", help="output file: JSON lines, or CSV / TSV when named .csv / .tsv ('-' = stdout)"
    )
    score.add_argument("--format", default="auto", choices=("auto", *FORMATS))
    score.add_argument("--max_length", type=int, default=None, help="default: the length the model trained with")
    score.add_argument(
        "--invalid_rows",
        default="mark",
        choices=("mark", "skip", "error"),
        help="rows that cannot be scored: mark (default; skip is the same) writes them back with a reward_error "
        "naming the field; error stops before writing anything",
    )
    score.add_argument(
        "--uncertainty",
        action="store_true",
        help="an ensemble export: also write each reward's std over heads, conservative reward and the heads",
    )
    score.add_argument("--quiet", action="store_true")
    score.set_defaults(func=score_main)

    serve = sub.add_parser("serve", help="HTTP reward server (OpenRLHF /get_reward, /score, /health)")
    serve.add_argument(
        "--ensemble_reward",
        default=None,
        choices=("mean", "conservative"),
        help="an ensemble export: the reward in `rewards` (default: the one the model recorded)",
    )
    common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="bind address (localhost by default)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max_batch_wait_ms", type=float, default=5.0, help="how long to gather concurrent requests")
    serve.add_argument("--max_items", type=int, default=256, help="most texts per request")
    serve.add_argument("--max_body_bytes", type=int, default=8 * 1024 * 1024, help="largest request body")
    serve.add_argument("--max_text_chars", type=int, default=100_000, help="longest single text")
    serve.add_argument(
        "--empty_response",
        default="score",
        choices=("score", "value"),
        help="an empty generation (or only whitespace / control / zero-width characters): 'score' it as an empty "
        "response, the prompt alone as plain transformers reads it (default), or give it --empty_reward; either "
        "way its index is listed under 'empty' in the answer (a process reward model always gives --empty_reward: "
        "an empty generation has no steps)",
    )
    serve.add_argument("--empty_reward", type=float, default=0.0, help="reward of empty items with 'value'")
    serve.add_argument(
        "--strip_suffixes",
        nargs="+",
        metavar="TEXT",
        default=None,
        help="end-of-text strings removed from the end of each generation (default: <|im_end|> </s> <|endoftext|> "
        "<|eot_id|> <eos> <|end|> <|end_of_text|> <end_of_turn>); the model's own EOS and pad are always added",
    )
    serve.add_argument("--no_strip_suffixes", action="store_true", help="score generations as sent, end strings too")
    serve.add_argument(
        "--body_timeout_s",
        type=float,
        default=10.0,
        help="seconds a client has to send a whole request body (408 after that); a connection that sends no "
        "complete request head in that time is closed",
    )
    serve.add_argument(
        "--max_connections",
        type=int,
        default=256,
        help="open connections at most (uvicorn's limit_concurrency); requests beyond it get 503. RL loops that "
        "send one request per generation (OpenRLHF >= 0.10) hold many at once: keep it above their concurrency",
    )
    serve.add_argument(
        "--keep_alive_s", type=float, default=5.0, help="idle keep-alive connections are closed after this (uvicorn)"
    )
    serve.set_defaults(func=serve_main)

    calibrate = sub.add_parser(
        "calibrate", help="fit an export's preference temperature on held-out data and record it (config.json, card)"
    )
    calibrate.add_argument("--model", required=True, help="local export folder (its config.json and card are updated)")
    calibrate.add_argument("--data", required=True, help="held-out pairwise, ranked or rated data (file, folder, Hub)")
    calibrate.add_argument("--split", default="test", help="split of --data, for Hub datasets and DatasetDicts")
    calibrate.add_argument("--data_config", default=None, help="Hub dataset configuration")
    calibrate.add_argument("--format", default="auto", choices=("auto", *FORMATS))
    calibrate.add_argument("--score_column", default="score", help="rated data: the gold score column")
    calibrate.add_argument("--invalid_rows", default="error", choices=("error", "skip"))
    calibrate.add_argument("--batch_tokens", type=int, default=16384, help="padded tokens per forward")
    calibrate.add_argument("--trust_remote_code", action="store_true")
    calibrate.add_argument("--dry_run", action="store_true", help="print the temperature, write nothing")
    calibrate.set_defaults(func=calibrate_main)
    return parser


TRAIN_USAGE = """usage: rm-trl train {{{families}}} [--config CONFIG.yaml] [--FLAG VALUE ...]

Train a reward model: the recipes' entry point (`recipes/<family>.py` in the repository), same flags, same YAML.
`rm-trl train pairwise --help` lists every setting of that family."""


def train_main(argv: list[str]) -> int:
    from .recipe import main as recipe_main

    if not argv or argv[0] in ("-h", "--help"):
        from .trainers import FAMILIES

        print(TRAIN_USAGE.format(families=",".join(sorted(FAMILIES))))
        return 0 if argv else 2
    return recipe_main(argv[0], argv[1:])


def main(argv: list[str] | None = None) -> int:
    """`rm-trl train|score|serve|calibrate`; user errors print one message and exit 1 (a traceback with `--debug`)."""
    from .errors import pop_debug_flag, run_entry_point

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":  # the recipes' own parser (TrlParser): every config field is a flag
        return train_main(argv[1:])
    argv, debug = pop_debug_flag(argv)
    args = build_parser().parse_args(argv)
    return run_entry_point(lambda: args.func(args), debug=debug, program=f"rm-trl {args.command}")


if __name__ == "__main__":
    sys.exit(main())
