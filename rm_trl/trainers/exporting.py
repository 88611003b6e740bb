"""The trainer's side of the export contract: record the metadata, call the export layer, upload the result.

The work is done by `rm_trl.export` (metadata, exporters, normalisation, card, Hub upload); this mixin only
hands it what the trainer holds (the unwrapped model, tokenizer, data reports, settings).
"""

from __future__ import annotations

import os
from typing import Any

from accelerate.utils import is_peft_model
from transformers import PreTrainedModel

from ..export import (
    METADATA_KEY,
    SequenceClassificationExporter,
    check_calibration_data,
    finish_export_folder,
    reward_normalizer,
    temperature_calibrator,
    training_metadata,
    write_model_card,
)
from ..export.hub import push_finished_export


class ExportingMixin:
    """Export methods of `RewardTrainer` (needs the Trainer's `accelerator`, `args`, `save_model`, ...)."""

    def _record_metadata(self) -> None:
        """Record the `rm_trl` config entry at the start, so checkpoints carry it too; with
        `calibrate_temperature`, check first that the eval split can be calibrated on (fail before training)."""
        if self.args.calibrate_temperature:
            check_calibration_data(self.prepared, self.schema.name, self._calibration_score_columns())
        model = _base_model(self.accelerator.unwrap_model(self.model))
        prepared = self.prepared.get("train") or next(iter(self.prepared.values()), None)
        data = {"layout": prepared.layout, "template": prepared.template} if prepared is not None else {}
        metadata = training_metadata(
            model, self.processing_class, self.args, family=self.family, loss=self.loss_description(), **data
        )
        setattr(model.config, METADATA_KEY, metadata)

    def reward_metadata(self) -> dict[str, Any]:
        return dict(getattr(_base_model(self.accelerator.unwrap_model(self.model)).config, METADATA_KEY, {}) or {})

    def export_transform(self, model: PreTrainedModel, output_dir: str) -> PreTrainedModel:
        """Family hook, run on the main process after training: return the model the main export should hold
        (e.g. attribute heads folded into one reward). The default keeps `model` as it is."""
        return model

    def exporter(self) -> SequenceClassificationExporter:
        """The main export's target: a plain sequence-classification checkpoint, normalised and calibrated if
        asked."""
        normalizer = reward_normalizer(self.processing_class, self.prepared) if self.args.normalize_rewards else None
        calibrator = None
        if self.args.calibrate_temperature:
            columns = self._calibration_score_columns()
            calibrator = temperature_calibrator(
                self.processing_class, self.prepared["eval"], self.schema.name, columns[0] if columns else "score"
            )
        return SequenceClassificationExporter(
            transform=self.export_transform, normalizer=normalizer, calibrator=calibrator
        )

    def _calibration_score_columns(self) -> list[str] | None:
        """The gold score column(s) of rated data (pairs of same-prompt responses are ordered by them)."""
        return list(getattr(self.args, "score_columns", None) or []) or None

    def save_reward_model(
        self,
        output_dir: str | None = None,
        metrics: dict[str, float] | None = None,
        datasets: list[str] | None = None,
    ) -> str:
        """Save the portable export: a plain sequence-classification model + tokenizer + model card + data report.

        With LoRA, the adapter goes to `<output_dir>/adapter` and (if `export_merged`) the merged model to
        `output_dir`; merging happens in place, so train no further with this trainer afterwards.
        """
        output_dir = output_dir or self.args.output_dir
        model = self.accelerator.unwrap_model(self.model)
        peft = is_peft_model(model)
        metadata = self.reward_metadata()
        metadata["data"] = {name: report.summary() for name, report in self.data_reports.items()}
        if datasets:
            metadata["datasets"] = list(datasets)
        setattr(_base_model(model).config, METADATA_KEY, metadata)
        self.save_model(os.path.join(output_dir, "adapter") if peft else output_dir)  # all ranks: sharded states
        export_main = not peft or self.args.export_merged
        if self.args.should_save:
            if export_main:
                metadata = self.exporter().export(model, self.processing_class, output_dir, metadata, not peft)
            tokenizer = self.processing_class if export_main else None
            finish_export_folder(output_dir, metadata, self.data_reports, metrics, self.args.hub_model_id, tokenizer)
        self.accelerator.wait_for_everyone()
        return output_dir

    def push_to_hub(self, commit_message: str | None = None, blocking: bool = True, token: str | None = None, **kwargs):
        """Upload the finished export folder to `hub_model_id` in one commit (see `rm_trl.export.hub`); the export
        is saved first if `save_reward_model` has not run. Returns the commit URL on the main process."""
        output_dir = self.args.output_dir
        if not os.path.isfile(os.path.join(output_dir, "data_report.json")):
            self.save_reward_model(output_dir)
        if not self.is_world_process_zero():
            return None
        return push_finished_export(
            output_dir,
            self.args.hub_model_id,
            token=token or self.args.hub_token,
            private=self.args.hub_private_repo,
            revision=kwargs.get("revision") or self.args.hub_revision,
            commit_message=commit_message or f"rm-trl {self.family} reward model",
        )

    def create_model_card(self, *args, **kwargs) -> None:
        """The Trainer's generic card would replace rm-trl's (written with metrics by `save_reward_model`)."""
        if self.args.should_save and not os.path.isfile(os.path.join(self.args.output_dir, "README.md")):
            write_model_card(self.args.output_dir, self.reward_metadata(), model_ref=self.args.hub_model_id)


def _base_model(model: PreTrainedModel) -> PreTrainedModel:
    """The model under a PEFT wrapper (whose config carries the metadata)."""
    return model.get_base_model() if is_peft_model(model) else model
