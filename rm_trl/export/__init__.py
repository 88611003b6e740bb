"""The export layer: everything between a trained model and the folder consumers load.

- `metadata`: the `rm_trl` entry of `config.json` (how the model was trained and how to feed it);
- `consumers`: per consumer (transformers, TRL, PPO, rm-trl score / serve), whether it reads the trained reward;
- `card`: the model card; `folder`: data report, metrics, tokenizer check around the weights;
- `heads`: exact head edits (attribute folding, baked normalisation); `normalize`: measuring the statistics;
- `calibration`: the preference temperature, fitted at export or on an existing export (`rm-trl calibrate`);
- `exporters`: one exporter per target (plain sequence classification today);
- `hub`: uploading the finished folder in one commit.

The trainer calls this layer (`RewardTrainer.save_reward_model`); nothing here imports the trainers. The layer
sits above scoring (normalisation measures rewards with `RewardScorer`), which reads an export's metadata with
`rm_trl.modeling.get_metadata`.
"""

from .calibration import calibrate_export, check_calibration_data, temperature_calibrator, write_calibration
from .card import card_header, write_model_card
from .consumers import CONSUMERS, consumer_flags
from .exporters import SequenceClassificationExporter
from .folder import check_tokenizer_roundtrip, finish_export_folder, save_metrics
from .heads import bake_normalization, fold_reward_head
from .metadata import METADATA_KEY, get_metadata, is_hub_id, library_versions, reward_token_rule, training_metadata
from .normalize import reward_normalizer

__all__ = [
    "CONSUMERS",
    "METADATA_KEY",
    "SequenceClassificationExporter",
    "bake_normalization",
    "calibrate_export",
    "card_header",
    "check_calibration_data",
    "check_tokenizer_roundtrip",
    "consumer_flags",
    "finish_export_folder",
    "fold_reward_head",
    "get_metadata",
    "is_hub_id",
    "library_versions",
    "reward_normalizer",
    "reward_token_rule",
    "save_metrics",
    "temperature_calibrator",
    "training_metadata",
    "write_calibration",
    "write_model_card",
]
