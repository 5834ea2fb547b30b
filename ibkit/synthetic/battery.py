"""A battery of distributions with exactly known mutual information (nats), to test estimators.

Each :class:`Task` draws paired samples ``(x, y)`` whose true ``I(X;Y)`` is known in closed form.
The families stress what breaks non-parametric estimators, in the spirit of the "Beyond Normal"
benchmark (Czyż et al., NeurIPS 2023):

* ``gaussian-sparse``: one correlated coordinate pair carries all the MI, every other coordinate
  is independent noise.
* ``gaussian-dense``: all ``dim_x + dim_y`` coordinates are equicorrelated (covariance
  ``(1−c)·I + c·11ᵀ``), so the dependence lives in the one high-variance direction ``1``.
* ``student-t``: a multivariate Student-t with ``ν`` degrees of freedom (heavy tails). Its MI is the
  Gaussian MI of the scale matrix plus a closed-form term in ``ν`` that is positive even at zero
  correlation (the shared scale ``χ²_ν`` makes the sides dependent).
* ``<map>``: correlated Gaussians (:func:`ibkit.synthetic.correlated_gaussians`) with a strictly
  increasing map applied to every coordinate of both sides: ``tanh`` (``tanh 3z``, saturating),
  ``cube`` (``z³``), ``exp`` (``e^{2z}``, log-normal), ``normal-cdf`` (``Φ(z)``, bounded),
  ``half-cube`` (``sign(z)·|z|^{3/2}``).
* ``spiral``: ``x`` is rotated by a random orthogonal matrix, then twisted by the spiral
  ``x ↦ R(v·‖x‖²)·x`` (``R`` a rotation of the first two coordinates; ``‖x‖`` is kept, so the map
  is a diffeomorphism).
* ``curve``: ``y`` is one correlated Gaussian coordinate carried onto a curve in a higher
  dimension (an arc of the unit circle in 2-D, a helix in 3-D): the samples lie on a 1-D set.
* ``softmax``: the saturated output layer of a classifier. ``X ~ N(0, I₄)``, logits
  ``Z = U·(s·X + σ·ε)`` in the 4-D subspace of ``R⁵`` orthogonal to ``1`` (``U`` orthonormal),
  ``y`` = PCA to 4 dimensions of ``softmax(Z)``. Softmax is injective on that subspace and the
  probabilities span a 4-D affine set, so PCA keeps everything: ``I(X; y) = I(X; sX + σε) =
  2·log(1 + s²/σ²)`` exactly. With a logit scale ``√(s² + σ²)`` of 10 the probabilities sit in
  tight clusters at the simplex corners, as a trained network's softmax does.
* ``mixture-ring``, ``mixture-curve``, ``mixture-inliers``: joint Gaussian mixtures
  (:mod:`ibkit.synthetic.mixtures`) with narrow components on a ring, along a curve, or as a small
  dependent fraction inside a broad independent bulk; optionally ``x`` is rotated, waved
  (:func:`wave`, a shear by a sine of the last coordinate) or mapped per coordinate. They hold
  fine, multimodal dependence that a large neighbour order smooths away. Their MI has no closed
  form: it is a Monte-Carlo average of the exact log-density ratio (``Task.mi_stderr`` ≤ 0.005
  nats), computed once per process when first needed.

Every map used is injective on each side separately, which is why the MI is known exactly.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import digamma, gammaln

from ibkit.synthetic.gaussian import Seed, correlated_gaussians, make_generator, random_rotation
from ibkit.synthetic.mixtures import (
    MIXTURE_CURVES,
    GaussianMixture,
    curve_mixture,
    inlier_mixture,
    mixture_mutual_information,
    ring_mixture,
)
from ibkit.validation import check_choice, check_positive_int

#: Strictly increasing elementwise maps of the ``<map>`` family.
MONOTONE_MAPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": lambda z: torch.tanh(3.0 * z),
    "cube": lambda z: z**3,
    "exp": lambda z: torch.exp(2.0 * z),
    "normal-cdf": torch.special.ndtr,
    "half-cube": lambda z: torch.sign(z) * z.abs() ** 1.5,
}

#: Twist of the spiral map, radians per unit of squared norm.
SPIRAL_SPEED = 0.5
#: Amplitude and angular frequency of the wave map.
WAVE = (0.5, 4.0)


@dataclass(frozen=True)
class Task:
    """One distribution with known MI.

    Attributes:
        family: the family name (``"gaussian-sparse"``, ``"tanh"``, ``"softmax"``, ...).
        dim_x, dim_y: dimensions of the two sides.
        truth: the true ``I(X;Y)`` in nats, or (Monte-Carlo truths) a function returning the MI and
            its standard error, called on the first use of :attr:`mi`, so that listing the battery
            costs nothing.
        params: the family's other parameters (``nu``, ``scale``, ``curve``), for labels.
    """

    family: str
    dim_x: int
    dim_y: int
    truth: float | Callable[[], tuple[float, float]]
    params: tuple[tuple[str, float | int | str], ...] = ()
    sampler: Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]] = field(
        default=None, repr=False, compare=False)

    @functools.cached_property
    def _resolved_truth(self) -> tuple[float, float]:
        return self.truth() if callable(self.truth) else (float(self.truth), 0.0)

    @property
    def mi(self) -> float:
        """The true ``I(X;Y)``, nats."""
        return self._resolved_truth[0]

    @property
    def mi_stderr(self) -> float:
        """The standard error of :attr:`mi`, nats: 0 for a closed form."""
        return self._resolved_truth[1]

    @property
    def name(self) -> str:
        """A unique label, e.g. ``gaussian-dense 5+5 MI=2`` or ``student-t 2+2 nu=1 MI=0.22``."""
        extra = "".join(f" {key}={value:g}" if isinstance(value, (int, float)) else f" {key}={value}"
                        for key, value in self.params)
        return f"{self.family} {self.dim_x}+{self.dim_y}{extra} MI={self.mi:.3g}"

    def sample(self, n: int, seed: Seed = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` paired samples: ``x (n, dim_x)`` and ``y (n, dim_y)``, float64 CPU tensors."""
        return self.sampler(check_positive_int(n, "n"), make_generator(seed))


# ----------------------------------------------------------------------------- Gaussians
def gaussian_mi(covariance: np.ndarray, dim_x: int) -> float:
    """``½·log(det Σ_x · det Σ_y / det Σ)`` of a joint covariance ``(dx+dy, dx+dy)``, nats."""
    logdet = lambda m: np.linalg.slogdet(m)[1]  # noqa: E731
    return 0.5 * (logdet(covariance[:dim_x, :dim_x]) + logdet(covariance[dim_x:, dim_x:]) - logdet(covariance))


def _sample_gaussian(covariance: np.ndarray, dim_x: int, n: int, generator: torch.Generator):
    factor = torch.from_numpy(np.linalg.cholesky(covariance))
    z = torch.randn(n, covariance.shape[0], generator=generator, dtype=torch.float64) @ factor.T
    return z[:, :dim_x].contiguous(), z[:, dim_x:].contiguous()


def sparse_covariance(dim_x: int, dim_y: int, mi: float) -> np.ndarray:
    """Identity covariance except a correlation ``√(1 − e^{−2·mi})`` between ``x₁`` and ``y₁``."""
    covariance = np.eye(dim_x + dim_y)
    covariance[0, dim_x] = covariance[dim_x, 0] = math.sqrt(-math.expm1(-2.0 * mi))
    return covariance


def equicorrelated(n: int, c: float) -> np.ndarray:
    """``(1 − c)·I + c·11ᵀ``, shape ``(n, n)``."""
    return (1.0 - c) * np.eye(n) + c * np.ones((n, n))


def dense_covariance(dim_x: int, dim_y: int, mi: float) -> np.ndarray:
    """The equicorrelated covariance over ``dim_x + dim_y`` coordinates whose MI is ``mi``."""
    if mi == 0.0:
        return np.eye(dim_x + dim_y)
    c = brentq(lambda c: gaussian_mi(equicorrelated(dim_x + dim_y, c), dim_x) - mi, 0.0, 1.0 - 1e-15, xtol=1e-15)
    return equicorrelated(dim_x + dim_y, c)


def gaussian_task(structure: str, dim_x: int, dim_y: int, mi: float) -> Task:
    """``gaussian-sparse`` or ``gaussian-dense`` with the given dimensions and MI (nats)."""
    covariance = (sparse_covariance if structure == "sparse" else dense_covariance)(dim_x, dim_y, mi)
    return Task(f"gaussian-{structure}", dim_x, dim_y, mi,
                sampler=lambda n, g: _sample_gaussian(covariance, dim_x, n, g))


# ----------------------------------------------------------------------------- Student-t
def student_t_mi_correction(nu: float, dim_x: int, dim_y: int) -> float:
    """MI of a multivariate Student-t beyond the Gaussian MI of its scale matrix, nats (> 0).

    With ``g(d) = −log Γ((ν+d)/2) + (ν+d)/2·ψ((ν+d)/2)``, the entropy of a ``d``-dimensional
    t gives ``I = I_Gauss(Σ) + g(d_x) + g(d_y) − g(d_x+d_y) − g(0)``.
    """
    def g(d: int) -> float:
        a = 0.5 * (nu + d)
        return -gammaln(a) + a * digamma(a)

    return float(g(dim_x) + g(dim_y) - g(dim_x + dim_y) - g(0))


def student_t_task(nu: int, dim_x: int, dim_y: int, gaussian_part: float) -> Task:
    """Student-t with ``nu`` (integer) degrees of freedom and a sparse scale of Gaussian MI ``gaussian_part``."""
    nu = check_positive_int(nu, "nu")
    covariance = sparse_covariance(dim_x, dim_y, gaussian_part)
    mi = gaussian_part + student_t_mi_correction(nu, dim_x, dim_y)

    def sample(n: int, generator: torch.Generator):
        x, y = _sample_gaussian(covariance, dim_x, n, generator)
        chi2 = torch.randn(n, nu, generator=generator, dtype=torch.float64).square().sum(dim=1, keepdim=True)
        scale = (nu / chi2).sqrt()
        return x * scale, y * scale

    return Task("student-t", dim_x, dim_y, mi, (("nu", nu),), sampler=sample)


# ----------------------------------------------------------------------------- invariances
def monotone_map_task(map_name: str, dim: int, mi: float) -> Task:
    """Correlated Gaussians (MI split over ``dim`` rotated pairs) with ``map_name`` on every coordinate."""
    transform = MONOTONE_MAPS[map_name]

    def sample(n: int, generator: torch.Generator):
        x, y = correlated_gaussians(n, mi, dim, seed=generator)
        return transform(x), transform(y)

    return Task(map_name, dim, dim, mi, sampler=sample)


def spiral(x: torch.Tensor, speed: float = SPIRAL_SPEED) -> torch.Tensor:
    """Rotate the first two coordinates of each row by ``speed·‖x‖²`` radians: ``(N, d ≥ 2)`` -> same."""
    angle = speed * x.square().sum(dim=1)
    cos, sin = angle.cos(), angle.sin()
    out = x.clone()
    out[:, 0] = cos * x[:, 0] - sin * x[:, 1]
    out[:, 1] = sin * x[:, 0] + cos * x[:, 1]
    return out


def wave(x: torch.Tensor, amplitude: float = WAVE[0], frequency: float = WAVE[1]) -> torch.Tensor:
    """Shift the first coordinate of each row by ``amplitude·sin(frequency·x_last)``: ``(N, d ≥ 2)`` -> same.

    A shear with unit Jacobian, hence a diffeomorphism: narrow components become wavy bands, a fine
    structure that no per-coordinate map undoes.
    """
    out = x.clone()
    out[:, 0] += amplitude * torch.sin(frequency * x[:, -1])
    return out


def spiral_task(dim: int, mi: float) -> Task:
    """Correlated Gaussians whose ``x`` side is randomly rotated, then spiralled."""
    def sample(n: int, generator: torch.Generator):
        x, y = correlated_gaussians(n, mi, dim, mix=False, seed=generator)
        return spiral(x @ random_rotation(dim, generator).T), y

    return Task("spiral", dim, dim, mi, sampler=sample)


CURVES = {
    "arc": (2, lambda u: torch.stack([torch.cos(math.pi * u), torch.sin(math.pi * u)], dim=1)),
    "helix": (3, lambda u: torch.stack([torch.cos(4 * math.pi * u), torch.sin(4 * math.pi * u), u], dim=1)),
}


def curve_task(curve: str, mi: float) -> Task:
    """A 1-D Gaussian ``x`` and ``y`` = its correlated partner ``t`` carried onto a curve, ``u = Φ(t)``."""
    dim_y, embed = CURVES[curve]

    def sample(n: int, generator: torch.Generator):
        x, t = correlated_gaussians(n, mi, 1, seed=generator)
        return x, embed(torch.special.ndtr(t[:, 0]))

    return Task("curve", 1, dim_y, mi, (("curve", curve),), sampler=sample)


def softmax_task(logit_scale: float, mi: float, classes: int = 5) -> Task:
    """A saturated softmax layer ``PCA(softmax(U·(sX + σε)))`` with ``I = (c−1)/2·log(1 + s²/σ²)``.

    ``X ~ N(0, I_{c−1})``, ``ε ~ N(0, I_{c−1})``; ``s`` and ``σ`` follow from the logit scale
    ``√(s² + σ²)`` and the MI. ``y`` has ``c − 1`` dimensions.
    """
    from ibkit.compression import PCA

    dim = classes - 1
    ratio = math.expm1(2.0 * mi / dim)  # s² / σ²
    signal = logit_scale * math.sqrt(ratio / (1.0 + ratio))
    noise = logit_scale / math.sqrt(1.0 + ratio)
    # Orthonormal basis of the sum-zero subspace: QR of the centred standard basis.
    basis = torch.linalg.qr(torch.eye(classes, dtype=torch.float64) - 1.0 / classes)[0][:, :dim]

    def sample(n: int, generator: torch.Generator):
        x = torch.randn(n, dim, generator=generator, dtype=torch.float64)
        eps = torch.randn(n, dim, generator=generator, dtype=torch.float64)
        probabilities = torch.softmax((signal * x + noise * eps) @ basis.T, dim=1)
        return x, PCA(dim).fit_transform(probabilities)

    return Task("softmax", dim, dim, mi, (("scale", float(logit_scale)),), sampler=sample)


# ----------------------------------------------------------------------------- mixtures
#: Maps of ``x`` for the mixture tasks: a random rotation, :func:`wave` or a :data:`MONOTONE_MAPS` map.
X_MAPS = ("rotation", "wave", *MONOTONE_MAPS)


def map_side(name: str, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One of :data:`X_MAPS` applied to the rows of ``x (N, d)`` (``wave`` needs ``d ≥ 2``)."""
    if name == "rotation":
        return x @ random_rotation(x.shape[1], generator).T
    if name == "wave":
        return wave(x)
    return MONOTONE_MAPS[name](x)


def _mixture(shape: str, dim_x: int, dim_y: int, components: int, width: float,
             fraction: float) -> tuple[str, tuple, GaussianMixture]:
    """The family, the shape's label parameters and the joint mixture of a :func:`mixture_task`."""
    check_choice(shape, "shape", ("ring", "inliers", *MIXTURE_CURVES))
    if shape == "ring":
        return "mixture-ring", (), ring_mixture(components, width, dim_x, dim_y)
    if shape == "inliers":
        return "mixture-inliers", (("fraction", fraction),), inlier_mixture(fraction, components, width, dim_x, dim_y)
    return "mixture-curve", (("curve", shape),), curve_mixture(shape, components, width, dim_x, dim_y)


@functools.cache
def mixture_truth(shape: str, dim_x: int, dim_y: int, components: int, width: float,
                  fraction: float = 0.1) -> tuple[float, float]:
    """``(MI, Monte-Carlo standard error)`` in nats of a :func:`mixture_task`'s mixture, computed once
    per process (about a second); a map of ``x`` does not change it."""
    mixture = _mixture(shape, dim_x, dim_y, components, width, fraction)[2]
    return mixture_mutual_information(mixture, dim_x)


def mixture_task(shape: str, dim_x: int, dim_y: int, components: int, width: float, x_map: str | None = None,
                 fraction: float = 0.1) -> Task:
    """A joint Gaussian mixture of :mod:`ibkit.synthetic.mixtures` whose MI is a Monte-Carlo value.

    The truth (:func:`mixture_truth`) is computed on the first use of ``Task.mi``.

    Args:
        shape: ``"ring"`` (:func:`~ibkit.synthetic.mixtures.ring_mixture`, family ``mixture-ring``),
            ``"inliers"`` (:func:`~ibkit.synthetic.mixtures.inlier_mixture`, ``mixture-inliers``) or a
            curve of :data:`~ibkit.synthetic.mixtures.MIXTURE_CURVES` (``mixture-curve``).
        dim_x, dim_y: dimensions of the two sides.
        components: the number ``K`` of narrow components.
        width: their standard deviation in the structured coordinates.
        x_map: ``None`` or one of :data:`X_MAPS`, applied to ``x`` after sampling (the MI is unchanged).
        fraction: the total weight of the narrow components (``"inliers"`` only).
    """
    family, params, mixture = _mixture(shape, dim_x, dim_y, components, width, fraction)
    if x_map is not None:
        check_choice(x_map, "x_map", X_MAPS)
        if x_map == "wave" and dim_x < 2:
            raise ValueError(f"the wave map needs dim_x >= 2, got {dim_x}")

    def sample(n: int, generator: torch.Generator):
        z = mixture.sample(n, generator)
        x, y = z[:, :dim_x], z[:, dim_x:].contiguous()
        return (x.contiguous() if x_map is None else map_side(x_map, x, generator)), y

    params += (("K", components), ("width", width)) + ((("map", x_map),) if x_map else ())
    truth = functools.partial(mixture_truth, shape, dim_x, dim_y, components, width, fraction)
    return Task(family, dim_x, dim_y, truth, params, sampler=sample)


def mixture_battery() -> list[Task]:
    """The mixture family (19 tasks, 0.37–2.77 nats): rings at 1–5 dimensions per side, curves at
    1–3 (five waved in 2 + 1 dimensions, where a large neighbour order loses most of the MI) and
    inliers at 1–5."""
    rings = [(1, 1, 16, 0.05, None), (1, 1, 32, 0.02, "exp"), (2, 2, 16, 0.1, "rotation"), (3, 3, 16, 0.1, None),
             (5, 5, 32, 0.1, None)]
    curves = [("spiral", 1, 1, 48, 0.03, None), ("spiral", 1, 1, 48, 0.06, None), ("sine", 1, 1, 48, 0.01, None),
              ("sine", 2, 1, 16, 0.05, "wave"), ("sine", 2, 1, 16, 0.1, "wave"), ("diagonal", 2, 1, 4, 0.05, "wave"),
              ("diagonal", 2, 1, 8, 0.05, "wave"), ("spiral", 2, 1, 32, 0.03, "wave"),
              ("diagonal", 3, 3, 8, 0.05, "rotation")]
    inliers = [(1, 1, 8, 0.02, 0.2), (2, 2, 8, 0.02, 0.1), (3, 3, 8, 0.02, 0.2), (5, 5, 32, 0.05, 0.05),
               (5, 5, 32, 0.05, 0.2)]
    return ([mixture_task("ring", *spec) for spec in rings] + [mixture_task(*spec) for spec in curves]
            + [mixture_task("inliers", dx, dy, k, width, fraction=fraction) for dx, dy, k, width, fraction in inliers])


# ----------------------------------------------------------------------------- the battery
def battery(size: str = "full") -> list[Task]:
    """The known-MI battery: ``"full"`` (145 tasks, the bench) or ``"quick"`` (a test subset of 10).

    Full: 126 tasks with a closed-form MI — sparse Gaussians at 1–25 dimensions per side and 0–5
    nats, dense Gaussians at 2–25 dimensions and 0.5–5 nats, Student-t (ν = 1, 3) at 1–5
    dimensions, every monotone map at 1, 2 and 4 dimensions and 0.5–2 nats, spirals at 2–5
    dimensions, two curves and the softmax layer at logit scales 3 and 10 — then the 19 tasks of
    :func:`mixture_battery`, whose MI is a Monte-Carlo value.
    """
    if size == "quick":
        return [
            gaussian_task("sparse", 2, 2, 1.0), gaussian_task("dense", 5, 5, 1.0),
            student_t_task(1, 2, 2, 0.5), monotone_map_task("tanh", 2, 1.0),
            monotone_map_task("exp", 4, 2.0), spiral_task(3, 1.0), curve_task("arc", 1.0),
            softmax_task(10.0, 2.0), mixture_task("ring", 1, 1, 16, 0.05),
            mixture_task("inliers", 2, 2, 8, 0.02, fraction=0.1),
        ]
    if size != "full":
        raise ValueError(f"battery size must be 'full' or 'quick', got {size!r}")
    tasks = [gaussian_task("sparse", d, d, mi) for d in (1, 2, 3, 4, 5, 10, 25) for mi in (0.0, 0.5, 1.0, 2.0, 5.0)]
    tasks += [gaussian_task("dense", d, d, mi) for d in (2, 5, 10, 25) for mi in (0.5, 1.0, 2.0, 5.0)]
    tasks += [student_t_task(nu, d, d, part) for nu in (1, 3) for d in (1, 2, 5) for part in (0.0, 1.0)]
    tasks += [monotone_map_task(name, d, mi) for name in MONOTONE_MAPS for d in (1, 2, 4) for mi in (0.5, 1.0, 2.0)]
    tasks += [spiral_task(d, mi) for d in (2, 3, 5) for mi in (1.0, 2.0)]
    tasks += [curve_task(curve, mi) for curve in CURVES for mi in (0.5, 1.0, 2.0)]
    tasks += [softmax_task(scale, mi) for scale in (3.0, 10.0) for mi in (1.0, 2.0, 4.0)]
    return tasks + mixture_battery()
