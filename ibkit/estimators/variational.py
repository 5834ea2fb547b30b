"""Critic-based variational lower bounds on mutual information: MINE, NWJ and InfoNCE.

A critic ``T`` scores pairs (``ibkit.estimators.critics``): ``S[i, j] = T(x_j, y_i)`` for a batch, the
joint pairs ``(x_i, y_i)`` on the diagonal and the others drawn from the product of the marginals.
For any critic, in nats,

* Donsker–Varadhan (MINE, Belghazi et al. 2018): ``E_joint[T] − log E_marginals[e^T]``;
* NWJ (Nguyen–Wainwright–Jordan): ``E_joint[T] − E_marginals[e^{T − 1}]``;
* InfoNCE (van den Oord et al. 2018): ``log B − mean_i [logsumexp_j S[i, j] − S[i, i]]``, a
  row-wise cross-entropy with the diagonal as positives, which can never exceed ``log B``.

All three are lower bounds, tight for the optimal critic (InfoNCE only up to ``log B``). MINE's
bound has a biased mini-batch gradient (the log of a mean); its estimator replaces
``∇ log E[e^T]`` by ``∇ E[e^T] / m`` with ``m`` a moving average of ``E[e^T]`` (rate
``ema_rate``), as in the MINE paper. NWJ and MINE are high-variance at high MI (``e^T`` of
rare pairs dominates); InfoNCE is low-variance but saturates at ``log B``.

:class:`CriticEstimator` trains the critic on 70 % of the sample (early stopping on 10 %) and
reports the bound on the held-out 20 %, with its standard error.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
from torch.nn import functional as F

from ibkit.estimators.base import Prepared
from ibkit.estimators.critics import CRITICS, ConcatCritic, ConvCritic, make_critic
from ibkit.estimators.training import Split, TrainedEstimator
from ibkit.randomness import seeded
from ibkit.result import Estimate
from ibkit.validation import check_choice, check_number, check_positive_int

BOUNDS = ("mine", "nwj", "infonce")
#: Bootstrap resamples of the test rows for the standard error.
BOOTSTRAP = 200
#: Permutations of the test ``x`` whose pairs with the test ``y`` sample the product of the marginals.
TEST_PERMUTATIONS = 10


def infonce_lower_bound(scores: torch.Tensor) -> torch.Tensor:
    """InfoNCE estimate ``Î`` (nats, a 0-d tensor with gradient) from scores ``(B, B)``, ``B >= 2``.

    Raises:
        ValueError: ``scores`` is not a square matrix with at least 2 rows.
    """
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"scores must be a square (B, B) matrix, got shape {tuple(scores.shape)}")
    batch = scores.shape[0]
    if batch < 2:
        raise ValueError("InfoNCE needs a batch of at least 2 pairs (the other pairs are the negatives)")
    positives = torch.arange(batch, device=scores.device)
    return math.log(batch) - F.cross_entropy(scores, positives)


def dv_bound(joint: torch.Tensor, marginal: torch.Tensor) -> torch.Tensor:
    """Donsker–Varadhan ``mean joint − log mean e^{marginal}`` from critic values (nats)."""
    return joint.mean() - (torch.logsumexp(marginal.flatten(), 0) - math.log(marginal.numel()))


def nwj_bound(joint: torch.Tensor, marginal: torch.Tensor) -> torch.Tensor:
    """NWJ ``mean joint − mean e^{marginal − 1}`` from critic values (nats)."""
    return joint.mean() - torch.exp(marginal - 1.0).mean()


def pair_scores(critic: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``T(x_i, y_i)`` for ``B`` pairs, ``(B,)``: cheap for the bundled critics, the diagonal otherwise."""
    if isinstance(critic, ConvCritic):
        return pair_scores(critic.head, critic.tower_a(x), critic.tower_b(y))
    if isinstance(critic, ConcatCritic):
        return critic.head(critic.joint(torch.cat([x, y], dim=1))).squeeze(-1)
    return critic(x, y).diagonal()


class CriticModel(nn.Module):
    """A critic with its training loss: the negative bound (MINE: with the moving-average gradient).

    InfoNCE scores all ``B²`` pairs of a batch; MINE and NWJ score the ``B`` joint pairs and ``B``
    pairs of the product of the marginals (the batch's ``y`` against a random permutation of its
    ``x``), which is what their bounds need and ``B/2`` times cheaper.

    Args:
        critic: ``(a (B, ...), b (B, ...)) -> (B, B)`` scores.
        bound: ``"mine"``, ``"nwj"`` or ``"infonce"``.
        ema_rate: MINE's moving-average rate for ``E[e^T]``.
        seed: seeds the permutations.
    """

    def __init__(self, critic: nn.Module, bound: str, ema_rate: float = 0.01, seed: int = 0):
        super().__init__()
        self.critic, self.bound, self.ema_rate = critic, bound, ema_rate
        self.generator = torch.Generator().manual_seed(seed)
        self.register_buffer("moving_average", torch.tensor(float("nan")))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.critic(x, y)

    def joint_and_marginal(self, x: torch.Tensor, y: torch.Tensor,
                           permutations: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Critic values of the ``B`` joint pairs ``(B,)`` and of ``permutations × B`` pairs of the
        product of the marginals ``(permutations, B)``."""
        marginal = []
        for _ in range(permutations):
            shuffle = torch.randperm(x.shape[0], generator=self.generator).to(x.device)
            marginal.append(pair_scores(self.critic, x[shuffle], y))
        return pair_scores(self.critic, x, y), torch.stack(marginal)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.bound == "infonce":
            return -infonce_lower_bound(self.critic(x, y))
        joint, marginal = self.joint_and_marginal(x, y)
        if self.bound == "nwj" or not self.training:
            return -(nwj_bound if self.bound == "nwj" else dv_bound)(joint, marginal)
        mean_exp = torch.exp(torch.logsumexp(marginal.flatten(), 0) - math.log(marginal.numel()))
        with torch.no_grad():
            current, average = mean_exp.detach(), self.moving_average
            self.moving_average = current if torch.isnan(average) else (1 - self.ema_rate) * average + self.ema_rate * current
        # The value is not the bound, but its gradient is ∇E[T_joint] − ∇E[e^T] / moving average.
        return -(joint.mean() - mean_exp / self.moving_average)

    def validation_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The negative bound on held-out pairs, MINE and NWJ against ``TEST_PERMUTATIONS`` permutations."""
        if self.bound == "infonce":
            return self.loss(x, y)
        return -(nwj_bound if self.bound == "nwj" else dv_bound)(*self.joint_and_marginal(x, y, TEST_PERMUTATIONS))


class CriticEstimator(TrainedEstimator):
    """MI by a trained critic: MINE (``bound="mine"``), NWJ or InfoNCE.

    Args:
        bound: ``"mine"``, ``"nwj"`` or ``"infonce"``.
        critic: ``"auto"`` (an MLP for vectors: a :class:`~ibkit.estimators.critics.ConcatCritic`
            for MINE and NWJ, a :class:`~ibkit.estimators.critics.SeparableCritic` for InfoNCE, whose
            ``B²`` pairs it scores with one matrix product; a :class:`~ibkit.estimators.critics.ConvCritic`
            for images), ``"mlp"``, ``"separable"``, or a module of one's own mapping
            ``(x (B, ...), y (B, ...))`` to ``(B, B)`` scores (it is trained in place).
        hidden: width of the default critic.
        ema_rate: MINE's moving-average rate.
        preprocess: ``"auto"`` (default: normal scores for vectors, standardisation for images),
            ``"normal-scores"``, ``"standardize"``, ``"whiten"`` or ``"none"``.
        max_epochs, patience, batch_size, lr, warm_start, progress, seed, device: see
            :class:`~ibkit.estimators.training.TrainedEstimator`. InfoNCE's estimate can never exceed
            ``log(batch_size)``: the test part is scored in batches of that size.
    """

    def __init__(self, bound: str = "mine", critic: str | nn.Module = "auto", hidden: int = 128,
                 ema_rate: float = 0.01, max_epochs: int = 300, patience: int = 30, batch_size: int = 256,
                 lr: float = 1e-3, preprocess: str = "auto", warm_start: bool = False, progress: bool = False,
                 seed: int = 0, device: torch.device | str | None = None):
        super().__init__(max_epochs=max_epochs, patience=patience, batch_size=batch_size, lr=lr,
                         warm_start=warm_start, progress=progress, preprocess=preprocess, seed=seed, device=device)
        self.bound = check_choice(bound, "bound", BOUNDS)
        if not isinstance(critic, nn.Module):
            check_choice(critic, "critic", ("auto", *CRITICS))
        self.critic = critic
        self.hidden = check_positive_int(hidden, "hidden")
        self.ema_rate = check_number(ema_rate, "ema_rate", minimum=0.0, maximum=1.0, open_interval=True)
        self.name = self.bound

    def continuous_estimate(self, x: Prepared, y: Prepared) -> Estimate:
        return self._estimate(self._inputs(x), self._inputs(y), ("pair", x.name, y.name, x.shape, y.shape))

    def continuous_discrete_estimate(self, x: Prepared, labels: torch.Tensor) -> Estimate:
        """The labels as one-hot vectors (an injective code, so the MI is the same) for the critic."""
        one_hot = F.one_hot(labels, int(labels.max()) + 1).float().to(x.samples.device)
        return self._estimate(self._inputs(x), one_hot, ("labels", x.name, x.shape, one_hot.shape[1]))

    def _estimate(self, x: torch.Tensor, y: torch.Tensor, key: tuple) -> Estimate:
        split = Split.of(x.shape[0], self.seed)
        model = self._model(key, lambda: CriticModel(self._critic(x, y), self.bound, self.ema_rate, self.seed))
        fit = self._fit(model, (x, y), split)
        estimate = self._test_estimate(model, x[split.test], y[split.test])
        return dataclasses.replace(estimate, diagnostics=fit.diagnostics())

    # ------------------------------------------------------------------ internals
    def _critic(self, x: torch.Tensor, y: torch.Tensor) -> nn.Module:
        if isinstance(self.critic, nn.Module):
            return self.critic
        with seeded(self.seed):
            if x.ndim == 4 and y.ndim == 4:
                return ConvCritic(tuple(x.shape[1:]), tuple(y.shape[1:]), hidden=self.hidden)
            if x.ndim != 2 or y.ndim != 2:
                raise ValueError("the default critic takes two vector or two image variables; pass critic=<module>")
            name = self.critic if self.critic != "auto" else "separable" if self.bound == "infonce" else "mlp"
            return make_critic(name, x.shape[1], self.hidden, dim_b=y.shape[1])

    @torch.no_grad()
    def _test_estimate(self, model: CriticModel, x: torch.Tensor, y: torch.Tensor) -> Estimate:
        """The bound on the test part with its standard error.

        InfoNCE: per-row terms in consecutive batches of ``batch_size`` (its ceiling is
        ``log batch_size``), the standard error of their mean. MINE and NWJ: the test pairs against
        ``TEST_PERMUTATIONS`` permutations of the test ``x``, a bootstrap standard error over rows.
        """
        model.eval()
        if self.bound == "infonce":
            terms = []
            for start in range(0, x.shape[0] - 1, self.batch_size):
                scores = model(x[start:start + self.batch_size], y[start:start + self.batch_size]).double()
                if scores.shape[0] < 2:
                    break
                rows = torch.arange(scores.shape[0], device=scores.device)
                terms.append(math.log(scores.shape[0]) + scores[rows, rows] - torch.logsumexp(scores, dim=1))
            return Estimate.from_terms(torch.cat(terms), self.name)
        bound = nwj_bound if self.bound == "nwj" else dv_bound
        joint, marginal = (values.double() for values in model.joint_and_marginal(x, y, TEST_PERMUTATIONS))
        generator = torch.Generator().manual_seed(self.seed)
        n = joint.shape[0]
        draws = []
        for _ in range(BOOTSTRAP):
            rows = torch.randint(0, n, (n,), generator=generator).to(joint.device)
            draws.append(float(bound(joint[rows], marginal[:, rows])))
        return Estimate(value=float(bound(joint, marginal)), stderr=float(torch.tensor(draws).std()),
                        method=self.name, n=n)
