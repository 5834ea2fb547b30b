"""Gaussian base distributions of the flow estimator (MIENF), with closed-form mutual information.

Both are densities of a pair ``(ξ, η)`` in ``R^{dx} × R^{dy}`` with zero mean:

* :class:`FullGaussianBase` (N-MIENF): any covariance ``Σ`` (a Cholesky factor is learned),
  ``I(ξ;η) = ½·(log det Σ_ξξ + log det Σ_ηη − log det Σ)``; O(d³) per evaluation.
* :class:`TridiagonalGaussianBase` (tridiag-N-MIENF): the canonical form ``Σ = [[I, R], [Rᵀ, I]]``
  with ``R = diag(ρ₁..ρ_k)``, ``k = min(dx, dy)`` — every Gaussian pair reaches it by separate affine
  maps of each side (canonical correlation analysis), which the flows absorb, so nothing is lost.
  ``I = −½ Σ log(1 − ρᵢ²)``, O(d). Each pair's MI ``Iᵢ = softplus(aᵢ)`` is the parameter, so
  ``1 − ρᵢ² = exp(−2Iᵢ)`` holds exactly even for ``ρ`` within float precision of 1.

Each offers ``log_prob(ξ, η)``, ``pmi(ξ, η)`` (pointwise MI, ``log q(ξ,η) − log q(ξ) − log q(η)``),
``mutual_information()`` and ``sample(n)``. Densities are in nats; ``pmi`` and the closed forms are
computed in float64 whatever the inputs' dtype.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

LOG_2PI = math.log(2.0 * math.pi)


def _standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """``log N(z; 0, I)`` summed over the last dimension: ``(N, d) -> (N,)``."""
    return -0.5 * (z.square().sum(dim=1) + z.shape[1] * LOG_2PI)


class FullGaussianBase(nn.Module):
    """``N(0, Σ)`` on ``(ξ, η)`` with a learned full covariance (Cholesky factor ``L``, ``Σ = L Lᵀ``).

    Args:
        dim_x, dim_y: dimensions of ``ξ`` and ``η``.

    Shapes:
        ``ξ (N, dim_x)``, ``η (N, dim_y)``; densities ``(N,)``.
    """

    def __init__(self, dim_x: int, dim_y: int):
        super().__init__()
        self.dim_x, self.dim_y = dim_x, dim_y
        d = dim_x + dim_y
        self.lower = nn.Parameter(torch.zeros(d, d))  # strictly lower part
        self.log_diagonal = nn.Parameter(torch.zeros(d))

    @torch.no_grad()
    def start_from(self, correlations: torch.Tensor) -> None:
        """Set ``Σ = [[I, R], [Rᵀ, I]]`` with ``R = diag(correlations)`` (canonical correlations)."""
        d, k = self.dim_x + self.dim_y, correlations.numel()
        covariance = torch.eye(d, dtype=torch.float64)
        index = torch.arange(k)
        covariance[index, self.dim_x + index] = covariance[self.dim_x + index, index] = correlations.double()
        factor = torch.linalg.cholesky(covariance)
        self.lower.copy_(torch.tril(factor, -1).to(self.lower))
        self.log_diagonal.copy_(factor.diagonal().log().to(self.log_diagonal))

    def cholesky(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The Cholesky factor ``L`` ``(d, d)`` of ``Σ``."""
        return (torch.tril(self.lower, -1) + torch.diag(self.log_diagonal.exp())).to(dtype)

    def covariance(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``Σ = L Lᵀ`` ``(d, d)``."""
        factor = self.cholesky(dtype)
        return factor @ factor.T

    def _log_prob(self, z: torch.Tensor, covariance: torch.Tensor) -> torch.Tensor:
        factor = torch.linalg.cholesky(covariance)
        solved = torch.linalg.solve_triangular(factor, z.T, upper=False).T
        return -0.5 * solved.square().sum(dim=1) - factor.diagonal().log().sum() - 0.5 * z.shape[1] * LOG_2PI

    def log_prob(self, xi: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
        """``log q(ξ, η)`` per sample (the training objective's base term), in ``ξ``'s dtype."""
        z = torch.cat([xi, eta], dim=1)
        factor = self.cholesky(z.dtype)
        solved = torch.linalg.solve_triangular(factor, z.T, upper=False).T
        return -0.5 * solved.square().sum(dim=1) - self.log_diagonal.sum().to(z.dtype) - 0.5 * z.shape[1] * LOG_2PI

    def pmi(self, xi: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
        """Pointwise MI ``log q(ξ,η) − log q(ξ) − log q(η)`` (nats), float64 ``(N,)``."""
        covariance = self.covariance()
        xi, eta = xi.double(), eta.double()
        dx = self.dim_x
        return (self._log_prob(torch.cat([xi, eta], dim=1), covariance)
                - self._log_prob(xi, covariance[:dx, :dx]) - self._log_prob(eta, covariance[dx:, dx:]))

    @torch.no_grad()
    def mutual_information(self) -> float:
        """``½·(log det Σ_ξξ + log det Σ_ηη − log det Σ)`` in nats."""
        covariance = self.covariance()
        dx = self.dim_x
        logdet = lambda m: torch.linalg.slogdet(m)[1]  # noqa: E731
        return float(0.5 * (logdet(covariance[:dx, :dx]) + logdet(covariance[dx:, dx:]) - logdet(covariance)))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples ``(ξ (n, dim_x), η (n, dim_y))`` on the parameters' device."""
        device = self.log_diagonal.device
        z = torch.randn(n, self.dim_x + self.dim_y, generator=generator, device=device) @ self.cholesky().T
        return z[:, : self.dim_x], z[:, self.dim_x :]


class TridiagonalGaussianBase(nn.Module):
    """The canonical Gaussian ``N(0, [[I, R], [Rᵀ, I]])``, ``R = diag(ρ₁..ρ_k)`` (tridiag-N-MIENF).

    Pair i couples ``ξᵢ`` and ``ηᵢ`` (``i < k = min(dim_x, dim_y)``); the other coordinates are
    independent standard normals. The parameters are the per-pair MIs ``Iᵢ = softplus(aᵢ)`` nats.

    Args:
        dim_x, dim_y: dimensions of ``ξ`` and ``η``.
        initial_mi: starting MI per pair, nats.
    """

    def __init__(self, dim_x: int, dim_y: int, initial_mi: float = 0.1):
        super().__init__()
        self.dim_x, self.dim_y = dim_x, dim_y
        k = min(dim_x, dim_y)
        inverse_softplus = math.log(math.expm1(initial_mi))
        self.raw_mi = nn.Parameter(torch.full((k,), inverse_softplus))

    @torch.no_grad()
    def start_from(self, correlations: torch.Tensor) -> None:
        """Set the pairs' correlations (canonical correlations, ``(k,)``, each in ``[0, 1)``)."""
        mi = (-0.5 * torch.log1p(-correlations.double().square())).clamp_min(1e-6)
        self.raw_mi.copy_(torch.log(torch.expm1(mi)).to(self.raw_mi))

    def pair_mi(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``(k,)`` per-pair MIs ``Iᵢ`` in nats."""
        return F.softplus(self.raw_mi.to(dtype))

    def correlations(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``(k,)`` canonical correlations ``ρᵢ = √(1 − e^{−2Iᵢ})``."""
        return torch.sqrt(-torch.expm1(-2.0 * self.pair_mi(dtype)))

    def _pairs(self, xi: torch.Tensor, eta: torch.Tensor) -> tuple[torch.Tensor, ...]:
        k = self.raw_mi.shape[0]
        mi = self.pair_mi(xi.dtype)
        one_minus_rho2 = torch.exp(-2.0 * mi)                        # 1 − ρ², exact
        rho = torch.sqrt(-torch.expm1(-2.0 * mi))
        a, b = xi[:, :k], eta[:, :k]
        return a, b, mi, rho, one_minus_rho2

    def pmi(self, xi: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
        """Pointwise MI (nats), float64 ``(N,)``: ``Σᵢ [Iᵢ − (ρᵢ²(ξᵢ² + ηᵢ²) − 2ρᵢξᵢηᵢ) / (2(1 − ρᵢ²))]``."""
        a, b, mi, rho, one_minus_rho2 = self._pairs(xi.double(), eta.double())
        return (mi - (rho.square() * (a.square() + b.square()) - 2.0 * rho * a * b) / (2.0 * one_minus_rho2)).sum(dim=1)

    def log_prob(self, xi: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
        """``log q(ξ, η)`` per sample: the standard-normal marginals plus the pointwise MI."""
        a, b, mi, rho, one_minus_rho2 = self._pairs(xi, eta)
        pmi = (mi - (rho.square() * (a.square() + b.square()) - 2.0 * rho * a * b) / (2.0 * one_minus_rho2)).sum(dim=1)
        return _standard_normal_log_prob(xi) + _standard_normal_log_prob(eta) + pmi

    @torch.no_grad()
    def mutual_information(self) -> float:
        """``−½ Σ log(1 − ρᵢ²) = Σ Iᵢ`` in nats."""
        return float(self.pair_mi().sum())

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples ``(ξ (n, dim_x), η (n, dim_y))`` on the parameters' device."""
        device = self.raw_mi.device
        xi = torch.randn(n, self.dim_x, generator=generator, device=device)
        eta = torch.randn(n, self.dim_y, generator=generator, device=device)
        k = self.raw_mi.shape[0]
        rho = self.correlations(torch.float32)
        eta[:, :k] = rho * xi[:, :k] + torch.sqrt(torch.exp(-2.0 * self.pair_mi(torch.float32))) * eta[:, :k]
        return xi, eta
