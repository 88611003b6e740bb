"""Export targets: how the trained model becomes the checkpoint consumers load from the export folder.

An exporter takes the trained model (a LoRA model is merged first), applies the family's head transform (e.g.
folding attribute heads into one reward) and the reward normalisation, records the consumer flags, and writes
the weights, config and tokenizer. `SequenceClassificationExporter` writes a plain
`AutoModelForSequenceClassification` checkpoint whose `logits[:, 0]` is the reward; step rewards and ensembles
add their own exporters beside it (a trainer picks one with `RewardTrainer.exporter`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from accelerate.utils import is_peft_model
from transformers import PreTrainedModel

from .consumers import consumer_flags
from .metadata import METADATA_KEY

HeadTransform = Callable[[PreTrainedModel, str], PreTrainedModel]
Normalizer = Callable[[PreTrainedModel], tuple[PreTrainedModel, dict[str, Any]]]
Calibrator = Callable[[PreTrainedModel], dict[str, Any]]


@dataclass
class SequenceClassificationExporter:
    """A plain sequence-classification checkpoint (merged when trained with LoRA).

    Args:
        transform: the family's head transform, `(model, output_dir) -> model` (it may save extra folders, such
            as the unfolded attribute model); `None` keeps the model as it is.
        normalizer: measures rewards and returns the normalised model and its statistics (`rm_trl.export.
            normalize`); `None` leaves rewards raw.
        calibrator: fits the preference temperature on the final model's logits and returns the
            `rm_trl.calibration` entry (`rm_trl.export.calibration`); it never changes the model.
        metadata_updates: entries the head transform changes (e.g. `ensemble` and `num_labels` when the heads'
            mean is put in front of the heads), merged into the metadata before the consumer flags.
    """

    transform: HeadTransform | None = None
    normalizer: Normalizer | None = None
    calibrator: Calibrator | None = None
    metadata_updates: dict[str, Any] | None = None
    target: ClassVar[str] = "sequence_classification"

    def export(
        self, model: PreTrainedModel, tokenizer, output_dir: str, metadata: dict[str, Any], weights_saved: bool
    ) -> dict[str, Any]:
        """Write the main export into `output_dir` and return the final metadata. `weights_saved`: the Trainer
        has already saved these very weights there, so only a changed model (or its config) is written again.
        Merging a LoRA model happens in place: train no further with it afterwards."""
        peft = is_peft_model(model)
        final = model.merge_and_unload() if peft else model
        exported = self.transform(final, output_dir) if self.transform is not None else final
        metadata.update(self.metadata_updates or {})
        if self.normalizer is not None:
            exported, metadata["normalization"] = self.normalizer(exported)
        if self.calibrator is not None:  # on the logits consumers read: after the head transform and normalisation
            metadata["calibration"] = self.calibrator(exported)
        metadata["consumers"] = consumer_flags(metadata)  # after normalisation: baked or stored changes them
        setattr(exported.config, METADATA_KEY, metadata)
        if peft or exported is not final or not weights_saved:
            exported.save_pretrained(output_dir)
            tokenizer.save_pretrained(output_dir)
        else:  # only the metadata may have grown (normalisation, calibration, consumer flags)
            exported.config.save_pretrained(output_dir)
        return metadata
