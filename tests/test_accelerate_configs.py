"""Every accelerate config parses with Accelerate's own loader and says what the README says it does."""

import glob
import os

import pytest
from accelerate.commands.config.config_args import load_config_from_file

from .conftest import REPO_ROOT

CONFIGS = sorted(glob.glob(os.path.join(REPO_ROOT, "accelerate_configs", "*.yaml")))
EXPECTED = {
    "cpu.yaml": ("NO", 1),
    "multi_cpu.yaml": ("MULTI_GPU", 2),
    "single_gpu.yaml": ("NO", 1),
    "multi_gpu.yaml": ("MULTI_GPU", 8),
    "fsdp.yaml": ("FSDP", 8),
    "deepspeed_zero2.yaml": ("DEEPSPEED", 8),
    "deepspeed_zero3.yaml": ("DEEPSPEED", 8),
    "multi_node.yaml": ("MULTI_GPU", 16),
}


def test_every_expected_config_exists():
    assert sorted(os.path.basename(c) for c in CONFIGS) == sorted(EXPECTED)


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_parses(path):
    config = load_config_from_file(path)
    distributed_type, processes = EXPECTED[os.path.basename(path)]
    assert str(config.distributed_type).split(".")[-1] == distributed_type
    assert config.num_processes == processes
    if "deepspeed" in path:
        assert config.deepspeed_config["zero_stage"] == int(path[-6])
    readme = open(os.path.join(REPO_ROOT, "README.md")).read()
    assert f"accelerate_configs/{os.path.basename(path)}" in readme


def test_fsdp_config_builds_accelerates_plugin():
    from accelerate.utils import FullyShardedDataParallelPlugin

    config = load_config_from_file(os.path.join(REPO_ROOT, "accelerate_configs", "fsdp.yaml"))
    renamed = {"fsdp_version": "fsdp_version", "fsdp_offload_params": "cpu_offload"}  # config key -> plugin field
    kwargs = {renamed.get(k, k.removeprefix("fsdp_")): v for k, v in config.fsdp_config.items()}
    plugin = FullyShardedDataParallelPlugin(**kwargs)
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True  # full sharding (FSDP2)
    assert str(plugin.state_dict_type).endswith("FULL_STATE_DICT")  # one consolidated file at save
    assert plugin.cpu_ram_efficient_loading is True


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_configs_build_accelerates_plugin(stage):
    from accelerate.utils import DeepSpeedPlugin

    config = load_config_from_file(os.path.join(REPO_ROOT, "accelerate_configs", f"deepspeed_zero{stage}.yaml"))
    ds = config.deepspeed_config
    plugin = DeepSpeedPlugin(
        zero_stage=ds["zero_stage"],
        zero3_init_flag=ds["zero3_init_flag"],
        zero3_save_16bit_model=ds.get("zero3_save_16bit_model", False),
        offload_optimizer_device=ds["offload_optimizer_device"],
        offload_param_device=ds["offload_param_device"],
    )
    assert plugin.zero_stage == stage
    assert plugin.deepspeed_config["zero_optimization"]["stage"] == stage
