"""Entropy and mutual-information estimators, by name or by class.

Functions ``entropy`` and ``mutual_information`` take a ``method`` name; the classes behind
the names can also be used directly, each with ``estimate(x, y) -> float`` as its simplest call
and ``mutual_information(x, y, discrete_x=..., discrete_y=...) -> Estimate`` in general.

==============  ===============================================  ===========  ==========
method          estimator                                          entropy      MI
==============  ===============================================  ===========  ==========
``"kl"``        Kozachenko–Leonenko, k-th neighbour                yes          H-sum
``"wkl"``       weighted Kozachenko–Leonenko (Berrett et al.)      yes          H-sum
``"kde-ml"``    Gaussian KDE, max-likelihood LOO bandwidth         yes          H-sum
``"kde-lse"``   Gaussian KDE, least-squares CV bandwidth           yes          H-sum
``"ksg"``       Kraskov–Stögbauer–Grassberger, algorithm 1         no           direct
==============  ===============================================  ===========  ==========
"""

from __future__ import annotations

from typing import Any

import torch

from ibkit.estimators.base import EntropyEstimator, MutualInformationEstimator
from ibkit.estimators.kde import KernelDensity
from ibkit.estimators.knn import KozachenkoLeonenko, WeightedKozachenkoLeonenko, wkl_weights
from ibkit.estimators.ksg import KSG
from ibkit.result import Estimate

METHODS = ("kl", "wkl", "ksg", "kde-ml", "kde-lse")
ENTROPY_METHODS = ("kl", "wkl", "kde-ml", "kde-lse")


def make_estimator(
    method: str, *, k: int = 5, whiten: bool = True, device: torch.device | str | None = None
) -> MutualInformationEstimator:
    """The estimator object behind a method name (``k`` is ignored by the KDE methods)."""
    if method == "kl":
        return KozachenkoLeonenko(k=k, whiten=whiten, device=device)
    if method == "wkl":
        return WeightedKozachenkoLeonenko(k=k, whiten=whiten, device=device)
    if method == "ksg":
        return KSG(k=k, whiten=whiten, device=device)
    if method in ("kde-ml", "kde-lse"):
        return KernelDensity(bandwidth=method[4:], whiten=whiten, device=device)
    raise ValueError(f"unknown method {method!r}; valid methods are {', '.join(METHODS)}")


def entropy(
    x: Any, method: str = "kl", *, k: int = 5, whiten: bool = True, device: torch.device | str | None = None
) -> Estimate:
    """Differential entropy of samples ``x`` in nats.

    Args:
        x: ``(N, d)`` or ``(N,)`` samples, torch tensor (any device) or numpy array.
        method: one of ``"kl"``, ``"wkl"``, ``"kde-ml"``, ``"kde-lse"``.
        k: neighbour order for the kNN methods.
        whiten: estimate at unit covariance and correct by ``½·log det Σ``.
        device: where to compute; default is the input's device.

    Returns:
        ``Estimate`` with ``float(est)`` (nats), ``est.stderr`` and ``est.ci(level)``.
    """
    if method not in ENTROPY_METHODS:
        raise ValueError(
            f"method {method!r} does not estimate entropy; valid entropy methods are {', '.join(ENTROPY_METHODS)}"
        )
    estimator = make_estimator(method, k=k, whiten=whiten, device=device)
    assert isinstance(estimator, EntropyEstimator)
    return estimator.entropy(x)


def mutual_information(
    x: Any,
    y: Any,
    method: str = "wkl",
    *,
    k: int = 5,
    discrete_x: bool = False,
    discrete_y: bool = False,
    whiten: bool = True,
    device: torch.device | str | None = None,
) -> Estimate:
    """Mutual information I(X;Y) in nats from paired samples.

    Continuous–continuous: ``H(X) + H(Y) − H(X,Y)`` with the chosen entropy method, or the
    direct KSG estimator. Continuous–discrete: ``H(X) − Σ_y p(y) H(X | Y=y)`` (KSG: Ross 2014).
    Discrete–discrete: the plug-in estimator, whatever ``method`` says.

    Args:
        x: ``(N, dx)`` or ``(N,)`` samples (integer labels if ``discrete_x``).
        y: ``(N, dy)`` or ``(N,)`` samples (integer labels if ``discrete_y``).
        method: one of ``"kl"``, ``"wkl"``, ``"ksg"``, ``"kde-ml"``, ``"kde-lse"``.
        k: neighbour order for the kNN methods.
        discrete_x, discrete_y: treat that side as discrete labels.
        whiten: whiten each continuous variable before estimation (MI is unchanged by it).
        device: where to compute; default is the input's device.

    Returns:
        ``Estimate`` (nats) whose standard error comes from the pointwise MI terms.
    """
    estimator = make_estimator(method, k=k, whiten=whiten, device=device)
    return estimator.mutual_information(x, y, discrete_x=discrete_x, discrete_y=discrete_y)


__all__ = [
    "ENTROPY_METHODS",
    "METHODS",
    "EntropyEstimator",
    "KSG",
    "KernelDensity",
    "KozachenkoLeonenko",
    "MutualInformationEstimator",
    "WeightedKozachenkoLeonenko",
    "entropy",
    "make_estimator",
    "mutual_information",
    "wkl_weights",
]
