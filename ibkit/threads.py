"""How many threads one estimate may use for its own parallel work.

An estimate parallelises its neighbour searches and its block standard errors over the CPU's
cores (``torch.get_num_threads()``). The information plane runs several layers' estimates at once
in its own threads, which already share the cores: inside them each estimate runs on one thread
(:func:`one_thread_per_estimate`), so that threads never multiply. The setting is a context
variable: it holds in the thread (or task) that sets it, and in the copies of its context that
the plane hands to its workers.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch

_THREADS: ContextVar[int | None] = ContextVar("ibkit_estimate_threads", default=None)


def estimate_threads() -> int:
    """The threads an estimate may use here: one inside :func:`one_thread_per_estimate`, else torch's."""
    return _THREADS.get() or torch.get_num_threads()


@contextmanager
def one_thread_per_estimate() -> Iterator[None]:
    """Inside the block, estimates (and the block estimates of their standard errors) use one thread."""
    token = _THREADS.set(1)
    try:
        yield
    finally:
        _THREADS.reset(token)


def in_callers_context(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` run, in whatever thread, in a copy of the calling thread's context variables
    (this module's thread setting, an enclosing ``collect_warnings``)."""
    context = contextvars.copy_context()
    return lambda *args: context.copy().run(function, *args)
