"""The one error that means "these data cannot be estimated", and the record of a failed step.

Every check of the data an estimate is made from (NaN or infinite values, too few samples, zero
variance, a class with too few members, an implausible result) raises :class:`DataError`. It is
a ``ValueError``, so ``except ValueError`` still catches it, but it is the only error the
information plane turns into a gap in a curve: any other exception, a ``ValueError`` from a bad
parameter included, is a bug or a resource failure and is raised.

A step that failed travels as a :class:`Failure` (what failed, why, and whether it was the data),
never as an exception passed around as a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class DataError(ValueError):
    """The data cannot be estimated: NaN/inf values, too few samples, zero variance, an implausible estimate."""


@dataclass(frozen=True)
class Failure:
    """Why one step of a layer's analysis produced no value.

    Attributes:
        step: what failed: ``"capture"``, ``"compression"``, ``"I(X;L)"``, ``"I(Y;L)"``, ...
        message: the error's message, shown in warnings, tables and the CSV.
        data: whether the data were at fault (a :class:`DataError`): a gap, not a bug.
        error: the exception itself, kept to be raised with its traceback (not saved in
            checkpoints, not compared).
    """

    step: str
    message: str
    data: bool = True
    error: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, step: str, error: BaseException) -> Failure:
        """The failure of ``step`` that raised ``error``."""
        return cls(step, str(error), isinstance(error, DataError), error)

    def exception(self) -> BaseException:
        """The exception to raise for this failure (the original one where it is known)."""
        if self.error is not None:
            return self.error
        return DataError(self.message) if self.data else RuntimeError(self.message)
