"""Every consumer reads the reward rm-trl trained: the consumer-parity matrix.

Each cell runs a consumer's own code (transformers, TRL's GRPO / RLOO reward computation, TRL PPO's `get_reward`,
the `rm-trl score` CLI, an OpenRLHF-shaped request to `rm-trl serve`) on an export of `consumer_models.EXPORTS` and
compares its rewards with `RewardScorer(normalize=True)` (the reward training defined: normalised when the export
asks for it). `consumer_record.check_cell` holds the export's `rm_trl.consumers` flag to the outcome, so a flag
that says `exact` must match within 1e-5 and one that says `differs` must really differ. `scripts/make_consumers_doc.py`
runs this file and writes docs/consumers.md from the recorded cells.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rm_trl.export import CONSUMERS, METADATA_KEY
from rm_trl.scoring import RewardScorer

from .conftest import REPO_ROOT
from .consumer_models import EXPORT_IDS, EXPORTS, consumer_texts, make_policy, train_export
from .consumer_record import check_cell, check_failure, record

ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
PPO_PYTHON = os.environ.get("RM_TRL_PPO_PYTHON", os.path.join(REPO_ROOT, ".venv-trl112", "bin", "python"))
PPO_CASES = {  # case -> (its flag in `rm_trl.consumers`, the rollouts and the policy's pad token)
    "eos": ("trl_ppo_eos", "rollouts end with EOS, policy pad != EOS"),
    "pad_is_eos": ("trl_ppo_pad_is_eos", "rollouts end with EOS, policy pad == EOS"),
    "no_eos": ("trl_ppo_no_eos", "rollouts cut without EOS"),
}
PPO_ROWS = [0, 1, 2, 4, 5, 6, 7, 8]  # ASCII rows: a rollout cut mid-response decodes back to the same tokens


def metadata(path: str) -> dict:
    with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
        return json.load(f)[METADATA_KEY]


@pytest.fixture(scope="module")
def exports(tmp_path_factory, minilm_path, smol_tokenizer_dir) -> dict[tuple[str, str], str]:
    root = tmp_path_factory.mktemp("consumer_exports")
    return {key: train_export(*key, str(root / "-".join(key)), minilm_path, smol_tokenizer_dir) for key in EXPORTS}


@pytest.fixture(scope="module")
def scorers(exports) -> dict[tuple[str, str], RewardScorer]:
    """rm-trl's scorer per export: the reward training defined, normalised when the export asks for it."""
    return {key: RewardScorer.from_pretrained(path, normalize=True) for key, path in exports.items()}


@pytest.fixture(scope="module")
def reference(scorers) -> dict[tuple[str, str], np.ndarray]:
    """rm-trl's rewards for `consumer_texts()`, per export."""
    return {key: scorer.score_texts(*consumer_texts()) for key, scorer in scorers.items()}


def test_config_and_card_carry_every_consumer_flag(exports):
    """Users read the flags in config.json and the card; `check_trl_reward_path` must agree with them."""
    from rm_trl.rl import check_trl_reward_path

    for key, path in exports.items():
        flags = metadata(path)["consumers"]
        assert set(flags) == set(CONSUMERS), key
        card = open(os.path.join(path, "README.md"), encoding="utf-8").read()
        assert all(f"- {CONSUMERS[k]}: {flag}" in card for k, flag in flags.items()), key
        assert check_trl_reward_path(path) == flags["trl_path"].startswith("exact"), key


def test_check_trl_reward_path_warns_naming_the_flag(exports, caplog):
    from rm_trl.rl import check_trl_reward_path

    assert not check_trl_reward_path(exports["minilm", "plain"])
    assert "rm_trl.consumers.trl_path" in caplog.text and "RewardFunction" in caplog.text
    caplog.clear()
    assert check_trl_reward_path(exports["llama_pad", "no_eos"]) and not caplog.text


# ----- (a) plain transformers, as the model card shows ---------------------------------------------------------------
@pytest.fixture(scope="module")
def plain_models(exports) -> dict[str, tuple]:
    return {
        p: (AutoTokenizer.from_pretrained(p), AutoModelForSequenceClassification.from_pretrained(p).eval())
        for p in exports.values()
    }


@pytest.mark.parametrize("side, batch_size", [("right", 1), ("right", 7), ("right", 32), ("left", 7), ("left", 32)])
@pytest.mark.parametrize("key", EXPORTS, ids=EXPORT_IDS)
def test_transformers(key, side, batch_size, exports, reference, plain_models):
    """The model card's usage code, batched: padding must not move the reward."""
    tokenizer, model = plain_models[exports[key]]
    meta = metadata(exports[key])
    eos = tokenizer.eos_token if meta["append_eos"] else ""  # `text = prompt + response + eos` when the card says so
    texts = [p + r + eos for p, r in zip(*consumer_texts())]
    tokenizer.padding_side = side
    rewards = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            inputs = tokenizer(texts[start : start + batch_size], padding=True, return_tensors="pt")
            rewards.append(model(**inputs).logits[:, 0])
    flag = "transformers" if side == "right" else "transformers_left_padding"
    consumer = f"transformers, {side} padding, batch {batch_size}"
    check_cell(consumer, key, meta["consumers"], flag, torch.cat(rewards).numpy(), reference[key])


# ----- (b) TRL GRPO / RLOO: the trainers' own `_calculate_rewards` ----------------------------------------------------
@pytest.fixture(scope="module")
def reward_functions(exports) -> dict:
    from rm_trl.rl import RewardFunction

    return {key: RewardFunction(exports[key]) for key in EXPORTS}


@pytest.fixture(scope="module")
def trl_rewards(exports, reward_functions, tmp_path_factory, smol_tokenizer_dir) -> dict[str, np.ndarray]:
    """One GRPO and one RLOO trainer holding every export twice (folder path, then `RewardFunction`); column j of
    `[texts, 2 * len(EXPORTS)]` is reward function j."""
    import trl

    prompts, responses = consumer_texts()
    policy = make_policy(str(tmp_path_factory.mktemp("policy")), smol_tokenizer_dir)
    funcs = [exports[key] for key in EXPORTS] + [reward_functions[key] for key in EXPORTS]
    out = {}
    for name in ("GRPO", "RLOO"):
        args = getattr(trl, f"{name}Config")(
            output_dir=str(tmp_path_factory.mktemp(name)),
            per_device_train_batch_size=2,
            num_generations=2,
            max_completion_length=4,
            bf16=False,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
        )
        trainer = getattr(trl, f"{name}Trainer")(
            model=policy, reward_funcs=list(funcs), args=args, train_dataset=Dataset.from_dict({"prompt": prompts})
        )
        inputs = [{"prompt": p} for p in prompts]
        out[name] = trainer._calculate_rewards(inputs, prompts, responses, [[] for _ in prompts]).cpu().numpy()
    return out


@pytest.mark.parametrize("how", ["path", "function"])
@pytest.mark.parametrize("trainer", ["GRPO", "RLOO"])
@pytest.mark.parametrize("key", EXPORTS, ids=EXPORT_IDS)
def test_trl_online_trainers(key, trainer, how, exports, reference, trl_rewards):
    """TRL's own reward computation, for a folder path (TRL tokenizes) and for `RewardFunction` (rm-trl does)."""
    column = EXPORTS.index(key) + (len(EXPORTS) if how == "function" else 0)
    consumer = f'TRL {trainer}, reward_funcs="<folder>"' if how == "path" else f"TRL {trainer}, RewardFunction"
    flag = "trl_path" if how == "path" else "trl_reward_function"
    check_cell(
        consumer, key, metadata(exports[key])["consumers"], flag, trl_rewards[trainer][:, column], reference[key]
    )


# ----- (c) TRL PPO (trl 1.12, its own venv): `get_reward` on rollouts ------------------------------------------------
def ppo_cases(path: str) -> tuple[dict, dict[str, list[tuple[str, str]]]]:
    """Token ids of PPO rollouts for `tests/consumer_ppo.py`, and the (prompt, response) texts rm-trl scores."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    prompts, responses = (np.array(t, dtype=object)[PPO_ROWS].tolist() for t in consumer_texts())
    queries = [tokenizer(p)["input_ids"] for p in prompts]  # as TRL's PPO script tokenizes its prompts
    generated = [tokenizer(p + r)["input_ids"][len(q) :] for p, q, r in zip(prompts, queries, responses)]
    cut = min(len(g) for g in generated) - 1  # a max_new_tokens that stops every rollout before its end
    texts = {
        "full": list(zip(prompts, responses)),
        "cut": [(p, tokenizer.decode(g[:cut])) for p, g in zip(prompts, generated)],
    }

    def case(pad: int, rows: list[list[int]]) -> dict:
        return {"pad_token_id": pad, "eos_token_id": eos, "queries": queries, "responses": rows}

    pad = tokenizer.pad_token_id
    cases = {
        "eos": case(pad, [g + [eos] for g in generated]),
        "pad_is_eos": case(eos, [g + [eos] for g in generated]),
        "no_eos": case(pad, [g[:cut] for g in generated]),
        "empty": case(pad, [[eos] for _ in generated]),
        "empty_pad_is_eos": case(eos, [[eos] for _ in generated]),
    }
    return cases, texts


@pytest.fixture(scope="module")
def ppo(exports, scorers, tmp_path_factory) -> dict:
    if not os.path.exists(PPO_PYTHON):
        pytest.skip(f"TRL PPO needs trl <= 1.12 in its own venv, {PPO_PYTHON} is missing: run `make ppo-venv`")
    spec, references = {}, {}
    for key, path in exports.items():
        cases, texts = ppo_cases(path)
        spec["-".join(key)] = {"path": path, "cases": cases}
        references[key] = {k: scorers[key].score_texts([p for p, _ in v], [r for _, r in v]) for k, v in texts.items()}
    folder = tmp_path_factory.mktemp("ppo")
    (folder / "spec.json").write_text(json.dumps(spec))
    runner = os.path.join(REPO_ROOT, "tests", "consumer_ppo.py")
    proc = subprocess.run(
        [PPO_PYTHON, runner, str(folder / "spec.json"), str(folder / "out.json")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((folder / "out.json").read_text())
    return {"trl_version": out["trl_version"], "results": out["results"], "references": references}


@pytest.mark.parametrize("case", list(PPO_CASES))
@pytest.mark.parametrize("key", EXPORTS, ids=EXPORT_IDS)
def test_trl_ppo(key, case, exports, ppo):
    """PPO reads the score where its pad mask says the rollout ends, which is training's token only sometimes."""
    flag, description = PPO_CASES[case]
    consumer = f"TRL PPO ({ppo['trl_version']}), {description}"
    flags = metadata(exports[key])["consumers"]
    result = ppo["results"]["-".join(key)][case]
    if "error" in result:
        check_failure(consumer, key, flags, flag, result["error"])
        return
    want = ppo["references"][key]["cut" if case == "no_eos" else "full"]
    check_cell(consumer, key, flags, flag, result["scores"], want)


@pytest.mark.parametrize("key", EXPORTS, ids=EXPORT_IDS)
def test_trl_ppo_empty_rollouts(key, exports, ppo, reward_functions):
    """rm-trl gives no reward to an empty response (`RewardFunction` -> None, NaN in TRL); PPO scores the prompt."""
    prompts = np.array(consumer_texts()[0], dtype=object)[PPO_ROWS].tolist()
    assert reward_functions[key](prompts, [""] * len(prompts)) == [None] * len(prompts)
    flags = metadata(exports[key])["consumers"]
    for case, pad in (("empty", "pad != EOS"), ("empty_pad_is_eos", "pad == EOS")):
        consumer = f"TRL PPO ({ppo['trl_version']}), empty rollouts, policy {pad}"
        result = ppo["results"]["-".join(key)][case]
        if "error" in result:
            check_failure(consumer, key, flags, "trl_ppo_eos", result["error"])
            continue
        assert np.isfinite(result["scores"]).all()
        where = "the EOS after the prompt" if case == "empty" else "the prompt's last token"
        record(consumer, key, "-", "refused", f"rm-trl: none (refused); PPO: the score at {where}")


# ----- (d) `rm-trl score` and (e) OpenRLHF's remote reward model on `rm-trl serve`, in subprocesses ------------------
QUICK = [("minilm", "normalized"), ("smol_pad_eos", "normalized")]  # baked and stored normalisation (--normalize)
SUBPROCESS_PARAMS = [  # one Python start-up (~7 s) each: the rest only with the slow tests
    pytest.param(key, id=i, marks=() if key in QUICK else pytest.mark.slow) for key, i in zip(EXPORTS, EXPORT_IDS)
]


@pytest.mark.parametrize("key", SUBPROCESS_PARAMS)
def test_rm_trl_score(key, exports, reference, tmp_path):
    """The CLI a user scores files with, as the export's flag says to call it (`--normalize` when stored)."""
    flags = metadata(exports[key])["consumers"]
    prompts, responses = consumer_texts()
    Dataset.from_dict({"prompt": prompts, "response": responses}).to_json(tmp_path / "in.jsonl")
    command = [sys.executable, "-m", "rm_trl.cli", "score", "--model", exports[key], "--quiet"]
    command += ["--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out.jsonl")]
    command += ["--normalize"] if "--normalize" in flags["rm_trl_score"] else []
    proc = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = [json.loads(line)["reward"] for line in open(tmp_path / "out.jsonl", encoding="utf-8")]
    check_cell("rm-trl score", key, flags, "rm_trl_score", got, reference[key])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("key", SUBPROCESS_PARAMS)
def test_openrlhf_remote_reward_model(key, exports, reference, tmp_path):
    """OpenRLHF's remote reward client: `POST <url>/get_reward` with `{"query": [prompt + response], "prompts"}`
    (JSON), then `rewards` from the reply."""
    import httpx

    flags = metadata(exports[key])["consumers"]
    port = free_port()
    command = [sys.executable, "-m", "rm_trl.cli", "serve", "--model", exports[key], "--port", str(port)]
    command += ["--normalize"] if "--normalize" in flags["openrlhf_remote"] else []
    log = open(tmp_path / "server.log", "w+b")  # a file, not a pipe nobody reads: the server never blocks on it
    server = subprocess.Popen(command, env=ENV, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text(errors="replace")[-3000:]
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not come up in 120 s"
                time.sleep(0.5)
        prompts, responses = consumer_texts()
        eos = AutoTokenizer.from_pretrained(exports[key]).eos_token or ""  # decoded rollouts keep their EOS
        body = {"query": [p + r + eos for p, r in zip(prompts, responses)], "prompts": prompts}
        reply = httpx.post(f"{url}/get_reward", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        rewards = reply.json()["rewards"]
        check_cell("OpenRLHF remote RM -> rm-trl serve", key, flags, "openrlhf_remote", rewards, reference[key])
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
