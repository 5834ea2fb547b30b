"""Mutual information through normalizing flows (MIENF; Butakov et al., NeurIPS 2024).

Two flows, one per variable (a Cartesian-product flow), map ``X`` and ``Y`` to latents
``ξ = f_X(X)``, ``η = f_Y(Y)``; because each flow is invertible on its own side,
``I(X;Y) = I(ξ;η)`` exactly, whatever the flows are. Flows and a Gaussian base ``q(ξ, η)`` are trained
jointly by maximum likelihood of the pairs,

    log p̂(x, y) = log q(f_X(x), f_Y(y)) + log|det J_{f_X}(x)| + log|det J_{f_Y}(y)|,

and the MI is read off the base, where the Jacobians cancel (``ibkit.estimators.gaussian_bases``):
the full Gaussian (``"mienf"``, N-MIENF) or the canonical tridiagonal one (``"mienf-tridiag"``).
The bias is at most ``KL(p(ξ, η) ‖ q)``, the joint misfit the training minimises; a Gaussian base
under-reads dependence that no pair of marginal flows can make jointly Gaussian (the paper's
counter-example: ``η = ±ξ`` with a random sign has infinite MI and zero Gaussian MI).

Vectors: by default each coordinate first gets its float64 smooth normal score
(``preprocess="smooth-scores"``: heavy tails, skew and saturation undone by a smooth monotone map,
without the rank jitter of normal scores), then each flow starts with a learnable monotone
:class:`~ibkit.estimators.flows.MarginalSpline` per coordinate and the canonical-correlation map of
the training pairs (:func:`canonical_maps`), before its coupling layers. Images are standardised
and go straight to an image flow.

Protocol: the samples are split (seeded) into training (70 %), validation (10 %, early stopping on
its negative log-likelihood) and test (20 %) parts. The **headline estimate** is the Monte-Carlo
average of the base's pointwise MI over the held-out test part, with its standard error; the closed
form of the base (averaged over the last epochs before the best one) goes in the estimate's
``diagnostics["closed_form_mi"]`` with its spread, ``"closed_form_spread"``: the two agree when the flows fit and
the test part has not been seen. A held-out average is honest at small N, where the closed form
over-reads (the flows overfit).

With discrete labels ``y`` the flow is class-conditional, ``p(x | y)`` (a conditional vector flow
with a standard normal base), and ``I(X;Y) = E[log p(x|y) − log Σ_c p(c)·p(x|c)]``, averaged over
the test part: never above ``H(Y)``. It is a Barber–Agakov bound, ``E[log q(y|x) − log p(y)]`` with
the flow's class posterior ``q``, so in expectation never above the truth either: an under-fitted
conditional flow reads low.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ibkit.errors import DataError
from ibkit.estimators.base import Prepared
from ibkit.estimators.flows import FixedAffine, MarginalSpline, chain, conditional_vector_flow, image_flow, vector_flow
from ibkit.estimators.gaussian_bases import FullGaussianBase, TridiagonalGaussianBase
from ibkit.estimators.preprocessing import inverse_sqrt
from ibkit.estimators.training import Split, TrainedEstimator
from ibkit.result import Estimate
from ibkit.validation import check_choice, check_positive_int

BASES = {"full": FullGaussianBase, "tridiag": TridiagonalGaussianBase}
#: Total MI (nats) the base starts from when a side is an image (no canonical correlations to start
#: from): spread over its hundreds of pairs, a per-pair default would claim tens of nats at the start.
IMAGE_START_MI = 0.1
#: Epochs whose closed-form MI is averaged (those up to and including the best one).
CLOSED_FORM_EPOCHS = 10


def canonical_maps(x: torch.Tensor, y: torch.Tensor, ridge: float = 1e-6) -> tuple[FixedAffine, FixedAffine, torch.Tensor]:
    """The maps to canonical-correlation coordinates of the training pairs ``x (n, dx)``, ``y (n, dy)``.

    Separate invertible linear maps of each side (so MI is unchanged) make both sides white and
    their cross-covariance diagonal: ``x' = Uᵀ Σxx^{-1/2} (x − μx)``, ``y' = Vᵀ Σyy^{-1/2} (y − μy)`` with
    ``Σxx^{-1/2} Σxy Σyy^{-1/2} = U S Vᵀ``. The flows then start where a Gaussian base is already
    right for the linear part of the dependence, and the base starts at the correlations ``S``.

    Returns:
        ``(map of x, map of y, correlations (min(dx, dy),))``.
    """
    def ridged_inverse_sqrt(covariance: torch.Tensor) -> torch.Tensor:
        identity = torch.eye(covariance.shape[0], dtype=covariance.dtype, device=covariance.device)
        return inverse_sqrt(*torch.linalg.eigh(covariance + ridge * identity))

    x, y = x.double(), y.double()
    mean_x, mean_y = x.mean(0), y.mean(0)
    xc, yc = x - mean_x, y - mean_y
    n = x.shape[0]
    wx, wy = ridged_inverse_sqrt(xc.T @ xc / (n - 1)), ridged_inverse_sqrt(yc.T @ yc / (n - 1))
    u, correlations, vh = torch.linalg.svd(wx @ (xc.T @ yc / (n - 1)) @ wy)
    k = min(x.shape[1], y.shape[1])
    return FixedAffine(mean_x, wx @ u), FixedAffine(mean_y, wy @ vh.T), correlations[:k].clamp(0.0, 1.0 - 1e-6)


class ProductFlow(nn.Module):
    """``(x, y) -> (f_X(x), f_Y(y), log|det J|)`` with a Gaussian base on the latents.

    Each side's flow is ``body ∘ front``: the front is placed on the data (for vectors a
    :class:`MarginalSpline` and the canonical-correlation map, for images nothing), the body is the
    trained flow. A warm start keeps the bodies and the base and places new fronts on the new data.
    """

    def __init__(self, fronts: tuple[nn.Module, nn.Module], bodies: tuple[nn.Module, nn.Module], base: nn.Module):
        super().__init__()
        self.fronts, self.bodies, self.base = nn.ModuleList(fronts), nn.ModuleList(bodies), base

    def latents(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        latents, logdet = [], 0.0
        for data, front, body in zip((x, y), self.fronts, self.bodies):
            placed, logdet_front = front(data)
            latent, logdet_body = body(placed)
            latents.append(latent)
            logdet = logdet + logdet_front + logdet_body
        return latents[0], latents[1], logdet

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of a batch of pairs, nats per pair."""
        xi, eta, logdet = self.latents(x, y)
        return -(self.base.log_prob(xi, eta) + logdet).mean()

    @torch.no_grad()
    def pmi(self, x: torch.Tensor, y: torch.Tensor, batch: int = 4096) -> torch.Tensor:
        """Pointwise MI of every pair under the base, float64 ``(N,)``."""
        parts = []
        for start in range(0, x.shape[0], batch):
            xi, eta, _ = self.latents(x[start:start + batch], y[start:start + batch])
            parts.append(self.base.pmi(xi, eta))
        return torch.cat(parts)


class ConditionalFlow(nn.Module):
    """``log p(x | y)`` for labels ``y``: a :class:`MarginalSpline` front placed on the data, then a
    conditional flow on one-hot labels (the body), standard normal base."""

    def __init__(self, front: nn.Module, body: nn.Module, classes: int, log_prior: torch.Tensor):
        super().__init__()
        self.front, self.body, self.classes = front, body, classes
        self.register_buffer("log_prior", log_prior)

    def log_likelihood(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        placed, logdet_front = self.front(x)
        z, logdet_body = self.body(placed, context=F.one_hot(labels, self.classes).to(x.dtype))
        return -0.5 * (z.square().sum(dim=1) + z.shape[1] * math.log(2.0 * math.pi)) + logdet_front + logdet_body

    def loss(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood ``−log p(x | y)`` of a batch, nats."""
        return -self.log_likelihood(x, labels).mean()

    @torch.no_grad()
    def pmi(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``log p(x|y) − log Σ_c p(c) p(x|c)`` per sample, float64 ``(N,)``."""
        every_class = torch.stack([self.log_likelihood(x, torch.full_like(labels, c)) for c in range(self.classes)], 1)
        mixture = torch.logsumexp(every_class.double() + self.log_prior.double(), dim=1)
        return every_class.double().gather(1, labels[:, None]).squeeze(1) - mixture


class MIENF(TrainedEstimator):
    """Flow-based MI estimator, N-MIENF (``base="full"``) or tridiag-N-MIENF (``base="tridiag"``).

    Args:
        base: ``"full"`` or ``"tridiag"`` Gaussian base.
        steps: coupling steps of each vector flow.
        hidden: hidden width of the coupling networks (images: half of it, at least 16 channels).
        max_epochs: most training epochs (early stopping usually ends sooner).
        patience: epochs without a better validation NLL before stopping.
        batch_size: training batch size.
        lr: Adam learning rate.
        preprocess: the transform of each variable before the flows: ``"auto"`` (default:
            ``"smooth-scores"`` for vectors, standardisation for images), ``"smooth-scores"``,
            ``"normal-scores"``, ``"standardize"``, ``"whiten"`` or ``"none"``. Vectors then go
            through each flow's :class:`~ibkit.estimators.flows.MarginalSpline`. Normal scores blur
            dependence finer than the empirical CDF resolves (2 + 2 Gaussians of 10 nats: 8.74
            against 9.04 with smooth scores at N = 10k; see the README).
        warm_start, progress: see :class:`~ibkit.estimators.training.TrainedEstimator`.
        seed: seeds the split, the initial weights and the batch order.
        device: where to train; default the input's device.

    ``Estimate.diagnostics`` holds the training run (``TrainedEstimator``) and, for
    continuous–continuous MI, ``closed_form_mi``: the base's closed-form MI, nats, averaged over
    the last epochs up to the best one, with their standard deviation ``closed_form_spread``, and
    the closed form after every epoch, ``closed_form_curve``.
    """

    AUTO_VECTOR_PREPROCESS = "smooth-scores"

    def __init__(self, base: str = "tridiag", steps: int = 4, hidden: int = 64, max_epochs: int = 300,
                 patience: int = 20, batch_size: int = 256, lr: float = 1e-3, preprocess: str = "auto",
                 warm_start: bool = False, progress: bool = False, seed: int = 0,
                 device: torch.device | str | None = None):
        super().__init__(max_epochs=max_epochs, patience=patience, batch_size=batch_size, lr=lr,
                         warm_start=warm_start, progress=progress, preprocess=preprocess, seed=seed, device=device)
        self.base = check_choice(base, "base", BASES)
        self.steps = check_positive_int(steps, "steps")
        self.hidden = check_positive_int(hidden, "hidden")
        self.name = "mienf" if base == "full" else "mienf-tridiag"

    # ------------------------------------------------------------------ the two cases
    def continuous_estimate(self, x: Prepared, y: Prepared) -> Estimate:
        x_data, y_data = self._inputs(x), self._inputs(y)
        split = Split.of(x_data.shape[0], self.seed)

        def build() -> ProductFlow:
            fronts, correlations = self._fronts(x_data, y_data, split.train)
            bodies = [vector_flow(data.shape[1], self.steps, self.hidden) if data.ndim == 2
                      else image_flow(data.shape[1:], hidden=max(16, self.hidden // 2)) for data in (x_data, y_data)]
            base = BASES[self.base](x.samples.shape[1], y.samples.shape[1])
            if correlations is None:  # an image side: start near independence, whatever the number of pairs
                pairs = min(x.samples.shape[1], y.samples.shape[1])
                correlations = torch.full((pairs,), math.sqrt(-math.expm1(-2 * IMAGE_START_MI / pairs)))
            base.start_from(correlations)
            return ProductFlow(fronts, bodies, base)

        def renew(model: ProductFlow) -> ProductFlow:
            model.fronts = nn.ModuleList(self._fronts(x_data, y_data, split.train)[0])
            return model

        model = self._model(("pair", x.name, y.name, x.shape, y.shape), build, renew)
        fit = self._fit(model, (x_data, y_data), split, lambda m: m.base.mutual_information())
        recent = torch.tensor(fit.records[max(0, fit.best_epoch - CLOSED_FORM_EPOCHS + 1):fit.best_epoch + 1])
        diagnostics = {**fit.diagnostics(), "closed_form_mi": float(recent.mean()),
                       "closed_form_spread": float(recent.std()) if recent.numel() > 1 else 0.0,
                       "closed_form_curve": list(fit.records)}
        return Estimate.from_terms(model.pmi(x_data[split.test], y_data[split.test]), self.name, diagnostics=diagnostics)

    @staticmethod
    def _fronts(x: torch.Tensor, y: torch.Tensor, train: torch.Tensor) -> tuple[list[nn.Module], torch.Tensor | None]:
        """The fronts of both sides for pairs ``x``, ``y`` (vectors ``(N, d)`` or images ``(N, C, H, W)``)
        to be trained on the rows ``train``, and the canonical correlations (``None`` unless both
        sides are vectors).

        A vector side's front starts with its :class:`MarginalSpline`, placed on every sample
        (marginal positions only: the pairing of the held-out part stays unseen, and no held-out
        point falls beyond the knots, where an extrapolated tail would cost it a large negative PMI
        at high MI). When both sides are vectors, the canonical-correlation maps of the training
        pairs follow. An image side has no front.
        """
        sides = [[MarginalSpline(data)] if data.ndim == 2 else [] for data in (x, y)]
        correlations = None
        if x.ndim == 2 and y.ndim == 2:
            with torch.no_grad():
                placed_x, placed_y = sides[0][0](x[train])[0], sides[1][0](y[train])[0]
            if not (bool(placed_x.isfinite().all()) and bool(placed_y.isfinite().all())):
                raise DataError("the flows' marginal splines could not place the data (non-finite values); use "
                                 "preprocess='smooth-scores' or 'normal-scores'")
            map_x, map_y, correlations = canonical_maps(placed_x, placed_y)
            sides[0].append(map_x)
            sides[1].append(map_y)
        return [chain(*layers) for layers in sides], correlations

    def continuous_discrete_estimate(self, x: Prepared, labels: torch.Tensor) -> Estimate:
        if len(x.shape) == 3:
            raise ValueError("MIENF with discrete labels needs vector inputs; compress images first "
                             "(e.g. ibkit.compression.PCA or AutoencoderCompressor)")
        x_data = self._inputs(x)
        labels = labels.to(x_data.device)
        split = Split.of(x_data.shape[0], self.seed)
        classes = int(labels.max()) + 1
        counts = torch.bincount(labels[split.train], minlength=classes).double()
        if bool((counts == 0).any()):
            raise DataError("every class needs training samples for MIENF; some class has none in the 70 % "
                             "training part")
        key = ("labels", x.name, x.shape, classes)

        def renew(model: ConditionalFlow) -> ConditionalFlow:
            model.front = MarginalSpline(x_data)
            return model

        model = self._model(key, lambda: ConditionalFlow(
            MarginalSpline(x_data), conditional_vector_flow(x_data.shape[1], classes, self.steps, self.hidden),
            classes, (counts / counts.sum()).log().float()), renew)
        fit = self._fit(model, (x_data, labels), split)
        return Estimate.from_terms(model.pmi(x_data[split.test], labels[split.test]), self.name,
                                   diagnostics=fit.diagnostics())
