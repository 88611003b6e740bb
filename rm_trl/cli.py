"""`rm-trl` command line: `rm-trl score` (JSONL in, JSONL out) and `rm-trl serve` (HTTP reward server)."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys

import numpy as np


def score_main(args: argparse.Namespace) -> int:
    from .data.converters import detect_format
    from .data.loading import load_data
    from .scoring import RewardScorer

    scorer = RewardScorer.from_pretrained(
        args.model,
        batch_tokens=args.batch_tokens,
        max_length=args.max_length,
        normalize=args.normalize,
        trust_remote_code=args.trust_remote_code,
    )
    dataset = load_data(args.input)
    kind = detect_format(dataset.column_names) if args.format == "auto" else args.format
    scored = scorer.score(dataset, kind=kind, progress=not args.quiet, invalid_rows=args.invalid_rows)
    by_row = dict(zip(scored.rows, scored.scalar_rewards()))
    written = 0
    with open(args.output, "w", encoding="utf-8") if args.output != "-" else sys.stdout as out:
        for index, row in enumerate(dataset):
            rewards = by_row.get(index)
            if rewards is None:  # skipped (invalid) or dropped row: kept in the output, marked
                row["reward_error"] = "not scored: invalid or dropped, see the log"
            elif kind == "pairwise":
                row["reward_chosen"], row["reward_rejected"] = float(rewards[0]), float(rewards[1])
                row["preference_probability"] = 1.0 / (1.0 + math.exp(-(row["reward_chosen"] - row["reward_rejected"])))
            elif kind == "ranked":
                row["rewards"] = [float(r) for r in rewards]
            else:
                row["reward"] = float(rewards[0])
            out.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
            written += 1
    report = scored.prepared.report
    print(f"scored {report.rows_out}/{report.rows_in} rows ({report.summary()}) -> {args.output}", file=sys.stderr)
    return 0


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
    )
    run_server(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rm-trl", description="Score data with, or serve, an rm-trl reward model.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", required=True, help="saved reward model folder (export or adapter) or Hub id")
        p.add_argument("--normalize", action="store_true", help="apply the reward normalisation stored in the model")
        p.add_argument("--batch_tokens", type=int, default=16384, help="padded tokens per forward")
        p.add_argument("--trust_remote_code", action="store_true")

    score = sub.add_parser("score", help="JSONL in -> JSONL out with rewards (pairwise, rated or ranked rows)")
    common(score)
    score.add_argument("--input", required=True, help="JSONL/JSON/CSV/Parquet file (or any rm-trl data source)")
    score.add_argument("--output", default="-", help="output JSONL file ('-' = stdout)")
    score.add_argument("--format", default="auto", choices=("auto", "pairwise", "rated", "ranked"))
    score.add_argument("--max_length", type=int, default=None, help="default: the length the model trained with")
    score.add_argument("--invalid_rows", default="error", choices=("error", "skip"))
    score.add_argument("--quiet", action="store_true")
    score.set_defaults(func=score_main)

    serve = sub.add_parser("serve", help="HTTP reward server (OpenRLHF /get_reward, /score, /health)")
    common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="bind address (localhost by default)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max_batch_wait_ms", type=float, default=5.0, help="how long to gather concurrent requests")
    serve.add_argument("--max_items", type=int, default=256, help="most texts per request")
    serve.add_argument("--max_body_bytes", type=int, default=8 * 1024 * 1024, help="largest request body")
    serve.add_argument("--max_text_chars", type=int, default=100_000, help="longest single text")
    serve.set_defaults(func=serve_main)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
