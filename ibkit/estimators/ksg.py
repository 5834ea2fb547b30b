"""Kraskov–Stögbauer–Grassberger mutual information (``"ksg"``, algorithm 1).

For each sample i let ε_i be the max-norm distance to its k-th neighbour in the joint space
``z = (x, y)`` and ``n_x(i)``, ``n_y(i)`` the numbers of other samples strictly within ε_i in the
x- and y-space (max-norm there too). Then

    Î = ψ(k) + ψ(N) − ⟨ψ(n_x + 1) + ψ(n_y + 1)⟩          (nats).

Using the same ε_i in all three spaces cancels most of the bias that the sum of three separate
entropy estimates keeps, which is why KSG is accurate at low dimension. Its known weakness: at
high MI or several dimensions per side it is biased *downward* (it cannot exceed roughly
``log N`` and under-counts the concentration of strongly dependent data); this is expected.

With discrete labels (``discrete_y=True``) the estimator of Ross (PLoS ONE 2014) is used: with
``d_i`` the distance to the k-th neighbour among the samples of the same class (``N_{y_i}`` of
them) and ``m_i`` the number of all other samples within ``d_i`` (inclusive),

    Î = ψ(N) − ⟨ψ(N_{y_i})⟩ + ψ(k) − ⟨ψ(m_i)⟩.
"""

from __future__ import annotations

import math

import torch
from scipy.special import digamma

from ibkit.estimators.discrete import class_indices
from ibkit.estimators.neighbour_order import NeighbourOrder, auto_order
from ibkit.estimators.preprocessing import affine_normalise
from ibkit.estimators.terms import TermsEstimator
from ibkit.neighbors import count_within, knn_distances
from ibkit.validation import check_enough_samples, check_k

#: The neighbour order of ``k="auto"`` (the usual choice; KSG's bias grows with k at high MI).
KSG_AUTO_K = 5


class KSG(NeighbourOrder, TermsEstimator):
    """KSG mutual-information estimator (Kraskov et al. 2004, algorithm 1).

    Args:
        k: neighbour order in the joint space, or ``"auto"`` (``KSG_AUTO_K``, at most N/10).
        preprocess: the MI-invariant transform of x and y (each separately): ``"none"``,
            ``"standardize"``, ``"whiten"`` or ``"normal-scores"`` (ranks to normal scores and
            nothing more, since whitening can hide dependence that lives in a high-variance
            direction from the max-norm).
        seed: seeds tie-breaking of the normal scores, the degeneracy check's subsample and the
            standard error's blocks.
        device: where to compute; default is the input's device.
        stderr_method: ``"blocks"`` (measured on disjoint blocks, ``ibkit.estimators.resampling``)
            or ``"terms"``.
    """

    name = "ksg"

    def __init__(self, k: int | str = "auto", preprocess: str = "normal-scores", seed: int = 0,
                 device: torch.device | str | None = None, stderr_method: str = "blocks"):
        super().__init__(preprocess=preprocess, seed=seed, device=device, stderr_method=stderr_method)
        self.k = check_k(k)

    def order(self, n: int, d: int) -> int:
        """The neighbour order for ``n`` samples (the same in every dimension ``d``)."""
        return auto_order(KSG_AUTO_K, n) if self.k == "auto" else int(self.k)

    def _normalised(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """``x`` checked for size and affinely normalised (normal scores need nothing more)."""
        check_enough_samples(x.shape[0], self.min_samples(x.shape[1]), name, self.sample_requirement(x.shape[1]))
        normalisation = "none" if self.preprocess == "normal-scores" else self.preprocess
        return affine_normalise(x, normalisation, name)[0]

    def continuous_terms(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = self._normalised(x, "x"), self._normalised(y, "y")
        n = x.shape[0]
        k = self.order(n, x.shape[1] + y.shape[1])
        radius = knn_distances(torch.cat([x, y], dim=1), k, p=math.inf)[:, -1].to(x.device)
        n_x = count_within(x, radius, p=math.inf).to(x.device)
        n_y = count_within(y, radius, p=math.inf).to(x.device)
        return (
            digamma(k) + digamma(n)
            - torch.special.digamma(n_x.to(torch.float64) + 1.0)
            - torch.special.digamma(n_y.to(torch.float64) + 1.0)
        )

    def continuous_discrete_terms(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = self._normalised(x, "x")
        n = x.shape[0]
        k = self.order(int(torch.bincount(labels).min()), x.shape[1])
        class_radius = torch.empty(n, dtype=torch.float64, device=x.device)
        class_size = torch.empty(n, dtype=torch.float64, device=x.device)
        for index in class_indices(labels, self.min_samples(x.shape[1])):
            class_radius[index] = knn_distances(x[index], k).to(x.device)[:, -1]
            class_size[index] = float(index.numel())
        # ``m_i`` counts samples within d_i inclusive: strictly within the next float up.
        inclusive = torch.nextafter(class_radius, torch.tensor(math.inf, dtype=torch.float64, device=x.device))
        m = count_within(x, inclusive).to(x.device).to(torch.float64)
        return digamma(n) - torch.special.digamma(class_size) + digamma(k) - torch.special.digamma(m)
