"""The neighbour order ``k`` of the k-NN estimators and how many samples it needs."""

from __future__ import annotations

#: Fewest samples an estimate (each class's, with labels) takes with ``k="auto"``.
AUTO_MIN_SAMPLES = 10


class NeighbourOrder:
    """Mixin of the k-NN estimators: the neighbour order ``k`` and the samples it needs.

    ``k`` is an integer or ``"auto"``; :meth:`order` resolves it for a sample size and dimension.
    """

    k: int | str

    def order(self, n: int, d: int) -> int:
        """The neighbour order used for ``n`` samples in ``d`` dimensions."""
        raise NotImplementedError

    def min_samples(self, d: int) -> int:
        """Fewest samples an estimate (each class's, with labels) accepts in ``d`` dimensions."""
        return AUTO_MIN_SAMPLES if self.k == "auto" else int(self.k) + 1

    def sample_requirement(self, d: int) -> str:
        """Why :meth:`min_samples` samples are needed, for error messages."""
        if self.k == "auto":
            return f"k='auto' needs at least {AUTO_MIN_SAMPLES} samples per estimate (per class with labels)"
        return f"k={self.k} nearest neighbours need N > k"


def auto_order(preferred: int, n: int) -> int:
    """``preferred`` neighbours, but never more than a tenth of ``n`` samples (and at least one)."""
    return max(1, min(preferred, n // 10))
