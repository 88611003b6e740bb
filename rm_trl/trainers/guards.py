"""Run-time guards every reward trainer gets: a non-finite loss stops (or skips) with the rows named, and CPU
runs use the cores they have."""

from __future__ import annotations

import functools
import logging
import os

import torch

logger = logging.getLogger(__name__)


def guard_nonfinite_loss(compute_loss):
    """Wrap a family's `compute_loss`: a NaN / inf training loss raises naming the step and rows
    (`nonfinite_loss: error`) or becomes a zero-gradient step that is counted (`skip`), decided alike on every
    process."""

    @functools.wraps(compute_loss)
    def guarded(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        result = compute_loss(self, model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        if not model.training:
            return result
        loss = result[0] if return_outputs else result
        finite = torch.isfinite(loss.detach()).float()
        if self.accelerator.num_processes > 1:  # every process must take the same decision
            finite = self.accelerator.gather(finite.reshape(1)).min()
        if finite.item() == 1.0:
            return result
        step, rows = self.state.global_step + 1, inputs["row"].tolist()
        if self.args.nonfinite_loss == "error":
            raise FloatingPointError(
                f"non-finite training loss at step {step} on this process's batch of rows {rows[:32]} "
                f"(loss {loss.item()}); check those rows and the learning rate / precision, or set "
                "`nonfinite_loss: skip` to skip such batches (they are counted)"
            )
        self.skipped_nonfinite_batches += 1
        logger.warning("Skipped a batch with a non-finite loss at step %d (rows %s)", step, rows[:32])
        # A zero that reaches every trainable parameter: no update from this batch, and data-parallel gradient
        # synchronisation still sees a backward pass on every process.
        zero = sum((p * 0).sum() for p in model.parameters() if p.requires_grad)
        return (zero, result[1]) if return_outputs else zero

    return guarded


def set_cpu_threads(requested: int | None) -> None:
    """Use the cores this process may run on, shared among the processes of this machine."""
    if requested is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        requested = max(1, cores // max(1, local_processes))
    if torch.get_num_threads() != requested:
        logger.info("Using %d torch threads per process on CPU (was %d)", requested, torch.get_num_threads())
        torch.set_num_threads(requested)
