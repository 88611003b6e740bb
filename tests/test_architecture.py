"""The package's shape, as `docs/architecture.md` draws it: imports only run down the layers, nothing imports the
package root, and no module outgrows the size the project allows itself. Read from the source with `ast`, so a
lazy import inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
import os

import pytest

from .conftest import REPO_ROOT

PACKAGE = os.path.join(REPO_ROOT, "rm_trl")

# Lowest first. A module may import from its own layer or any layer below it, never from one above.
LAYERS: list[set[str]] = [
    {"metrics", "losses", "ensemble"},  # pure functions: no rm_trl imports
    {"data"},  # readers, formats, validation, tokenization, collation
    {"errors"},  # user-facing error types (some wrap the data layer's)
    # the model, its rewards
    {"modeling", "model_args", "ensemble_heads", "reward_reading", "packing", "encoder_packing", "checkpoints"},
    {"config", "config_stepwise", "config_robust"},  # training settings
    {"scored_data", "scoring", "ensemble_members"},  # RewardScorer: the one scoring path (and deep ensembles of it)
    {"export"},  # metadata, consumers, card, exporters, Hub upload
    {"evaluation", "eval_report", "benchmarks"},  # metrics of scored data, reports, benchmarks' rules
    {"diagnostics", "trainers"},  # the Trainer subclasses and their callbacks
    {"rl", "serve_items", "serve_limits", "serve", "recipe", "cli", "compare", "evaluate_modules"},  # entry points
    {"lab"},  # the loss lab: trains through recipe.main, scores, tabulates (docs/loss_lab.md)
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}
MAX_LINES = 400
MAX_LINES_EXCEPTIONS = {os.path.join("trainers", "base.py"): 300}


def modules() -> list[tuple[str, str]]:
    """(dotted module name, path) for every module of the package."""
    found = []
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path[:-3], REPO_ROOT).replace(os.sep, ".").removesuffix(".__init__")
                found.append((dotted, path))
    return found


def imported_modules(dotted: str, path: str) -> list[str]:
    """The rm_trl modules `path` imports, absolute, wherever the import statement is."""
    package = dotted if path.endswith("__init__.py") else dotted.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None:  # `from . import x`: each name is a module (or a name of the package)
                out += [f"{target}.{alias.name}" for alias in node.names]
            else:
                out.append(target)
        elif isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
    return [m for m in out if m == "rm_trl" or m.startswith("rm_trl.")]


def top_level(dotted: str) -> str:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_has_a_layer():
    tops = {top_level(dotted) for dotted, _ in modules()} - {""}
    assert tops <= set(LAYER_OF), f"add {sorted(tops - set(LAYER_OF))} to LAYERS (and docs/architecture.md)"


@pytest.mark.parametrize("dotted,path", modules(), ids=[d for d, _ in modules()])
def test_imports_run_down_the_layers(dotted, path):
    if dotted == "rm_trl":
        return  # the root gathers the public API from every layer
    own = LAYER_OF[top_level(dotted)]
    for target in imported_modules(dotted, path):
        theirs = LAYER_OF.get(top_level(target))
        assert theirs is not None, f"{dotted} imports {target} from the package root; import it from its own module"
        assert theirs <= own, (
            f"{dotted} (layer {own}: {sorted(LAYERS[own])}) imports {target} from a layer above "
            f"({theirs}: {sorted(LAYERS[theirs])})"
        )


@pytest.mark.parametrize("dotted,path", modules(), ids=[d for d, _ in modules()])
def test_module_size(dotted, path):
    relative = os.path.relpath(path, PACKAGE)
    limit = MAX_LINES_EXCEPTIONS.get(relative, MAX_LINES)
    lines = sum(1 for _ in open(path, encoding="utf-8"))
    assert lines <= limit, f"{relative} has {lines} lines (at most {limit}): split it where its parts separate"
