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
