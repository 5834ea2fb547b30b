"""A one-thread queue of epoch analyses, finished in the order they were submitted.

``InformationPlane(asynchronous=True)`` captures an epoch's activations on the training thread
and hands the compression and estimation to this queue, so training goes on meanwhile. One
worker thread keeps the epochs in order (the one-method-per-curve rule reads earlier epochs), and
each job's values are those the synchronous path computes: nothing depends on timing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor


class EpochQueue:
    """Epoch jobs run one at a time in a background thread.

    A job returns ``None`` or the exception it caught; :meth:`finished` hands back, in epoch
    order, the jobs that are done.
    """

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._jobs: deque[tuple[int, Future]] = deque()

    def __len__(self) -> int:
        return len(self._jobs)

    def submit(self, epoch: int, job: Callable[[], BaseException | None]) -> None:
        """Queue ``job`` for ``epoch`` behind every earlier one."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="ibkit-information-plane")
        self._jobs.append((epoch, self._executor.submit(job)))

    def finished(self, wait: bool = False) -> Iterator[tuple[int, BaseException | None]]:
        """``(epoch, failure or None)`` of the done jobs, oldest first; with ``wait``, of all jobs."""
        while self._jobs and (wait or self._jobs[0][1].done()):
            epoch, future = self._jobs.popleft()
            yield epoch, future.result()

    def running(self) -> list[int]:
        """The epochs whose jobs are not done yet, oldest first."""
        return [epoch for epoch, future in list(self._jobs) if not future.done()]

    def close(self, cancel: bool = False) -> None:
        """Stop the worker thread: after the queued jobs, or at once dropping those not started."""
        if self._executor is not None:
            self._executor.shutdown(wait=not cancel, cancel_futures=cancel)
            self._executor = None
        if cancel:
            self._jobs.clear()
