"""Joint Gaussian mixtures whose mutual information is known to Monte-Carlo precision (nats).

A mixture ``p(x, y) = Σ_k w_k·N((x, y); μ_k, Σ_k)`` on ``R^{dx+dy}`` is the simplest density with
multimodal, fine-grained dependence: narrow components strung along a ring or a curve make ``y``
nearly a (multi-valued) function of ``x`` at the scale of one component and independent-looking at
the scale of the whole sample. That is the structure which a large neighbour order smooths away and
which Gaussian-copula benchmarks never show.

Its MI has no closed form, but its density does: the marginals of a Gaussian mixture are Gaussian
mixtures with the same weights and the sub-blocks of ``μ_k`` and ``Σ_k``. So

    I(X;Y) = E[log p(x, y) − log p(x) − log p(y)]

is a Monte-Carlo average of exactly computable terms (float64, log-sum-exp over components). The
draws are stratified by component (``round(n·w_k)`` draws from component ``k``), which removes the
between-component part of the variance, and the standard error is reported with the value: with
:data:`MC_SAMPLES` draws it is a few thousandths of a nat on every mixture of the battery, far
below any estimator's error.

MI is invariant under injective maps of each side separately, so a rotation or a strictly
increasing per-coordinate map of ``x`` (or ``y``) applied to the samples leaves this truth unchanged.

The builders :func:`ring_mixture`, :func:`curve_mixture` and :func:`inlier_mixture` give the shapes
of the known-MI battery (``ibkit.synthetic.battery``, families ``mixture-*``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ibkit.synthetic.gaussian import Seed, make_generator
from ibkit.validation import check_positive_int

#: Monte-Carlo draws for the truth; the standard error is ≤ 0.003 nats on the battery's mixtures.
MC_SAMPLES = 200_000
#: Rows per chunk of the density evaluation (memory ``CHUNK × max(K, D²)`` float64).
CHUNK = 16_384


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """``Σ_k w_k·N(μ_k, Σ_k)`` on ``R^D``, float64 CPU tensors.

    Attributes:
        weights: ``(K,)`` positive component weights summing to 1.
        means: ``(K, D)`` component means ``μ_k``.
        covariances: ``(K, D, D)`` symmetric positive-definite component covariances ``Σ_k``.
    """

    weights: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor

    def __post_init__(self) -> None:
        k, d = self.means.shape
        if self.weights.shape != (k,) or self.covariances.shape != (k, d, d):
            raise ValueError(f"weights (K,), means (K, D) and covariances (K, D, D) must agree, got "
                             f"{tuple(self.weights.shape)}, {tuple(self.means.shape)}, {tuple(self.covariances.shape)}")
        if not (self.weights > 0).all() or abs(float(self.weights.sum()) - 1.0) > 1e-9:
            raise ValueError("weights must be positive and sum to 1")
        self.scale_trils  # noqa: B018 (a LinAlgError here when a covariance is not positive definite)

    @functools.cached_property
    def scale_trils(self) -> torch.Tensor:
        """``(K, D, D)`` lower Cholesky factors of the covariances."""
        return torch.linalg.cholesky(self.covariances)

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    def marginal(self, coordinates: Sequence[int]) -> GaussianMixture:
        """The mixture of the chosen coordinates: same weights, sub-blocks of means and covariances."""
        index = torch.as_tensor(list(coordinates), dtype=torch.long)
        return GaussianMixture(self.weights, self.means[:, index], self.covariances[:, index][:, :, index])

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Exact log-density of ``z (N, D)``, nats, shape ``(N,)``; float64, log-sum-exp over components.

        Each component's Mahalanobis form ``(z − μ_k)ᵀΣ_k⁻¹(z − μ_k)`` is linear in the features
        ``(z_i·z_j for i ≤ j, z_i, 1)``, so all ``K`` of them are one matrix product per chunk of
        :data:`CHUNK` rows.
        """
        z = z.to(torch.float64)
        d = self.dim
        rows, cols = torch.triu_indices(d, d)
        precision = torch.cholesky_inverse(self.scale_trils)  # (K, D, D)
        off_diagonal_twice = 2.0 - torch.eye(d, dtype=torch.float64)
        coefficients = torch.cat([
            (precision * off_diagonal_twice)[:, rows, cols],
            -2.0 * torch.einsum("kij,kj->ki", precision, self.means),
            torch.einsum("ki,kij,kj->k", self.means, precision, self.means)[:, None],
        ], dim=1).T  # (D(D+1)/2 + D + 1, K)
        log_norms = (self.weights.log() - self.scale_trils.diagonal(dim1=1, dim2=2).log().sum(dim=1)
                     - 0.5 * d * math.log(2.0 * math.pi))  # (K,)
        out = []
        for chunk in z.split(CHUNK):
            features = torch.cat([chunk[:, rows] * chunk[:, cols], chunk, torch.ones(len(chunk), 1, dtype=torch.float64)],
                                 dim=1)
            out.append(torch.logsumexp(log_norms - 0.5 * (features @ coefficients), dim=1))
        return torch.cat(out)

    def draw(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One sample ``(N, D)`` from the components named by ``labels (N,)`` (int64)."""
        noise = torch.randn(labels.shape[0], self.dim, generator=generator, dtype=torch.float64)
        z = self.means[labels]
        for component in range(self.n_components):
            chosen = labels == component
            z[chosen] += noise[chosen] @ self.scale_trils[component].T
        return z

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` draws ``(n, D)``, float64, from ``generator`` only."""
        labels = torch.multinomial(self.weights, check_positive_int(n, "n"), replacement=True, generator=generator)
        return self.draw(labels, generator)


def mixture_mutual_information(mixture: GaussianMixture, dim_x: int, samples: int = MC_SAMPLES,
                               seed: Seed = 0) -> tuple[float, float]:
    """``I(X;Y)`` of a joint mixture over ``(x, y)`` (the first ``dim_x`` coordinates are ``x``).

    A Monte-Carlo average of the exact ``log p(x, y) − log p(x) − log p(y)``, stratified by
    component, on a seeded sample (so the value is deterministic).

    Args:
        mixture: the joint mixture on ``R^{dim_x + dim_y}``.
        dim_x: the dimension of ``x``, ``1 ≤ dim_x < mixture.dim``.
        samples: Monte-Carlo draws in total (at least 2 per component).
        seed: seed of the draws.

    Returns:
        ``(mi, stderr)``: the MI and the standard error of its Monte-Carlo average, nats.
    """
    dim_x = check_positive_int(dim_x, "dim_x")
    if dim_x >= mixture.dim:
        raise ValueError(f"dim_x must be below the mixture's dimension {mixture.dim}, got {dim_x}")
    counts = torch.clamp(torch.round(check_positive_int(samples, "samples") * mixture.weights), min=2).long()
    labels = torch.repeat_interleave(torch.arange(mixture.n_components), counts)
    z = mixture.draw(labels, make_generator(seed))
    pointwise = (mixture.log_prob(z) - mixture.marginal(range(dim_x)).log_prob(z[:, :dim_x])
                 - mixture.marginal(range(dim_x, mixture.dim)).log_prob(z[:, dim_x:]))
    means = torch.stack([part.mean() for part in pointwise.split(counts.tolist())])
    variances = torch.stack([part.var() for part in pointwise.split(counts.tolist())])
    mi = float((mixture.weights * means).sum())
    stderr = math.sqrt(float((mixture.weights.square() * variances / counts).sum()))
    return mi, stderr


# ----------------------------------------------------------------------------- shapes
def embedded_mixture(means_x: torch.Tensor, means_y: torch.Tensor, width: float, dim_x: int,
                     dim_y: int) -> GaussianMixture:
    """Equally weighted components centred at ``(μ_x, μ_y)`` with standard deviation ``width`` in the
    structured coordinates and independent ``N(0, 1)`` coordinates padding each side to ``dim_x`` and
    ``dim_y``.

    Args:
        means_x: ``(K, cx)`` the structured coordinates of ``x`` (``cx ≤ dim_x``); likewise ``means_y``.
        width: the components' standard deviation in the structured coordinates (same units as the means).
    """
    n_components, cx = means_x.shape
    cy = means_y.shape[1]
    if cx > dim_x or cy > dim_y:
        raise ValueError(f"the structure needs {cx} + {cy} dimensions, got {dim_x} + {dim_y}")
    means = torch.zeros(n_components, dim_x + dim_y, dtype=torch.float64)
    means[:, :cx] = means_x
    means[:, dim_x:dim_x + cy] = means_y
    variances = torch.ones(dim_x + dim_y, dtype=torch.float64)
    variances[:cx] = variances[dim_x:dim_x + cy] = width**2
    weights = torch.full((n_components,), 1.0 / n_components, dtype=torch.float64)
    return GaussianMixture(weights, means, torch.diag(variances).expand(n_components, -1, -1).clone())


def _phases(n_components: int, offset: float = 0.0) -> torch.Tensor:
    """``K`` evenly spaced points ``t_k = (k + offset)/K`` of ``[0, 1)``."""
    k = torch.arange(check_positive_int(n_components, "n_components"), dtype=torch.float64)
    return (k + offset) / n_components


def ring_mixture(n_components: int, width: float, dim_x: int, dim_y: int) -> GaussianMixture:
    """Components on a closed curve that is a ring in every coordinate pair ``(x_j, y_j)``.

    Pair ``j = 1..min(dim_x, dim_y)`` carries the unit circle traversed ``j`` times,
    ``μ_k = (cos 2πj·t_k, sin 2πj·t_k)``, ``t_k = k/K``; any further coordinates are independent
    noise. In 1 + 1 dimensions ``x = cos`` knows the angle up to its sign and ``y = sin`` up to its
    reflection about π/2, so narrow components give about ``log(K/4)`` nats; wider ones blur
    neighbouring components into a ring and give less.
    """
    t = _phases(n_components)
    pairs = torch.arange(1, min(dim_x, dim_y) + 1, dtype=torch.float64)
    angle = 2.0 * math.pi * t[:, None] * pairs
    return embedded_mixture(angle.cos(), angle.sin(), width, dim_x, dim_y)


#: Curves through the plane ``(x₁, y₁)`` for :func:`curve_mixture`, as functions of ``t ∈ [0, 1)``.
MIXTURE_CURVES = {
    # An Archimedean spiral of three turns from radius 0.2 to 1: turns 0.27 apart.
    "spiral": lambda t: (0.2 + 0.8 * t)[:, None] * torch.stack([torch.cos(6 * math.pi * t), torch.sin(6 * math.pi * t)], 1),
    # Two periods of a sine over [−1, 1]: y₁ is a function of x₁, x₁ one of four values given y₁.
    "sine": lambda t: torch.stack([2.0 * t - 1.0, torch.sin(4 * math.pi * t)], 1),
    # The diagonal x₁ = y₁ over [−1, 1]: narrow components make both sides the same discrete label.
    "diagonal": lambda t: torch.stack([2.0 * t - 1.0, 2.0 * t - 1.0], 1),
}


def curve_mixture(curve: str, n_components: int, width: float, dim_x: int, dim_y: int) -> GaussianMixture:
    """Components at ``K`` evenly spaced points ``t_k = (k + ½)/K`` of a :data:`MIXTURE_CURVES` curve in
    ``(x₁, y₁)``, independent ``N(0, 1)`` noise in any further coordinates."""
    points = MIXTURE_CURVES[curve](_phases(n_components, offset=0.5))  # symmetric about the middle
    return embedded_mixture(points[:, :1], points[:, 1:], width, dim_x, dim_y)


def inlier_mixture(fraction: float, n_components: int, width: float, dim_x: int, dim_y: int,
                   seed: Seed = 0) -> GaussianMixture:
    """A broad independent bulk ``N(0, I)`` of weight ``1 − fraction`` with ``K`` narrow components of
    total weight ``fraction`` inside it.

    The narrow components (standard deviation ``width`` in every coordinate) sit at seeded random
    points of ``N(0, 0.7²·I)``, so the dependent part hides in the bulk's high-density region and
    every coordinate of both sides carries some of it.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    generator = make_generator(seed)
    dim = dim_x + dim_y
    k = check_positive_int(n_components, "n_components")
    means = torch.cat([torch.zeros(1, dim, dtype=torch.float64),
                       0.7 * torch.randn(k, dim, generator=generator, dtype=torch.float64)])
    eye = torch.eye(dim, dtype=torch.float64)
    covariances = torch.cat([eye[None], (width**2 * eye).expand(k, -1, -1)])
    weights = torch.cat([torch.tensor([1.0 - fraction], dtype=torch.float64),
                         torch.full((k,), fraction / k, dtype=torch.float64)])
    return GaussianMixture(weights, means, covariances)
