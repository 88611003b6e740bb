"""An ensemble export on disk: a standard one-output reward model whose head is the heads' mean, plus the heads.

Plain consumers (transformers, TRL's GRPO / RLOO path, TRL's PPO scripts, which load with `num_labels=1`) read the
mean as any reward model's `logits[:, 0]`: the mean of linear heads is one linear head, folded exactly. The heads
themselves go to `ensemble_heads.safetensors` beside the weights (E x hidden numbers); `attach_ensemble_heads` puts
them back behind the mean, so rm-trl's consumers read `[mean, head_1 .. head_E]` from one forward.
"""

from __future__ import annotations

import copy
import os

import torch
from safetensors.torch import load_file, save_file

from .errors import ModelLoadError

HEADS_FILE = "ensemble_heads.safetensors"


def head_linear_name(model, out_features: int) -> str:
    """The reward head's last linear layer (`score` for decoders, `classifier` for BERT-likes)."""
    name = None
    for module_name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and module.out_features == out_features:
            name = module_name
    if name is None:
        raise ValueError(f"no linear layer with {out_features} outputs in the reward head")
    return name


def _replace_linear(model, name: str, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, attr)
    new = torch.nn.Linear(old.in_features, weight.shape[0], bias=bias is not None)
    new.to(device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    setattr(parent, attr, new)


def _set_labels(model, labels: list[str]) -> None:
    model.config.num_labels = len(labels)
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}
    model.num_labels = len(labels)


def fold_to_mean(model, folder: str):
    """Save the E heads of a trained ensemble to `folder/ensemble_heads.safetensors` and return a copy of `model`
    with one output, the heads' mean (the trained model is left as it is)."""
    model = copy.deepcopy(model)
    heads = model.config.num_labels
    name = head_linear_name(model, heads)
    layer = model.get_submodule(name)
    tensors = {"weight": layer.weight.detach().float().cpu().contiguous()}
    if layer.bias is not None:
        tensors["bias"] = layer.bias.detach().float().cpu().contiguous()
    os.makedirs(folder, exist_ok=True)
    save_file(tensors, os.path.join(folder, HEADS_FILE), metadata={"layer": name, "heads": str(heads)})
    with torch.no_grad():
        _replace_linear(
            model,
            name,
            layer.weight.mean(dim=0, keepdim=True),
            None if layer.bias is None else layer.bias.mean().reshape(1),
        )
    _set_labels(model, ["reward"])
    return model


def attach_ensemble_heads(model, folder: str, heads: int):
    """Give a one-output ensemble export (`rm_trl.ensemble` in its config) its heads back, in place: outputs
    `[mean, head_1 .. head_E]`. The file must match the weights: the mean of its heads is the model's head."""
    from transformers.utils import cached_file

    path = cached_file(folder, HEADS_FILE, _raise_exceptions_for_missing_entries=False)
    if path is None:
        raise ModelLoadError(f"{folder} records an ensemble of {heads} heads but has no {HEADS_FILE}")
    tensors = load_file(path)
    weight, bias = tensors["weight"], tensors.get("bias")
    name = head_linear_name(model, 1)
    layer = model.get_submodule(name)
    if weight.shape != (heads, layer.in_features) or (bias is None) != (layer.bias is None):
        raise ModelLoadError(f"{path} holds heads of shape {tuple(weight.shape)}; the model needs ({heads}, ...)")
    mean = layer.weight.detach().float().cpu()
    if not torch.allclose(weight.mean(dim=0, keepdim=True), mean, atol=1e-5, rtol=1e-4):
        raise ModelLoadError(f"{path} does not belong to these weights: the mean of its heads is not the model's head")
    full_weight = torch.cat([mean, weight])
    full_bias = None if bias is None else torch.cat([layer.bias.detach().float().cpu(), bias])
    _replace_linear(model, name, full_weight, full_bias)
    _set_labels(model, ["reward"] + [f"head_{i}" for i in range(heads)])
    return model
