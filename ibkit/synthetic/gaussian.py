"""Correlated Gaussian vectors with an exactly known mutual information (nats).

The construction (Butakov et al., ICLR 2024, §4.1): ``m = min(dim_x, dim_y)`` independent
coordinate pairs ``(x_i, y_i)``, each standard normal with correlation ``rho``, carry
``I = -(m/2) log(1 - rho^2)`` nats in total; the remaining coordinates are independent noise.
Random orthogonal rotations within each side then mix the coordinates: the marginals stay
``N(0, I)`` and, being invertible, the rotations leave the MI unchanged.

Randomness comes from a CPU ``torch.Generator``; every sampler takes ``seed`` (an int, a
``torch.Generator`` or ``None`` for a fresh non-deterministic seed).

The elementwise maps :func:`normal_to_uniform` and :func:`cube` are smooth strictly increasing
bijections, so applying either to ``x`` and/or ``y`` leaves ``I(x; y)`` unchanged: use
them to test that an estimator is invariant under invertible reparametrisation.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ibkit.validation import check_positive_int

Seed = int | torch.Generator | None
ArrayLike = float | np.ndarray


def make_generator(seed: Seed) -> torch.Generator:
    """Return a CPU ``torch.Generator``: seeded from an int, passed through, or freshly seeded."""
    if isinstance(seed, torch.Generator):
        return seed
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        generator.manual_seed(int(seed))
    else:
        raise ValueError(f"seed must be an int, a torch.Generator or None, got {seed!r}")
    return generator


def _as_float_array(value: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return array


def _scalar_or_array(array: np.ndarray) -> ArrayLike:
    return float(array) if array.ndim == 0 else array


def correlation_from_mi(mi: ArrayLike, n_components: int) -> ArrayLike:
    """Correlation ``rho`` per pair that gives total MI ``mi`` over ``n_components`` pairs.

    ``rho = sqrt(1 - exp(-2 mi / m))``, the inverse of :func:`mi_from_correlation`.

    Args:
        mi: total mutual information in nats, ``>= 0``; a float or an array (elementwise).
        n_components: number ``m >= 1`` of independent correlated pairs.

    Returns:
        ``rho`` in ``[0, 1)``, a float for scalar input, else an array of ``mi``'s shape.
    """
    m = check_positive_int(n_components, "n_components")
    mi_array = _as_float_array(mi, "mi")
    if np.any(mi_array < 0):
        raise ValueError(f"mi must be >= 0 nats, got {mi!r}")
    return _scalar_or_array(np.sqrt(-np.expm1(-2.0 * mi_array / m)))


def mi_from_correlation(rho: ArrayLike, n_components: int) -> ArrayLike:
    """Total MI in nats of ``n_components`` independent Gaussian pairs, each of correlation ``rho``.

    ``I = -(m/2) log(1 - rho^2)``.

    Args:
        rho: per-pair correlation in ``[0, 1)``; a float or an array (elementwise).
        n_components: number ``m >= 1`` of pairs.

    Returns:
        MI in nats, a float for scalar input, else an array of ``rho``'s shape.
    """
    m = check_positive_int(n_components, "n_components")
    rho_array = _as_float_array(rho, "rho")
    if np.any((rho_array < 0) | (rho_array >= 1)):
        raise ValueError(f"rho must lie in [0, 1), got {rho!r}")
    return _scalar_or_array(-0.5 * m * np.log1p(-(rho_array**2)))


def random_rotation(dim: int, generator: torch.Generator) -> torch.Tensor:
    """A Haar-distributed random orthogonal matrix, shape ``(dim, dim)``, float64.

    QR of a standard normal matrix with the signs of ``R``'s diagonal folded into ``Q``.
    """
    gaussian = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    return q * torch.sign(torch.diagonal(r))


def correlated_gaussians(
    n_samples: int,
    mi: float,
    dim_x: int,
    dim_y: int | None = None,
    *,
    mix: bool = True,
    seed: Seed = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``(x, y)`` jointly Gaussian with ``N(0, I)`` marginals and ``I(x; y) = mi`` nats.

    The MI is split equally over ``m = min(dim_x, dim_y)`` pairs ``(x_i, y_i)`` with correlation
    ``rho = correlation_from_mi(mi, m)``; other coordinates are independent. With ``mix=True``
    each side is then rotated by its own Haar-random orthogonal matrix (fresh per call).

    Args:
        n_samples: number of samples ``N >= 1``.
        mi: total mutual information in nats, finite and ``>= 0``.
        dim_x: dimension of ``x``.
        dim_y: dimension of ``y``; defaults to ``dim_x``.
        mix: rotate the coordinates within each side.
        seed: int, ``torch.Generator`` (CPU) or ``None``; the same int gives the same sample.

    Returns:
        ``x`` of shape ``(N, dim_x)`` and ``y`` of shape ``(N, dim_y)``, float64 CPU tensors.
    """
    n = check_positive_int(n_samples, "n_samples")
    dim_x = check_positive_int(dim_x, "dim_x")
    dim_y = dim_x if dim_y is None else check_positive_int(dim_y, "dim_y")
    if np.ndim(mi) != 0:
        raise ValueError(f"mi must be a scalar, got an array of shape {np.shape(mi)}")
    m = min(dim_x, dim_y)
    rho = correlation_from_mi(float(mi), m)
    noise_scale = math.exp(-float(mi) / m)  # sqrt(1 - rho^2), exact even for large mi
    generator = make_generator(seed)

    x = torch.randn(n, dim_x, generator=generator, dtype=torch.float64)
    y = torch.randn(n, dim_y, generator=generator, dtype=torch.float64)
    y[:, :m] = rho * x[:, :m] + noise_scale * y[:, :m]
    if mix:
        x = x @ random_rotation(dim_x, generator).T
        y = y @ random_rotation(dim_y, generator).T
    return x, y


def normal_to_uniform(z: torch.Tensor) -> torch.Tensor:
    """Standard normal CDF ``Phi``, elementwise: maps ``N(0, 1)`` to ``Uniform(0, 1)``.

    Strictly increasing, so MI is invariant under it. In float64 the output is in ``(0, 1)`` for
    ``|z| < 8.2`` (beyond that it rounds to 0 or 1, an event of probability ~1e-16 per coordinate).
    Inverse: :func:`uniform_to_normal`.
    """
    return torch.special.ndtr(z)


def uniform_to_normal(u: torch.Tensor) -> torch.Tensor:
    """Inverse standard normal CDF ``Phi^{-1}``, elementwise; undoes :func:`normal_to_uniform`."""
    return torch.special.ndtri(u)


def cube(z: torch.Tensor) -> torch.Tensor:
    """``z ** 3``, elementwise: a strictly increasing bijection of the reals (inverse: cube root).

    MI is invariant under it; it turns Gaussian tails heavy, which stresses density estimators.
    """
    return z**3
