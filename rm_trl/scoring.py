"""Score data with a trained reward model, tokenized exactly as in training, batched by length.

`RewardScorer` is the one scoring path of rm-trl: evaluation, the `rm-trl score` CLI and the reward server all use
it. Rows go through the same data pipeline as training (format detection, validation, the model's EOS rule,
truncation with counts), are sorted by length and packed into batches under a token budget (so little compute is
spent on padding), and the rewards are returned in the original row order.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import numpy as np
import torch
from datasets import Dataset

from .data.collators import RewardDataCollator
from .data.formats import FORMATS, detect_format
from .data.formats.pairwise import DEFAULT_TURN_MARKERS
from .data.formats.ranked import RANKED
from .data.formats.stepwise import STEPWISE
from .data.pipeline import (
    PROMPT_IDS,
    RESPONSE_IDS,
    REWARD_POSITIONS,
    ROW,
    PreparedData,
    prepare_dataset,
    prepare_for_scoring,
)
from .encoder_packing import padding_free_collator
from .ensemble_heads import attach_ensemble_heads
from .errors import ConfigError
from .metrics.calibration import preference_probabilities
from .metrics.stepwise import STEP_AGGREGATIONS, aggregate_steps, step_probabilities
from .modeling import get_metadata, load_reward_model, resolve_model_path
from .packing import PackedRewardDataCollator, attention_implementation, packing_support
from .reward_reading import has_token_head, padding_token_id, reward_reader
from .scored_data import ScoredData, ensemble_uncertainty, length_sorted_batches

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 2048


# One packed row holds at most about 3k tokens (4 characters a token): its attention runs under a custom mask (no
# fused kernel, L x L scores per head), so larger groups are split into rows of this size, each with the prompt.
PACK_MAX_CHARS = 12288
# A prompt under a quarter of its responses' mean length is not packed: on the benchmark's worst case (a 45-character
# prompt, 16 completions of 64 tokens) packing was 0.3x the padded path; hh-rlhf prompts pass (98%) and gain.
PACK_MIN_PROMPT_SHARE = 0.25


@contextlib.contextmanager
def no_progress_bars():
    """`datasets`' progress bars off for the block (restored after, if they were on)."""
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

    was_on = is_progress_bar_enabled()
    disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            enable_progress_bar()


class RewardScorer:
    """Scores datasets (pairwise, rated or ranked) with a reward model.

    Args:
        model / tokenizer: a loaded reward model and its tokenizer (see `from_pretrained`).
        max_length, truncation, append_eos: tokenization settings; by default those the model was trained with
            (recorded in its `rm_trl` config entry). The default truncation keeps rows (`truncate_prompt`) rather
            than dropping them, so an evaluation never loses test rows silently; truncated rows are counted.
        batch_tokens: padded tokens per forward (sequences x longest sequence).
        normalize: apply the reward normalisation stored in the export (`(r - mean) / std`) when the model did
            not bake it into its head; a no-op for baked or unnormalised models.
        step_aggregation: process reward models: how step rewards become one reward (`min`, `product`, `last`,
            `mean` of the step probabilities); by default the rule recorded in the export (`rm_trl.step_rewards`).
        padding_side: `right` (default) or `left` (decoders; explicit position ids): the rewards are the same either
            way and at any batch size (`tests/test_benchmarks.py`), unlike scorers that let padding move positions.
        prompt_once: decoders that support packing (`rm_trl.packing`) score the responses of a row (a pair, a list,
            or plain-text responses that share a prompt) in one sequence, the prompt encoded once and each response
            attending to it and itself: the same rewards (1e-5) for less compute. Listed encoders
            (`rm_trl.encoder_packing`) score each batch as one padding-free row, attention within each sequence
            (the model is switched to that attention; padded batches still read as with sdpa). `False` pads each
            (prompt, response) as its own sequence.

    `temperature` is the export's calibrated preference temperature (`rm_trl.calibration`, `docs/calibration.md`)
    in the units of the rewards this scorer returns (divided by the std when it applies stored normalisation),
    or None; `preference_probability` uses it. Rewards are never changed by it.
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        max_length: int | None = None,
        truncation: str = "truncate_prompt",
        append_eos: bool | None = None,
        batch_tokens: int = 16384,
        max_batch_rows: int = 256,
        device: str | torch.device | None = None,
        normalize: bool = False,
        step_aggregation: str | None = None,
        padding_side: str = "right",
        prompt_once: bool = True,
    ):
        metadata = get_metadata(model) or {}
        # a process reward model (`docs/process_rewards.md`): where its step rewards are read and how they combine
        self.steps: dict[str, Any] | None = metadata.get("step_rewards")
        self.step_aggregation = step_aggregation or (self.steps or {}).get("aggregation", "min")
        if self.step_aggregation not in STEP_AGGREGATIONS:
            raise ConfigError(
                f"step_aggregation={self.step_aggregation!r}; choose one of {', '.join(STEP_AGGREGATIONS)}"
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.metadata = metadata
        self.max_length = (
            max_length
            or metadata.get("max_length")
            or min(getattr(tokenizer, "model_max_length", DEFAULT_MAX_LENGTH), DEFAULT_MAX_LENGTH)
        )
        self.truncation = truncation
        self.append_eos = append_eos if append_eos is not None else metadata.get("append_eos")
        self.batch_tokens = batch_tokens
        self.max_batch_rows = max_batch_rows
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model.to(self.device)
        self.collator = RewardDataCollator(pad_token_id=padding_token_id(model, tokenizer), padding_side=padding_side)
        self.read_rewards = reward_reader(self.model)  # at the rows' reward positions (`rm_trl.reward_reading`)
        # decoders score a prompt's responses in one packed sequence, the prompt encoded once (`rm_trl.packing`)
        self.packed_collator = None
        if prompt_once and padding_side == "right" and packing_support(self.model)[0]:
            self.packed_collator = PackedRewardDataCollator(
                pad_token_id=tokenizer.pad_token_id, boolean_mask=attention_implementation(self.model) == "sdpa"
            )
        if prompt_once and padding_side == "right":  # encoders: padding-free batches, attention per sequence
            self.collator = padding_free_collator(self.model)[0] or self.collator
        if padding_side not in ("right", "left"):
            raise ConfigError(f"padding_side={padding_side!r}; choose right or left")
        if padding_side == "left" and not has_token_head(self.model):
            raise ConfigError(
                "padding_side='left' needs a decoder whose head scores every token; this model pools one state per "
                "sequence (e.g. BERT's [CLS], the first position), which left padding would fill with padding"
            )
        stats = metadata.get("normalization") or {}
        self.shift, self.scale = 0.0, 1.0
        if normalize and stats.get("applied") == "stored":
            self.shift, self.scale = float(stats["mean"]), float(stats["std"])
        elif stats.get("applied") == "stored":
            logger.warning(
                "This model stores its reward normalisation (mean %.4g, std %.4g) instead of baking it in: these are "
                "raw rewards; pass normalize=True (`--normalize`) for the normalised ones",
                stats["mean"],
                stats["std"],
            )
        # an ensemble (`rm_trl.ensemble`): logits[:, 0] is the heads' mean, logits[:, 1:] the heads
        self.ensemble: dict[str, Any] | None = metadata.get("ensemble")
        if self.ensemble and model.config.num_labels != self.ensemble["heads"] + 1:
            raise ConfigError(
                "an ensemble export's heads are read with RewardScorer.from_pretrained (it attaches "
                "ensemble_heads.safetensors); this model has only the mean"
            )
        stored_temperature = (metadata.get("calibration") or {}).get("temperature")
        self.temperature: float | None = None if stored_temperature is None else stored_temperature / self.scale

    def uncertainty(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """`mean`, `std` (over heads) and `conservative` reward (the export's recorded rule) from an ensemble's
        outputs `[..., 1 + E]` (`ScoredData.response_outputs`); `mean` is the exported `logits[..., 0]`."""
        if not self.ensemble:
            raise ConfigError("this model has one reward head: no ensemble uncertainty (train with ensemble_heads > 1)")
        return ensemble_uncertainty(outputs, self.ensemble)

    def preference_probability(self, first: np.ndarray | float, second: np.ndarray | float) -> np.ndarray:
        """`P(first preferred over second) = sigmoid((first - second) / T)` from rewards this scorer returned, with
        the export's calibrated temperature (`T = 1`, the training-time Bradley-Terry probability, without one)."""
        if self.steps:
            raise ConfigError(
                "a process reward model's reward is an aggregate of step probabilities, not a Bradley-Terry score: "
                "it has no preference probability"
            )
        margins = np.asarray(first, np.float64) - np.asarray(second, np.float64)
        return preference_probabilities(margins, self.temperature or 1.0)

    def compare_texts(self, prompts: list[str], first: list[str], second: list[str]) -> np.ndarray:
        """For each prompt, the probability that response `first[i]` is preferred over `second[i]`
        (`preference_probability` of their rewards; NaN where either cannot be scored)."""
        n = len(prompts)
        rewards = self.score_texts(list(prompts) * 2, list(first) + list(second))
        return self.preference_probability(rewards[:n], rewards[n:])

    @classmethod
    def from_pretrained(cls, path: str, **kwargs: Any) -> RewardScorer:
        """Load a saved reward model (full export or rm-trl adapter folder) and wrap it."""
        load_keys = ("dtype", "trust_remote_code", "revision", "attn_implementation")
        load_kwargs = {k: kwargs.pop(k) for k in load_keys if k in kwargs}
        model, tokenizer = load_reward_model(path, num_labels=None, **load_kwargs)
        ensemble = (get_metadata(model) or {}).get("ensemble")
        if ensemble and model.config.num_labels == 1:  # the heads, saved beside the mean (`rm_trl.ensemble_heads`)
            attach_ensemble_heads(model, resolve_model_path(path), ensemble["heads"])
        return cls(model, tokenizer, **kwargs)

    def prepare(self, dataset: Dataset, kind: str | None = None, split: str = "eval", **parse_options) -> PreparedData:
        """Validate and tokenize `dataset` for scoring in its format (detected from the columns by default), with
        the format's score-time options (rated: a `score` column is read only when there is one)."""
        kind = kind or detect_format(dataset.column_names)
        feedback_format = FORMATS[kind]
        parse_options.setdefault("turn_markers", DEFAULT_TURN_MARKERS)
        for name, value in self.format_options(kind).items():
            parse_options.setdefault(name, value)
        for name, value in feedback_format.score_options(dataset.column_names).items():
            parse_options.setdefault(name, value)
        return prepare_dataset(
            dataset,
            feedback_format.schema,
            self.tokenizer,
            split=split,
            max_length=self.max_length,
            truncation=self.truncation,
            invalid_rows=parse_options.pop("invalid_rows", "error"),
            append_eos=self.append_eos,
            parse_options=parse_options,
        )

    def prepare_scorable(
        self, dataset: Dataset, kind: str | None = None, truncation: str | None = None
    ) -> PreparedData:
        """Prepare `dataset` as `rm-trl score` reads it: every scorable row kept, training-only rules (ties,
        identical responses, gold scores) not applied, each other row in `not_kept` with the field at fault."""
        kind = kind or detect_format(dataset.column_names)
        return prepare_for_scoring(
            dataset,
            kind,
            self.tokenizer,
            max_length=self.max_length,
            append_eos=self.append_eos,
            truncation=truncation or self.truncation,
            turn_markers=DEFAULT_TURN_MARKERS,
            parse_options=self.format_options(kind),
        )

    def format_options(self, kind: str) -> dict[str, Any]:
        """Parse options the model itself sets: stepwise rows are split where the model reads its step rewards."""
        if kind != STEPWISE:
            return {}
        if not self.steps:
            raise ConfigError(
                "stepwise rows need a process reward model (trained by the stepwise family, with `step_rewards` in "
                "its config); this model gives one reward per response: score the solutions as rated rows instead"
            )
        return {"step_separator": self.steps["separator"], "steps_as_prefixes": self.steps.get("reading") == "prefix"}

    def aggregate(self, step_logits: np.ndarray) -> float:
        """One reward from a solution's step logits, by `step_aggregation` of the step probabilities."""
        return aggregate_steps(step_probabilities(step_logits), self.step_aggregation)

    def split_steps(self, text: str) -> list[str]:
        """A free-text completion's steps: the pieces between the export's `text_delimiter` that hold more than
        white space (each piece kept as written)."""
        delimiter = (self.steps or {}).get("text_delimiter") or "\n"
        return [piece for piece in text.split(delimiter) if piece.strip()]

    def score_step_lists(self, prompts: list[Any], step_lists: list[list[str]]) -> list[np.ndarray | None]:
        """Step logits of each (prompt, steps) solution; `None` where a solution cannot be scored (no steps, a step
        holding the separator, ...), never an exception for one bad item."""
        out: list[np.ndarray | None] = [None] * len(prompts)
        keep = [i for i, steps in enumerate(step_lists) if steps]
        if not keep:
            return out
        data = Dataset.from_dict({"prompt": [prompts[i] for i in keep], "completions": [step_lists[i] for i in keep]})
        scored = self.score_prepared(self.prepare_scorable(data, kind=STEPWISE))
        for row, logits in zip(scored.rows, scored.step_rewards()):
            out[keep[row]] = logits
        return out

    @torch.inference_mode()
    def score_prepared(self, prepared: PreparedData, progress: bool = False) -> ScoredData:
        data = prepared.dataset
        prompts, responses, positions = data[PROMPT_IDS], data[RESPONSE_IDS], data[REWARD_POSITIONS]
        packed = self.packed_collator is not None and any(len(rs) > 1 for rs in responses)
        collator = self.packed_collator if packed else self.collator
        if packed:  # one sequence per row: the prompt, then every response
            lengths = [len(p) + sum(len(r) for r in rs) for p, rs in zip(prompts, responses)]
            sizes = [1] * len(lengths)
        else:
            lengths = [len(p) + max(len(r) for r in rs) for p, rs in zip(prompts, responses)]
            sizes = [len(rs) for rs in responses]
        batches = length_sorted_batches(lengths, sizes, self.batch_tokens, self.max_batch_rows)
        rewards: list[np.ndarray | None] = [None] * len(data)
        iterator = batches
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(batches, desc="Scoring", unit="batch")
        for batch_rows in iterator:
            examples = [
                {ROW: i, PROMPT_IDS: prompts[i], RESPONSE_IDS: responses[i], REWARD_POSITIONS: positions[i]}
                for i in batch_rows
            ]
            batch = {k: v.to(self.device) for k, v in collator(examples).items()}
            read = self.read_rewards(self.model, batch).float().cpu().numpy()
            read = (read - self.shift) / self.scale
            start = 0
            for i in batch_rows:
                count = sum(len(p) for p in positions[i])
                rewards[i] = read[start : start + count]
                start += count
        return ScoredData(prepared=prepared, rewards=rewards)

    def score(self, dataset: Dataset, kind: str | None = None, progress: bool = False, **parse_options) -> ScoredData:
        """Validate, tokenize and score `dataset`; rows that cannot be scored raise (or are counted if skipped)."""
        return self.score_prepared(self.prepare(dataset, kind, **parse_options), progress=progress)

    def score_outputs(self, prompts: list[Any], responses: list[Any], scorable: bool = False) -> np.ndarray:
        """Every head output `[N, num_labels]` of `(prompt, response)` pairs (text or messages). Empty responses
        raise, or with `scorable` (scoring rules, as `rm-trl score` and RL reward functions read) get a NaN row like
        any response that cannot be scored. With `prompt_once`, responses sharing a prompt are scored as one packed
        group (`_grouped_outputs`); the rest, and groups that would need truncating, one by one."""
        out = np.full((len(prompts), self.model.config.num_labels), np.nan)
        with no_progress_bars():  # called per RL step or request: no bars from `datasets` on each call
            done = self._grouped_outputs(prompts, responses, out) if self.packed_collator is not None else set()
            rest = [i for i in range(len(prompts)) if i not in done]
            if rest:
                rows = {"prompt": [prompts[i] for i in rest], "response": [responses[i] for i in rest]}
                data = Dataset.from_dict(rows)
                prepared = self.prepare_scorable(data, kind="rated") if scorable else self.prepare(data, kind="rated")
                scored = self.score_prepared(prepared)
                for row, outputs in zip(scored.rows, scored.response_outputs()):
                    out[rest[row]] = outputs[0]
        return out

    def _grouped_outputs(self, prompts: list[Any], responses: list[Any], out: np.ndarray) -> set[int]:
        """Score the responses of each prompt given more than once as one ranked row (prompt once); fill `out`
        and return the indices done. Left to the one-by-one path: a group whose prompt is much shorter than its
        responses (`PACK_MIN_PROMPT_SHARE`: packing saves little and its custom attention mask is slower), and
        a group that does not fit `max_length` whole (its truncation would cut the prompt for the longest response,
        not for each). Large groups are split into rows of about `PACK_MAX_CHARS`."""
        groups: dict[str, list[int]] = {}
        for i, prompt in enumerate(prompts):
            key = prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, default=str)
            groups.setdefault(key, []).append(i)
        multi = []
        for key, members in groups.items():
            size = [
                len(r if isinstance(r, str) else json.dumps(r, default=str))
                for r in map(responses.__getitem__, members)
            ]
            mean_response = sum(size) / len(size)
            if len(members) < 2 or len(key) < PACK_MIN_PROMPT_SHARE * mean_response:
                continue  # a short prompt saves little and the packed row's custom mask costs more
            per_row = max(2, int((PACK_MAX_CHARS - len(key)) // max(mean_response, 1.0)))
            multi += [
                members[i : i + per_row] for i in range(0, len(members), per_row) if len(members[i : i + per_row]) > 1
            ]
        if not multi:
            return set()
        data = Dataset.from_dict(
            {
                "prompt": [prompts[members[0]] for members in multi],
                "completions": [[responses[i] for i in members] for members in multi],
            }
        )
        prepared = self.prepare_scorable(data, kind=RANKED, truncation="drop")
        done: set[int] = set()
        if len(prepared.dataset) == 0:
            return done
        scored = self.score_prepared(prepared)
        for row, outputs in zip(scored.rows, scored.response_outputs()):
            for k, i in enumerate(multi[row]):
                out[i] = outputs[k]
                done.add(i)
        return done

    def score_texts_uncertainty(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        """An ensemble's `[N, 3]` (mean, std, conservative) per `(prompt, response)` (NaN rows: not scorable)."""
        stats = self.uncertainty(self.score_outputs(prompts, responses))
        return np.stack([stats["mean"], stats["std"], stats["conservative"]], axis=1)

    def score_texts(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        """Rewards of `(prompt, response)` pairs given as plain text (empty responses raise). A process reward model
        splits each response into steps (`split_steps`) and aggregates their rewards (NaN: nothing to score)."""
        if self.steps:
            step_logits = self.score_step_lists(list(prompts), [self.split_steps(r) for r in responses])
            return np.array([np.nan if s is None else self.aggregate(s) for s in step_logits])
        return self.score_outputs(prompts, responses)[:, 0]
