"""Seeded randomness that never touches the process-wide torch generator.

Background estimation runs in a worker thread beside the training loop. Seeding the process-wide
generator there (``torch.manual_seed`` inside ``torch.random.fork_rng``) races with the training
thread: the network under training draws numbers from a stream that the worker has just reseeded,
and the worker's networks start from weights that depend on when the training thread drew. Two
runs then differ for no reason, and a plane estimated in the background differs from the same
plane estimated synchronously.

:func:`seeded` fixes that for code that cannot be handed a generator, such as a module's
``reset_parameters``: inside the block, every torch random draw made *by the calling thread*
comes from a private ``torch.Generator`` seeded with ``seed``. It works through a
``TorchFunctionMode``, which torch keeps per thread, so other threads are unaffected. A random
operation that cannot take a generator (dropout, ``rand_like``) is an error inside the block,
rather than a silent draw from the shared stream.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

#: Built-in random operations that take a ``generator=`` keyword.
TAKE_A_GENERATOR = frozenset({
    torch.rand, torch.randn, torch.randint, torch.randperm, torch.normal, torch.bernoulli, torch.multinomial,
    torch.poisson, torch.Tensor.uniform_, torch.Tensor.normal_, torch.Tensor.random_, torch.Tensor.exponential_,
    torch.Tensor.cauchy_, torch.Tensor.log_normal_, torch.Tensor.geometric_, torch.Tensor.bernoulli_,
    torch.Tensor.bernoulli, torch.Tensor.multinomial,
})
#: Random operations that draw from the process-wide generator and cannot be given another.
SHARED_STREAM_ONLY = frozenset({
    torch.rand_like, torch.randn_like, torch.randint_like, F.dropout, F.dropout1d, F.dropout2d, F.dropout3d,
    F.alpha_dropout, F.feature_alpha_dropout, F.rrelu, F.gumbel_softmax,
})


@functools.lru_cache(maxsize=1024)
def _takes_generator(func: Callable) -> bool:
    """Whether a Python-level torch function (``torch.nn.init.*``) has a ``generator`` parameter."""
    try:
        return "generator" in inspect.signature(func).parameters
    except (TypeError, ValueError):  # a built-in without a signature
        return False


class _PrivateGenerator(TorchFunctionMode):
    """Routes the calling thread's random draws to one generator (see :func:`seeded`)."""

    def __init__(self, generator: torch.Generator):
        super().__init__()
        self.generator = generator

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = dict(kwargs or {})
        if func in TAKE_A_GENERATOR or _takes_generator(func):
            if kwargs.get("generator") is None:
                kwargs["generator"] = self.generator
        elif func in SHARED_STREAM_ONLY and _draws(func, args, kwargs):
            raise RuntimeError(f"{getattr(func, '__name__', func)} draws from torch's process-wide generator, which "
                               "ibkit must not use outside the training thread; build networks without it")
        return func(*args, **kwargs)


def _draws(func: Callable, args: tuple, kwargs: dict) -> bool:
    """Whether a call of a shared-stream operation draws (a dropout with ``p = 0`` or not training does not)."""
    try:
        call = inspect.signature(func).bind(*args, **kwargs)
    except (TypeError, ValueError):  # a built-in such as rand_like: always draws
        return True
    call.apply_defaults()
    return bool(call.arguments.get("training", True)) and float(call.arguments.get("p", 1.0)) > 0.0


@contextmanager
def seeded(seed: int) -> Iterator[torch.Generator]:
    """Inside the block, the calling thread's torch random draws come from a CPU generator seeded
    with ``seed`` (yielded), never from the process-wide one; other threads are unaffected.

    Use it to build networks reproducibly anywhere (a worker thread included)::

        with seeded(0):
            critic = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 1))

    Raises:
        RuntimeError: inside the block, a random operation that cannot take a generator
            (dropout while training, ``rand_like``) is called.
    """
    generator = torch.Generator().manual_seed(int(seed))
    with _PrivateGenerator(generator):
        yield generator
