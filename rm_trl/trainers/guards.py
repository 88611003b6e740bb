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
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if requested is None:
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        requested = max(1, cores // max(1, local_processes))
        busy = busy_cores()
        if requested > 1 and busy is not None and busy > 0.5 * cores:
            logger.warning(
                "%.1f of %d cores are busy with other work: %d torch threads will wait for each other (on a 2-core "
                "machine with another training running, 2 threads were 4x slower than 1, `benchmarks/RESULTS.md`); "
                "pass `cpu_threads` to choose",
                busy,
                cores,
                requested,
            )
    if torch.get_num_threads() != requested:
        logger.info("Using %d torch threads per process on CPU (was %d)", requested, torch.get_num_threads())
        torch.set_num_threads(requested)


def busy_cores(seconds: float = 0.1) -> float | None:
    """How many cores other processes keep busy right now (from /proc/stat over `seconds`, while this process is
    setting up and idle); None where /proc/stat is not readable."""
    import time

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            values = [int(v) for v in f.readline().split()[1:9]]  # user .. steal (guest time is inside user)
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values) - idle, sum(values)

    try:
        busy_before, total_before = sample()
        time.sleep(seconds)
        busy_after, total_after = sample()
    except (OSError, ValueError, IndexError):
        return None
    elapsed = total_after - total_before
    cores = os.cpu_count() or 1
    return cores * (busy_after - busy_before) / elapsed if elapsed > 0 else None
