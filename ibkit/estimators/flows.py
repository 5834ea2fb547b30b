"""Normalizing flows for the flow estimator: the only module that knows ``nflows``.

Every flow here maps one variable's samples to a latent of the same total size and returns the
log-absolute-determinant of its Jacobian, ``flow(x) -> (z (N, D), logabsdet (N,))``, and keeps
every latent coordinate (no multi-scale factoring out: all of them enter the base distribution).

* :func:`vector_flow` for ``(N, d)`` vectors: per step an invertible linear map (LU) and a
  rational-quadratic spline coupling layer (for ``d = 1``, an elementwise monotone spline);
* :class:`MarginalSpline`, a learnable monotone spline per coordinate over the whole range of the
  data, started at the smooth map that makes each marginal standard normal: the first
  layer of a vector flow, which takes heavy tails, skew and saturation off the coupling layers;
* :class:`FixedAffine`, a constant invertible affine map (the canonical-correlation coordinates);
* :func:`image_flow` for ``(N, C, H, W)`` images (H and W divisible by 2 per level): per level a
  squeeze, then steps of ActNorm, an invertible 1×1 convolution and an affine coupling layer with a
  convolutional network; the final latent is flattened;
* :func:`conditional_vector_flow` is a vector flow whose layers also see a context vector (class
  labels); :func:`chain` composes flows.

To swap ``nflows`` for another library, reimplement these functions and the spline of
:class:`MarginalSpline`: the estimator only calls ``flow(x)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ibkit.estimators.preprocessing import score_knots

#: Spline settings: bins, and the half-width of the spline's range (linear tails outside), in
#: units of the standardised data.
SPLINE_BINS = 8
TAIL_BOUND = 4.0
#: Bins of the per-coordinate first layer (:class:`MarginalSpline`), its smallest bin width and
#: height (shares of the range; float32 resolves about 1e-7 of it) and its slope range at the start.
MARGINAL_BINS = 32
MARGINAL_MIN_WIDTH = 1e-6
MARGINAL_MIN_SLOPE, MARGINAL_MAX_START_SLOPE = 1e-4, 1e3


class MarginalSpline(nn.Module):
    """A learnable monotone rational-quadratic spline on every coordinate, started at the smooth map
    that makes each marginal of ``sample`` standard normal: ``(N, d) -> (z (N, d), logabsdet (N,))``.

    Per coordinate, the knots are ``bins + 1`` order statistics of ``sample`` evenly spaced in normal
    score (its minimum and maximum included, see
    :func:`~ibkit.estimators.preprocessing.score_knots`) sent to those scores, with the harmonic
    mean of the neighbouring secants as the slope at each knot (so the start never overshoots); beyond the sample's range the map is
    linear with the end slopes. Heavy tails (``exp``), saturation (``tanh``) and skew are so undone
    before the coupling layers, which only cover ``±TAIL_BOUND``; unlike normal scores the map is
    smooth at the scale of single samples (no rank jitter), and the likelihood keeps training it.
    Bins narrower than ``MARGINAL_MIN_WIDTH`` of the range (float32's resolution) are widened, so a
    tail a million times longer than the central spacing (``exp(2z)`` at N = 10k) starts roughly
    placed; the flow estimator's default ``"smooth-scores"`` input (float64) never has one.

    Args:
        sample: ``(n, d)`` samples that place the knots (``n ≥ 2``; fewer knots for small ``n``).
        bins: spline bins per coordinate.
    """

    def __init__(self, sample: torch.Tensor, bins: int = MARGINAL_BINS):
        super().__init__()
        n, dim = sample.shape
        ranks, z_knots = score_knots(n, bins)                                    # (K + 1,) each
        x_knots = sample.double().sort(dim=0).values[ranks.to(sample.device)].T.cpu()  # (d, K + 1)
        left, right = x_knots[:, 0], x_knots[:, -1]
        span = (right - left).clamp_min(torch.finfo(torch.float32).eps)
        widths = (x_knots.diff(dim=1) / span[:, None]).clamp_min(2 * MARGINAL_MIN_WIDTH)
        heights = z_knots.diff() / (z_knots[-1] - z_knots[0])
        secants = heights / widths                                               # slopes in unit square
        harmonic = 2.0 / (1.0 / secants[:, :-1] + 1.0 / secants[:, 1:])
        slopes = torch.cat([secants[:, :1], harmonic, secants[:, -1:]], dim=1).clamp(
            2 * MARGINAL_MIN_SLOPE, MARGINAL_MAX_START_SLOPE)
        self.register_buffer("left", left.float())
        self.register_buffer("span", span.float())
        self.register_buffer("bottom", z_knots[0].float())
        self.register_buffer("height", (z_knots[-1] - z_knots[0]).float())
        self.unnormalized_widths = nn.Parameter(widths.log().float())
        self.unnormalized_heights = nn.Parameter(heights.log().expand(dim, -1).clone().float())
        excess = slopes - MARGINAL_MIN_SLOPE
        self.unnormalized_derivatives = nn.Parameter((excess + (-(-excess).expm1()).log()).float())  # softplus⁻¹

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        from nflows.transforms.splines.rational_quadratic import rational_quadratic_spline

        unit = (x - self.left) / self.span                                       # (N, d), [0, 1] inside
        inside = (unit >= 0) & (unit <= 1)
        slopes = MARGINAL_MIN_SLOPE + F.softplus(self.unnormalized_derivatives)  # (d, K + 1)
        # Linear outside the knots: below with the first slope, above with the last.
        below = unit < 0
        end = torch.where(below, 0.0, 1.0)
        end_slope = torch.where(below, slopes[:, 0], slopes[:, -1])
        out = end + end_slope * (unit - end)
        log_slope = end_slope.log().expand_as(unit).clone()
        if bool(inside.any()):
            column = inside.nonzero()[:, 1]
            spline, log_derivative = rational_quadratic_spline(
                unit[inside], self.unnormalized_widths[column], self.unnormalized_heights[column],
                self.unnormalized_derivatives[column], min_bin_width=MARGINAL_MIN_WIDTH,
                min_bin_height=MARGINAL_MIN_WIDTH, min_derivative=MARGINAL_MIN_SLOPE)
            out = out.masked_scatter(inside, spline)
            log_slope = log_slope.masked_scatter(inside, log_derivative)
        z = self.bottom + self.height * out
        logabsdet = (log_slope + (self.height / self.span).log()).sum(dim=1)
        return z, logabsdet


class FixedAffine(nn.Module):
    """The constant invertible map ``x -> (x − shift) @ matrix``: ``(N, d) -> (z (N, d), logabsdet (N,))``."""

    def __init__(self, shift: torch.Tensor, matrix: torch.Tensor):
        super().__init__()
        self.register_buffer("shift", shift.float())
        self.register_buffer("matrix", matrix.float())
        self.register_buffer("logabsdet", torch.linalg.slogdet(matrix.double())[1].float())

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return (x - self.shift) @ self.matrix, self.logabsdet.expand(x.shape[0])


class Flattened(nn.Module):
    """Wrap an image transform so that it returns ``(z (N, C·H·W), logabsdet (N,))``."""

    def __init__(self, transform: nn.Module):
        super().__init__()
        self.transform = transform

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, logabsdet = self.transform(x)
        return z.flatten(1), logabsdet


def vector_flow(dim: int, steps: int = 4, hidden: int = 64, blocks: int = 2, context: int | None = None) -> nn.Module:
    """A flow for ``(N, dim)`` vectors: ``steps`` × [LU linear → spline coupling], spline-only for ``dim = 1``.

    With ``context`` (a number of context features) the coupling networks also see a context
    vector, ``flow(x, context=c)``: a conditional flow.
    """
    from nflows import transforms
    from nflows.nn import nets

    if dim == 1:
        if context is None:
            layers = [transforms.PiecewiseRationalQuadraticCDF(shape=[1], num_bins=SPLINE_BINS, tails="linear",
                                                               tail_bound=TAIL_BOUND) for _ in range(2)]
        else:
            layers = [transforms.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                1, hidden, context_features=context, num_bins=SPLINE_BINS, tails="linear", tail_bound=TAIL_BOUND)
                for _ in range(2)]
        return transforms.CompositeTransform(layers)

    def net(in_features: int, out_features: int) -> nn.Module:
        return nets.ResidualNet(in_features, out_features, hidden_features=hidden, num_blocks=blocks,
                                context_features=context)

    layers: list[nn.Module] = []
    for step in range(steps):
        mask = torch.arange(dim) % 2 == step % 2
        layers += [transforms.LULinear(dim, identity_init=True),
                   transforms.PiecewiseRationalQuadraticCouplingTransform(
                       mask.int(), net, num_bins=SPLINE_BINS, tails="linear", tail_bound=TAIL_BOUND)]
    layers.append(transforms.LULinear(dim, identity_init=True))
    return transforms.CompositeTransform(layers)


def image_flow(shape: Sequence[int], levels: int = 2, steps: int = 2, hidden: int = 32) -> nn.Module:
    """A Glow-like flow for ``(N, C, H, W)`` images that keeps every latent; ``H`` and ``W`` need
    ``levels`` halvings."""
    from nflows import transforms
    from nflows.nn import nets

    channels, height, width = shape
    if height % 2**levels or width % 2**levels:
        raise ValueError(f"an image flow with {levels} levels needs H and W divisible by {2 ** levels}, "
                         f"got {height}×{width}")
    layers: list[nn.Module] = []
    for _ in range(levels):
        layers.append(transforms.SqueezeTransform())
        channels *= 4
        for step in range(steps):
            mask = torch.arange(channels) % 2 == step % 2

            def net(in_channels: int, out_channels: int) -> nn.Module:
                return nets.ConvResidualNet(in_channels, out_channels, hidden_channels=hidden, num_blocks=1)

            layers += [transforms.ActNorm(channels), transforms.OneByOneConvolution(channels),
                       transforms.AffineCouplingTransform(mask.int(), net)]
    return Flattened(transforms.CompositeTransform(layers))


def conditional_vector_flow(dim: int, context: int, steps: int = 4, hidden: int = 64) -> nn.Module:
    """A vector flow whose every layer may depend on ``context`` features (``flow(x, context=c)``)."""
    return vector_flow(dim, steps=steps, hidden=hidden, context=context)


def chain(*layers: nn.Module) -> nn.Module:
    """The flow that applies ``layers`` in order (log-determinants add up; a context reaches every layer)."""
    from nflows import transforms

    return transforms.CompositeTransform(layers)
