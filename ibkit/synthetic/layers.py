"""Stochastic layers whose information plane is known exactly: the test the plane itself must pass.

The probe is a labelled Gaussian mixture: ``Y`` uniform on ``C`` classes and
``X | Y=c ~ N(μ_c, s²·I_d)``. A layer is ``L = f(B·X + σ·Z)`` with ``B`` a ``(W, d)`` weight,
``Z ~ N(0, I_W)`` the injected noise and ``f`` applied per unit (``linear``, ``leaky-relu``,
``tanh``, ``sigmoid``) or the softmax over the ``W`` units.

Why both MIs are computable. Every per-unit ``f`` here is injective, so ``I(X;L) = I(X; V)`` with
``V = BX + σZ`` (likewise for ``Y``). Softmax is injective up to the all-ones direction: it keeps
exactly ``PᵀV`` for an orthonormal basis ``P`` of the sum-zero subspace, so there ``B`` is
replaced by ``PᵀB`` and ``Z`` by ``PᵀZ``, which is again standard normal. Write ``A = U·S·Rᵀ`` (thin
SVD, rank ``r``); the noise outside the span of ``U`` is independent of everything else, so

    I(X;L) = I(X;T),  I(Y;L) = I(Y;T),  T = S·RᵀX + σ·Z_r ∈ R^r,

and ``T | Y=c ~ N(S·Rᵀμ_c, s²·S² + σ²·I)`` (diagonal, because ``RᵀR = I``). Hence

    I(X;T) = h(T) − r/2·log(2πeσ²),
    I(Y;T) = h(T) − 1/C·Σ_c ½·Σ_i log(2πe(s²·S_i² + σ²)),

with ``h(T)`` the entropy of an ``r``-dimensional Gaussian mixture: the one number without a
closed form, computed by Monte Carlo on ``MIXTURE_SAMPLES`` draws with the exact log-density
(standard error ≈ 0.002 nats, reported with the truth).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ibkit.synthetic.gaussian import Seed, make_generator
from ibkit.validation import check_choice, check_positive_int

#: Per-unit (or, for softmax, whole-layer) maps; all injective on the units they act on.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda v: v,
    "leaky-relu": lambda v: torch.nn.functional.leaky_relu(v, 0.01),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softmax": lambda v: torch.softmax(v, dim=1),
}
#: Monte-Carlo draws for the mixture entropy h(T).
MIXTURE_SAMPLES = 400_000


@dataclass(frozen=True)
class LabelledMixture:
    """``Y`` uniform on ``C`` classes, ``X | Y=c ~ N(μ_c, s²·I_d)``.

    Attributes:
        means: ``(C, d)`` class means ``μ_c``.
        std: the within-class standard deviation ``s``.
    """

    means: torch.Tensor
    std: float

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.means.shape[0])

    def sample(self, n: int, seed: Seed = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (n, d)`` float64 and ``y (n,)`` int64 labels, balanced up to rounding."""
        generator = make_generator(seed)
        n = check_positive_int(n, "n")
        labels = torch.randint(self.n_classes, (n,), generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return self.means[labels] + self.std * noise, labels


def labelled_mixture(n_classes: int = 10, dim: int = 4, spread: float = 1.0, std: float = 0.5,
                     seed: int = 0) -> LabelledMixture:
    """A mixture with ``N(0, spread²·I)`` random class means (seeded) and within-class std ``std``."""
    generator = make_generator(seed)
    means = spread * torch.randn(check_positive_int(n_classes, "n_classes"), check_positive_int(dim, "dim"),
                                 generator=generator, dtype=torch.float64)
    return LabelledMixture(means, float(std))


@dataclass(frozen=True)
class StochasticLayer:
    """``L = f(B·X + σ·Z)``: a noisy layer with a per-unit (or softmax) activation.

    Attributes:
        weight: ``(W, d)`` weight ``B``.
        noise: the noise standard deviation ``σ > 0`` per unit.
        activation: a key of :data:`ACTIVATIONS`.
    """

    weight: torch.Tensor
    noise: float
    activation: str = "linear"

    def __post_init__(self) -> None:
        check_choice(self.activation, "activation", tuple(ACTIVATIONS))
        if not self.noise > 0:
            raise ValueError(f"noise must be positive, got {self.noise}")

    @property
    def width(self) -> int:
        return int(self.weight.shape[0])

    def __call__(self, x: torch.Tensor, seed: Seed = 0) -> torch.Tensor:
        """The layer's ``(N, W)`` output for inputs ``x (N, d)``, float32 as a network records it."""
        generator = make_generator(seed)
        noise = torch.randn(x.shape[0], self.width, generator=generator, dtype=torch.float64)
        return ACTIVATIONS[self.activation](x @ self.weight.T + self.noise * noise).float()

    def effective_weight(self) -> torch.Tensor:
        """The weight of what ``f`` keeps of ``B·X + σ·Z``: ``B``, or ``PᵀB`` for softmax."""
        if self.activation != "softmax":
            return self.weight
        width = self.width
        centred = torch.eye(width, dtype=torch.float64) - 1.0 / width
        basis = torch.linalg.qr(centred)[0][:, : width - 1]
        return basis.T @ self.weight


@dataclass(frozen=True)
class LayerTruth:
    """The exact plane point of a layer, nats; ``mc_stderr`` is the Monte-Carlo error of both."""

    i_xl: float
    i_yl: float
    mc_stderr: float


def layer_truth(layer: StochasticLayer, mixture: LabelledMixture, samples: int = MIXTURE_SAMPLES,
                seed: int = 0) -> LayerTruth:
    """``I(X;L)`` and ``I(Y;L)`` of ``layer`` on ``mixture`` (see the module docstring)."""
    _, singular, right = torch.linalg.svd(layer.effective_weight().to(torch.float64), full_matrices=False)
    keep = singular > singular.max() * 1e-10
    singular, right = singular[keep], right[keep]
    rank = int(singular.numel())
    means = mixture.means @ right.T * singular  # (C, r)
    variances = (mixture.std * singular) ** 2 + layer.noise**2  # (r,), shared by every class
    entropy, stderr = mixture_entropy(means, variances, samples, seed)
    class_entropy = 0.5 * float(torch.log(2 * math.pi * math.e * variances).sum())
    noise_entropy = 0.5 * rank * math.log(2 * math.pi * math.e * layer.noise**2)
    return LayerTruth(entropy - noise_entropy, entropy - class_entropy, stderr)


def mixture_entropy(means: torch.Tensor, variances: torch.Tensor, samples: int = MIXTURE_SAMPLES,
                    seed: int = 0) -> tuple[float, float]:
    """Entropy (nats) of ``1/C·Σ_c N(means_c, diag(variances))`` by Monte Carlo, with its standard error.

    Args:
        means: ``(C, r)`` component means.
        variances: ``(r,)`` per-coordinate variances shared by the components.
    """
    generator = make_generator(seed)
    n_classes, dim = means.shape
    log_terms = []
    for start in range(0, samples, 50_000):
        count = min(50_000, samples - start)
        labels = torch.randint(n_classes, (count,), generator=generator)
        t = means[labels] + variances.sqrt() * torch.randn(count, dim, generator=generator, dtype=torch.float64)
        squared = ((t[:, None, :] - means[None]) ** 2 / variances).sum(dim=2)  # (count, C)
        log_density = (torch.logsumexp(-0.5 * squared, dim=1) - math.log(n_classes)
                       - 0.5 * float(torch.log(2 * math.pi * variances).sum()))
        log_terms.append(-log_density)
    terms = torch.cat(log_terms)
    return float(terms.mean()), float(terms.std() / math.sqrt(samples))


_TRUTHS: dict[bytes, LayerTruth] = {}


def _cached_truth(layer: StochasticLayer, mixture: LabelledMixture) -> LayerTruth:
    # The truth depends on the weight only through (effective weight / noise): the key.
    key = (layer.effective_weight() / layer.noise).numpy().tobytes() + mixture.means.numpy().tobytes() + \
        str(mixture.std).encode()
    if key not in _TRUTHS:
        _TRUTHS[key] = layer_truth(layer, mixture)
    return _TRUTHS[key]


@dataclass(frozen=True)
class PlaneCase:
    """One battery point: a probe mixture, a layer and its exact plane point."""

    activation: str
    width: int
    noise: float
    mixture: LabelledMixture = field(repr=False)
    layer: StochasticLayer = field(repr=False)

    @property
    def name(self) -> str:
        return f"{self.activation}-{self.width}-σ{self.noise:g}"

    @property
    def truth(self) -> LayerTruth:
        """The exact plane point (computed once per distinct layer and mixture)."""
        return _cached_truth(self.layer, self.mixture)

    def sample(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x (n, d)``, ``y (n,)`` and the layer ``(n, W)`` for one seeded draw."""
        generator = make_generator(seed)
        x, y = self.mixture.sample(n, generator)
        return x, y, self.layer(x, generator)


#: Pre-activation scale per activation: where each map bends (tanh, sigmoid, softmax saturate).
GAINS = {"linear": 1.0, "leaky-relu": 1.0, "tanh": 2.0, "sigmoid": 4.0, "softmax": 3.0}
#: Noise levels relative to the pre-activation scale, from ≈ 0.3 nats to far beyond log N.
RELATIVE_NOISE = (3.0, 1.0, 0.3, 0.1, 0.02)


def plane_case(activation: str, width: int, relative_noise: float, mixture: LabelledMixture | None = None,
               seed: int = 0) -> PlaneCase:
    """A layer of ``width`` units with seeded random weights whose pre-activations have standard
    deviation ``GAINS[activation]`` (on the mixture) and noise ``relative_noise`` times that."""
    mixture = mixture or labelled_mixture()
    generator = make_generator(seed)
    weight = torch.randn(check_positive_int(width, "width"), mixture.dim, generator=generator, dtype=torch.float64)
    covariance = torch.cov(mixture.means.T, correction=0) + mixture.std**2 * torch.eye(mixture.dim, dtype=torch.float64)
    unit_std = torch.sqrt(torch.einsum("wd,de,we->w", weight, covariance, weight))
    gain = GAINS[check_choice(activation, "activation", tuple(ACTIVATIONS))]
    weight = gain * weight / unit_std[:, None]
    layer = StochasticLayer(weight, gain * relative_noise, activation)
    return PlaneCase(activation, width, gain * relative_noise, mixture, layer)


def plane_battery(size: str = "full") -> list[PlaneCase]:
    """The known-truth plane battery on the 10-class 4-d mixture of :func:`labelled_mixture`.

    ``"full"``: every activation at a narrow width (4 units; softmax 10) and a wide one (64;
    softmax 10 and 32) at every relative noise of :data:`RELATIVE_NOISE`. ``"quick"``: a test
    subset, one or two noise levels of each activation.
    """
    mixture = labelled_mixture()
    widths = {"linear": (4, 64), "leaky-relu": (4, 64), "tanh": (4, 64), "sigmoid": (4, 64), "softmax": (10, 32)}
    if size == "quick":
        grid = [("linear", 64, 0.3), ("leaky-relu", 64, 0.3), ("tanh", 4, 1.0), ("tanh", 64, 0.3),
                ("sigmoid", 4, 0.3), ("softmax", 10, 0.3), ("softmax", 10, 3.0)]
    elif size == "full":
        grid = [(name, width, noise) for name, pair in widths.items() for width in pair for noise in RELATIVE_NOISE]
    else:
        raise ValueError(f"plane battery size must be 'full' or 'quick', got {size!r}")
    return [plane_case(name, width, noise, mixture) for name, width, noise in grid]
