"""Principal component analysis in torch, on the data's own device, with deterministic signs.

Narrow data get their exact principal axes (an eigendecomposition in float64). Wide data (a
convolutional layer of 65,536 units) get them from a randomized subspace iteration (Halko,
Martinsson & Tropp, SIAM Review 2011) that works on the data as they are: no float64 copy and no
centred copy, only ``N × (k + OVERSAMPLING)`` numbers besides the data, and a few passes of
matrix products over them.
"""

from __future__ import annotations

from typing import Any

import scipy.linalg
import torch

from ibkit.compression.base import Compressor, as_float_batch
from ibkit.errors import DataError
from ibkit.validation import check_choice, check_positive_int

SOLVERS = ("auto", "exact", "randomized")
#: Features from which ``solver="auto"`` finds the axes by the randomized solver.
RANDOMIZED_MIN_FEATURES = 512
#: Random directions beyond the ``k`` wanted, and subspace iterations, of the randomized solver.
OVERSAMPLING = 10
SUBSPACE_ITERATIONS = 4
#: Rows summed at once in the data's own precision for the column moments.
MOMENT_ROWS = 256


class PCA(Compressor):
    """Project flattened samples onto their leading principal axes.

    Exact solver: the axes are the top eigenvectors of the sample covariance (``eigh`` in
    float64) when there are at least as many samples as features, and the top right singular
    vectors of the centred data (thin SVD, float64) otherwise; the cost is one ``d×d``
    covariance product and a partial eigendecomposition. Randomized solver: ``k + OVERSAMPLING``
    seeded random directions refined by ``SUBSPACE_ITERATIONS`` rounds of products with the data
    (centred implicitly, in the data's own precision), then the exact axes of the small projected
    matrix; its axes are the exact ones up to the decay of the spectrum beyond ``k`` (measured
    in the README, *Scale*). Each axis is signed so that its largest-magnitude loading is
    positive (the convention of scikit-learn's ``svd_flip`` on the components), so fitting twice
    on the same data gives identical codes.

    Args:
        n_components: number of leading components to keep. It is capped at
            ``min(n_features, n_samples)`` by :meth:`fit`; the value used is ``n_components_``.
        solver: ``"exact"``, ``"randomized"`` or ``"auto"`` (randomized from
            ``RANDOMIZED_MIN_FEATURES`` features on).
        seed: seeds the random directions of the randomized solver.

    Attributes (after :meth:`fit`; tensors on the fitting data's device, float64):
        mean_: ``(d,)`` per-feature mean of the training data.
        components_: ``(n_components_, d)`` orthonormal principal axes, by decreasing variance.
        explained_variance_: ``(n_components_,)`` variance along each axis (``N − 1`` divisor),
            in squared input units.
        explained_variance_ratio_: ``(n_components_,)`` share of the total variance.
        n_components_: number of components kept.
        feature_shape_: per-sample shape of the training data.

    Shapes:
        ``transform``: ``(N, ...)`` with ``d`` features per sample -> ``(N, n_components_)``.
        ``inverse_transform``: ``(N, n_components_)`` -> ``(N, *feature_shape_)``.
    """

    def __init__(self, n_components: int, solver: str = "auto", seed: int = 0) -> None:
        self.n_components = check_positive_int(n_components, "n_components")
        self.solver = check_choice(solver, "solver", SOLVERS)
        self.seed = seed

    def fit(self, x: Any) -> PCA:
        """Fit the principal axes to ``x``, ``(N, ...)`` with ``N >= 2``; returns ``self``."""
        data = as_float_batch(x, "x", min_samples=2)
        flat = data.reshape(data.shape[0], -1)
        n, d = flat.shape
        k = min(self.n_components, d, n)
        if self._randomized(n, d, k):
            mean, total_variance = column_moments(flat)
            axes, variances = randomized_axes(flat, mean, k, self.seed)
        else:
            mean, axes, variances, total_variance = exact_axes(flat, k)
        if float(total_variance) <= 0.0:
            raise DataError(f"x is constant (all {n} samples are identical): no principal axes")
        largest = axes.abs().argmax(dim=1, keepdim=True)
        self.mean_ = mean
        self.components_ = axes * torch.sign(axes.gather(1, largest))
        self.explained_variance_ = variances
        self.explained_variance_ratio_ = variances / total_variance
        self.n_components_ = k
        self.feature_shape_ = tuple(data.shape[1:])
        return self

    def fit_transform(self, x: Any) -> torch.Tensor:
        """Fit to ``x`` and return its codes ``(N, n_components_)``, in ``x``'s dtype."""
        return self.fit(x).transform(x)

    def _randomized(self, n: int, d: int, k: int) -> bool:
        """Whether the randomized solver finds the axes (it needs room for its extra directions)."""
        room = k + OVERSAMPLING < min(n, d)
        if self.solver == "auto":
            return room and d >= RANDOMIZED_MIN_FEATURES
        return room and self.solver == "randomized"

    def transform(self, x: Any) -> torch.Tensor:
        """Codes ``(x − mean_) @ components_.T``: ``(N, n_components_)``, ``x``'s device and dtype.

        Computed as ``x @ components_.T`` in ``x``'s precision (one matrix product, whatever the
        memory layout of ``x``: no copy of it) minus the mean's projection in float64.
        """
        self._check_fitted()
        data = as_float_batch(x, "x")
        self._check_features(data)
        flat = data.reshape(data.shape[0], -1)
        components = self.components_.to(flat.device)
        codes = (flat @ components.T.to(flat.dtype)).double() - self.mean_.to(flat.device) @ components.T
        return codes.to(data.dtype)

    def inverse_transform(self, codes: Any) -> torch.Tensor:
        """Map codes back to input space: ``(N, n_components_)`` -> ``(N, *feature_shape_)``.

        Exact (up to rounding) for data in the span of the kept components: with all
        ``min(N, d)`` components kept, for any input when ``N >= d`` and for the training
        samples otherwise.
        """
        self._check_fitted()
        values = as_float_batch(codes, "codes")
        if values.ndim != 2 or values.shape[1] != self.n_components_:
            raise ValueError(
                f"codes must have shape (N, {self.n_components_}), got {tuple(values.shape)}"
            )
        device = values.device
        flat = values.to(torch.float64) @ self.components_.to(device) + self.mean_.to(device)
        return flat.reshape(values.shape[0], *self.feature_shape_).to(values.dtype)

    def __repr__(self) -> str:
        return f"PCA(n_components={self.n_components}, solver={self.solver!r}, seed={self.seed})"


def exact_axes(flat: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mean (d,), axes (k, d), variances (k,), total variance)`` of ``(N, d)`` data, exactly, in float64."""
    centred = flat.to(torch.float64, copy=True)
    n, d = centred.shape
    mean = centred.mean(dim=0)
    centred -= mean
    if d <= n:
        covariance = centred.T @ centred
        eigenvalues, eigenvectors = top_eigenpairs(covariance, k)
        return mean, eigenvectors.T, eigenvalues.clamp_min(0.0) / (n - 1), covariance.trace() / (n - 1)
    _, singular_values, axes = torch.linalg.svd(centred, full_matrices=False)
    variances = singular_values.square() / (n - 1)
    return mean, axes[:k], variances[:k], variances.sum()


def column_moments(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The column means ``(d,)`` and the total variance (summed over columns, ``N − 1`` divisor) of
    ``(N, d)`` data, float64: sums over ``MOMENT_ROWS`` rows (or columns, for data stored column
    by column) in the data's own precision, accumulated in float64 (no float64 copy of the data)."""
    n, d = flat.shape
    if flat.stride(0) == 1 and d > 1:  # stored column by column: reduce along the contiguous axis
        # The sums go into one preallocated vector: a small result kept per block after each
        # block's float64 cast left the casts' memory as heap holes, and the process grew by a
        # float64 copy of the whole layer (measured: 1.8 GB for 4,000 × 60,000).
        sums = torch.empty(d, dtype=torch.float64, device=flat.device)
        squares = 0.0
        for start, block in zip(range(0, d, MOMENT_ROWS), flat.T.split(MOMENT_ROWS)):
            wide = block.double()
            torch.sum(wide, dim=1, out=sums[start:start + wide.shape[0]])
            squares += float(wide.square().sum())
    else:
        sums = torch.zeros(d, dtype=torch.float64, device=flat.device)
        squares = 0.0
        for rows in flat.split(MOMENT_ROWS):
            sums += rows.sum(dim=0)
            squares += float((rows.double() ** 2).sum())
    mean = sums / n
    return mean, (squares - n * float(mean.square().sum())) / (n - 1)


def orthonormal_columns(matrix: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of the columns of a tall ``(m, q)`` matrix, in its dtype: CholeskyQR
    twice with the small ``q × q`` Gram matrices in float64 (far faster than a Householder QR of a
    65,536 × 16 matrix, and as accurate after the second pass)."""
    basis = matrix
    for _ in range(2):
        gram = basis.T.double() @ basis.double()
        factor = torch.linalg.cholesky(gram + torch.finfo(torch.float64).eps * gram.trace() * torch.eye(
            gram.shape[0], dtype=torch.float64, device=gram.device))
        basis = torch.linalg.solve_triangular(factor, basis.double().T, upper=False).T.to(matrix.dtype)
    return basis


def randomized_axes(flat: torch.Tensor, mean: torch.Tensor, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The top ``k`` principal axes ``(k, d)`` and variances ``(k,)`` (float64) of ``(N, d)`` data
    with column means ``mean``, by randomized subspace iteration on the implicitly centred data.

    The products run in the data's precision (float32 for a captured layer); the
    ``k + OVERSAMPLING`` directions are re-orthonormalised after every product
    (:func:`orthonormal_columns`), and the axes come from the eigendecomposition of the small
    Gram matrix of the projected ``(k + OVERSAMPLING, d)`` data.
    """
    n, d = flat.shape
    width = min(k + OVERSAMPLING, n, d)
    centre = mean.to(flat.dtype)

    def times(matrix: torch.Tensor) -> torch.Tensor:             # centred data @ matrix: (N, width)
        return flat @ matrix - centre @ matrix

    def transposed_times(matrix: torch.Tensor) -> torch.Tensor:  # centred dataᵀ @ matrix: (d, width)
        return flat.T @ matrix - centre[:, None] * matrix.sum(dim=0)

    generator = torch.Generator().manual_seed(int(seed))
    directions = torch.randn(d, width, generator=generator, dtype=flat.dtype).to(flat.device)
    basis = orthonormal_columns(times(directions))
    for _ in range(SUBSPACE_ITERATIONS):
        basis = orthonormal_columns(times(orthonormal_columns(transposed_times(basis))))
    projected = transposed_times(basis).double()                  # (d, width) = centred dataᵀ @ basis
    eigenvalues, eigenvectors = torch.linalg.eigh(projected.T @ projected)
    eigenvalues, eigenvectors = eigenvalues.flip(0)[:k].clamp_min(0.0), eigenvectors.flip(1)[:, :k]
    axes = (projected @ eigenvectors / eigenvalues.sqrt().clamp_min(torch.finfo(torch.float64).tiny)).T
    return axes, eigenvalues / (n - 1)


def top_eigenpairs(symmetric: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest eigenvalues ``(k,)`` (decreasing) and eigenvectors ``(d, k)`` of a ``(d, d)`` matrix.

    On CPU only the wanted pairs are computed (LAPACK ``syevr`` with an index range, through
    SciPy), several times faster than a full ``eigh`` for ``k ≪ d``; elsewhere ``torch.linalg.eigh``.
    """
    d = symmetric.shape[0]
    if symmetric.device.type == "cpu":
        values, vectors = scipy.linalg.eigh(symmetric.numpy(), subset_by_index=[d - k, d - 1], driver="evr")
        values, vectors = torch.from_numpy(values), torch.from_numpy(vectors)
    else:
        values, vectors = torch.linalg.eigh(symmetric)
        values, vectors = values[d - k:], vectors[:, d - k:]
    return values.flip(0), vectors.flip(1)
