"""Errors a user can fix, and the one place entry points turn them into a message and an exit code.

`rm-trl train / score / serve` and the recipe scripts print such an error as one line naming the file, row, field
or setting at fault, and exit with status 1, without a Python traceback. A traceback is still printed for
anything else (a bug), and for every error with `--debug` or `RM_TRL_DEBUG=1`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable

DEBUG_ENV = "RM_TRL_DEBUG"


class RmTrlError(Exception):
    """Base of the errors caused by what the user gave (settings, files, models), not by a bug."""


class ConfigError(RmTrlError, ValueError):
    """A setting (command-line flag or YAML key) that cannot be used as given."""


class ModelLoadError(RmTrlError, OSError):
    """The model or tokenizer could not be found or read."""


class TrainingError(RmTrlError, RuntimeError):
    """Training cannot go on (or did nothing) for a reason the user can act on."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions printed as a message: rm-trl's own, the data layer's, and a non-finite training loss."""
    from .data.loading import DataLoadError
    from .data.report import DataValidationError

    return (RmTrlError, DataLoadError, DataValidationError, FloatingPointError)


def pop_debug_flag(argv: list[str]) -> tuple[list[str], bool]:
    """Remove a bare `--debug` from `argv`; return the rest and whether tracebacks were asked for (flag or env).

    `--debug <value>` (TrainingArguments' own `debug` option, e.g. `underflow_overflow`) is left in place."""
    rest, debug = [], False
    for i, arg in enumerate(argv):
        following = argv[i + 1] if i + 1 < len(argv) else None
        if arg == "--debug" and (following is None or following.startswith("-")):
            debug = True
        else:
            rest.append(arg)
    return rest, debug or os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes")


def run_entry_point(main: Callable[[], int | None], debug: bool = False, program: str = "rm-trl") -> int:
    """Run an entry point; a user error becomes `<program>: error: <message>` on stderr and exit status 1."""
    try:
        return int(main() or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{program}: interrupted", file=sys.stderr)
        return 130
    except user_error_types() as exc:
        if debug:
            raise
        logging.shutdown()
        name = "" if isinstance(exc, RmTrlError) else f"{type(exc).__name__}: "
        print(f"{program}: error: {name}{exc}", file=sys.stderr)
        print(f"(run with --debug or {DEBUG_ENV}=1 for a traceback)", file=sys.stderr)
        return 1


TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "vocab.txt", "tokenizer.model", "vocab.json"}


@contextlib.contextmanager
def explained_load_errors(path: str):
    """Turn the Hub client's errors for a model that is not there ("Repo id must be in the form ...", offline
    look-ups) into one `ModelLoadError` naming the path."""
    try:
        yield
    except ModelLoadError:
        raise
    except (OSError, ValueError) as exc:
        if os.path.isdir(path):
            names = set(os.listdir(path))
            if "config.json" not in names and "adapter_config.json" not in names:
                raise ModelLoadError(f"{path} is not a model folder: it has no config.json") from exc
            if not names & TOKENIZER_FILES:
                raise ModelLoadError(f"{path} has no tokenizer files ({', '.join(sorted(TOKENIZER_FILES))})") from exc
            raise ModelLoadError(f"cannot load the model in {path}: {exc}") from exc
        if path.startswith((".", "/", "~")) or path.count("/") > 1:  # a path, not a Hub id
            raise ModelLoadError(f"model not found: {path} is not a folder") from exc
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
        hint = " (HF_HUB_OFFLINE is set: only local folders and cached models load)" if offline else ""
        raise ModelLoadError(f"model not found: {path} is neither a local folder nor a Hub model{hint}") from exc
