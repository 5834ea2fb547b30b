"""The exact bias of k-NN entropy estimates on a standard Gaussian sample, by quadrature.

For ``N`` samples of ``N(0, I_d)`` and a query point ``x`` among them, the other ``N − 1``
points fall in the ball of radius ``r`` around ``x`` with probability
``p(r) = F(r²; d, ‖x‖²)``, the CDF of a non-central χ² with ``d`` degrees of freedom and
non-centrality ``‖x‖²``. The distance ``ρ_j`` to the j-th neighbour therefore has
``P(ρ_j ≤ r) = I_{p(r)}(j, N − j)`` (regularised incomplete beta: at least j of N − 1 Bernoulli
trials succeed), and

    E[log ρ_j] = E_{‖x‖² ~ χ²_d} ∫ log r  dI_{p(r)}(j, N − j).

This is a smooth two-dimensional integral: Gauss–Legendre nodes over the quantiles of ``‖x‖²``
and a fine log-spaced grid in ``r``. It gives the expectation of the Kozachenko–Leonenko
estimate ``ψ(N) − ψ(j) + log V_d + d·⟨log ρ_j⟩`` on a standard Gaussian with no sampling error,
so its difference from the true entropy ``d/2·log(2πe)`` is the estimator's finite-sample bias
there — a function of ``N``, ``d`` and ``j`` only. Whitened data whose distribution is close to
Gaussian (normal scores make every marginal Gaussian) carry nearly the same bias, which is what
``KozachenkoLeonenko(correction="gaussian")`` subtracts.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special, stats

#: Gauss–Legendre nodes over the quantiles of the query point's squared norm.
NORM_NODES = 48
#: Points of the log-radius grid; the grid spans the typical j-th neighbour radius ± many decades.
RADIUS_POINTS = 800
#: Half-width of the log-radius grid around the typical radius, in units of log r.
RADIUS_HALF_WIDTH = 14.0


@lru_cache(maxsize=512)
def expected_log_knn_radius(n: int, d: int, orders: tuple[int, ...]) -> tuple[float, ...]:
    """``E[log ρ_j]`` (Euclidean) for a query point among ``n`` samples of ``N(0, I_d)``, per order j.

    Args:
        n: sample size (the query point included), ``n > max(orders)``.
        d: dimension.
        orders: neighbour orders ``j >= 1``.

    Returns:
        One expectation per order, in the order given.
    """
    nodes, node_weights = np.polynomial.legendre.leggauss(NORM_NODES)
    squared_norm = stats.chi2.ppf(0.5 * (nodes + 1.0), d)
    # Typical radius of a ball holding j/n of the mass near the mode, to centre the grid.
    typical = (max(orders) / n * math.exp(special.gammaln(0.5 * d + 1.0))) ** (1.0 / d) * math.sqrt(2.0)
    log_r = np.linspace(math.log(typical) - RADIUS_HALF_WIDTH, math.log(typical) + RADIUS_HALF_WIDTH / 2,
                        RADIUS_POINTS)
    ball_mass = stats.ncx2.cdf(np.exp(2.0 * log_r)[None, :], d, squared_norm[:, None])
    midpoints = 0.5 * (log_r[1:] + log_r[:-1])
    out = []
    for j in orders:
        cdf = special.betainc(j, n - j, ball_mass)
        # ∫ log r dP, with any mass outside the grid put at its ends.
        per_node = (np.diff(cdf, axis=1) @ midpoints + log_r[0] * cdf[:, 0] + log_r[-1] * (1.0 - cdf[:, -1]))
        out.append(float(0.5 * node_weights @ per_node))
    return tuple(out)


def log_unit_ball_volume(d: int) -> float:
    """``log V_d`` with ``V_d = π^{d/2} / Γ(d/2 + 1)``, the volume of the Euclidean unit ball."""
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


def gaussian_entropy_bias(n: int, d: int, weights: np.ndarray) -> float:
    """Bias (nats) of the weighted k-NN entropy estimate on ``n`` samples of ``N(0, I_d)``.

    Args:
        n: sample size.
        d: dimension.
        weights: ``(k,)`` weights over the neighbour orders ``1..k`` (summing to 1).

    Returns:
        ``E[Ĥ] − d/2·log(2πe)``, where ``Ĥ = Σ_j w_j (ψ(n) − ψ(j) + log V_d + d·⟨log ρ_j⟩)``.
    """
    orders = tuple(int(j) + 1 for j in np.flatnonzero(weights))
    expected = np.asarray(expected_log_knn_radius(n, d, orders))
    per_order = special.digamma(n) - special.digamma(np.asarray(orders)) + log_unit_ball_volume(d) + d * expected
    return float(per_order @ weights[np.asarray(orders) - 1]) - 0.5 * d * math.log(2.0 * math.pi * math.e)
