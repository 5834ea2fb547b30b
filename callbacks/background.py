"""A one-thread queue of epoch analyses, finished in the order they were submitted.

``InformationPlane(asynchronous=True)`` captures an epoch's activations on the training thread
and hands the compression and estimation to this queue, so training goes on meanwhile. One
worker thread keeps the epochs in order (the one-method-per-curve rule reads earlier epochs), and
each job's values are those the synchronous path computes: nothing depends on timing. An epoch's
captured activations are held until its analysis is done, so a checkpoint can carry the epochs
still queued (:meth:`EpochQueue.pending`).
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import torch

from ibkit.analysis import InformationPlaneAnalysis
from ibkit.errors import Failure
from ibkit.history import EpochResult, EpochTiming

#: How the callback behaves when ``max_queued`` epochs are already waiting: the training loop
#: waits for the oldest, or the new epoch is skipped (a warning and a gap).
WHEN_FULL = ("wait", "skip")
#: Bytes of captured activations the queue holds when no count is set: as many epochs as fit,
#: and at least one (a ResNet-18's five layers at N = 5,000 take 2.5 GB: one epoch).
QUEUE_BYTES = 2 * 2**30


@dataclass
class QueuedEpoch:
    """One epoch handed to the queue: its captured activations and the job estimating them."""

    epoch: int
    activations: Mapping[str, torch.Tensor | Failure]
    capture_s: float
    future: Future

    @property
    def bytes(self) -> int:
        """Bytes of the activations held."""
        return sum(value.numel() * value.element_size() for value in self.activations.values()
                   if isinstance(value, torch.Tensor))

    def release(self) -> None:
        """Drop the activations (the analysis is done with them)."""
        self.activations = {}

    def state(self) -> dict[str, Any]:
        """The checkpoint entry: epoch, capture seconds and the activations (CPU tensors, or a failure's message)."""
        return {"epoch": self.epoch, "capture_s": self.capture_s,
                "activations": {layer: value.message if isinstance(value, Failure) else value.cpu()
                                for layer, value in self.activations.items()}}


def analysis_job(analysis: InformationPlaneAnalysis, epoch: int, activations: Mapping[str, torch.Tensor | Failure],
                 capture_s: float, device: torch.device) -> EpochResult:
    """Analyse one captured epoch, never raising: an error that escapes the analysis (``strict``, or
    before any layer) is the result's one failure, for the callback to raise on every rank."""
    try:
        return analysis.analyse_activations(activations, epoch, capture_s, device=device)
    except Exception as error:
        return EpochResult([], EpochTiming(epoch, capture_s, 0.0, 0.0), [Failure.of("analysis", error)])


def queued_from_state(entry: Mapping[str, Any]) -> tuple[int, dict[str, torch.Tensor | Failure], float]:
    """``(epoch, activations, capture seconds)`` of a checkpoint entry written by :meth:`QueuedEpoch.state`."""
    activations = {layer: value if isinstance(value, torch.Tensor) else Failure("capture", str(value))
                   for layer, value in entry["activations"].items()}
    return int(entry["epoch"]), activations, float(entry["capture_s"])


class EpochQueue:
    """Epoch jobs run one at a time, in a background thread (``background=True``) or at once on
    submission; :meth:`finished` hands back, in epoch order, the results of the jobs that are done."""

    def __init__(self, background: bool = True) -> None:
        self.background = background
        self._executor: ThreadPoolExecutor | None = None
        self._jobs: deque[QueuedEpoch] = deque()

    def __len__(self) -> int:
        """Epochs submitted whose results have not been handed back yet."""
        return len(self._jobs)

    def submit(self, epoch: int, activations: Mapping[str, torch.Tensor | Failure], capture_s: float,
               job: Callable[[], EpochResult]) -> None:
        """Queue ``job`` (the analysis of ``activations``) for ``epoch`` behind every earlier one (or run it now)."""
        if not self.background:
            future: Future = Future()
            future.set_result(job())
        else:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="ibkit-information-plane")
            future = self._executor.submit(job)
        queued = QueuedEpoch(epoch, activations, capture_s, future)
        future.add_done_callback(lambda _: queued.release())  # memory goes as soon as the epoch is estimated
        self._jobs.append(queued)

    def finished(self, wait: bool = False) -> Iterator[EpochResult]:
        """The results of the done jobs, oldest first; with ``wait``, of all jobs."""
        while self._jobs and (wait or self._jobs[0].future.done()):
            yield self._jobs.popleft().future.result()

    def pending(self) -> list[QueuedEpoch]:
        """The epochs whose jobs are not done yet, oldest first."""
        return [queued for queued in list(self._jobs) if not queued.future.done()]

    def capacity(self, limit: int | None) -> int:
        """How many epochs may wait: ``limit``, or with ``None`` as many as :data:`QUEUE_BYTES` hold,
        sized by the latest queued epoch (at least one)."""
        if limit is not None:
            return limit
        running = self.pending()
        return max(1, QUEUE_BYTES // max(running[-1].bytes, 1)) if running else 1

    def make_room(self, epoch: int, limit: int | None, when_full: str) -> bool:
        """Whether ``epoch`` may be queued with fewer than :meth:`capacity` jobs not done: with
        ``"wait"`` (:data:`WHEN_FULL`) always, after blocking until the oldest jobs are done; with
        ``"skip"`` only if there is room now (if not, a warning says the epoch is a gap)."""
        while len(running := self.pending()) >= self.capacity(limit):
            if when_full == "skip":
                warnings.warn(f"InformationPlane: epoch {epoch} is not analysed, {len(running)} epochs are still "
                              "being estimated (when_full='skip'); it is a gap in the plane", UserWarning, stacklevel=3)
                return False
            wait([running[0].future])
        return True

    def close(self, cancel: bool = False) -> None:
        """Stop the worker thread: after the queued jobs, or at once dropping those not started."""
        if self._executor is not None:
            self._executor.shutdown(wait=not cancel, cancel_futures=cancel)
            self._executor = None
        if cancel:
            self._jobs.clear()
