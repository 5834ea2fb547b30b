"""Entropy and mutual-information estimators, by name or by object.

``make_estimator(method, **params)`` builds the estimator behind a name; ``entropy`` and
``mutual_information`` take a name (with the same parameters) or an estimator object. Every
estimator offers ``estimate(x, y) -> float`` as its simplest call and
``mutual_information(x, y, discrete_x=..., discrete_y=...) -> Estimate`` in general.

==============  =================================================  =======  ==========
method          estimator                                            entropy  MI
==============  =================================================  =======  ==========
``"kl"``        Kozachenko–Leonenko, k-th neighbour                  yes      H-sum
``"wkl"``       weighted Kozachenko–Leonenko (Berrett et al.)        yes      H-sum
``"kde-ml"``    Gaussian KDE, max-likelihood LOO bandwidth           yes      H-sum
``"kde-lse"``   Gaussian KDE, least-squares CV bandwidth             yes      H-sum
``"ksg"``       Kraskov–Stögbauer–Grassberger, algorithm 1           no       direct
``"mienf"``     normalizing flows + full Gaussian base (N-MIENF)     no       trained
``"mienf-tridiag"`` flows + canonical tridiagonal Gaussian base      no       trained
``"mine"``      critic, Donsker–Varadhan bound (MINE)                no       trained
``"nwj"``       critic, Nguyen–Wainwright–Jordan bound               no       trained
``"infonce"``   critic, InfoNCE bound (at most log batch size)       no       trained
==============  =================================================  =======  ==========
"""

from __future__ import annotations

import warnings
from typing import Any

from ibkit.estimators.base import MutualInformationEstimator, clone
from ibkit.estimators.diagnostics import DegenerateDataWarning, EstimateWarning, UndersampledWarning, collect_warnings
from ibkit.estimators.entropy_estimator import EntropyEstimator
from ibkit.estimators.kde import KernelDensityEntropy
from ibkit.estimators.knn import KozachenkoLeonenko, WeightedKozachenkoLeonenko, auto_k, auto_orders, wkl_weights
from ibkit.estimators.ksg import KSG
from ibkit.estimators.mienf import MIENF
from ibkit.estimators.preprocessing import PREPROCESSING
from ibkit.estimators.registry import (
    DEFAULT_METHOD,
    ENTROPY_METHODS,
    METHODS,
    REGISTRY,
    epochs_estimator,
    make_estimator,
    method_parameters,
    resolve_estimator,
)
from ibkit.estimators.terms import TermsEstimator
from ibkit.estimators.variational import CriticEstimator
from ibkit.result import Estimate


def entropy(x: Any, method: str | EntropyEstimator = DEFAULT_METHOD, **params: Any) -> Estimate:
    """Differential entropy of samples ``x`` in nats.

    Args:
        x: ``(N, d)`` or ``(N,)`` samples, torch tensor (any device) or numpy array.
        method: one of ``"kl"``, ``"wkl"``, ``"kde-ml"``, ``"kde-lse"``, or an entropy estimator.
        **params: the method's parameters (``method_parameters(method)``), e.g. ``k``,
            ``preprocess`` (``"whiten"`` unless given: only affine transforms keep the entropy),
            ``correction``, ``seed``, ``device``.

    Returns:
        ``Estimate`` with ``float(est)`` (nats), ``est.stderr`` and ``est.ci(level)``.

    Example:
        >>> import math, torch, ibkit
        >>> x = torch.randn(5_000, 2, generator=torch.Generator().manual_seed(0))
        >>> est = ibkit.entropy(x)                        # a standard Gaussian: log(2πe) nats
        >>> abs(float(est) - math.log(2 * math.pi * math.e)) < 3 * est.stderr + 0.02
        True
    """
    if isinstance(method, str) and method not in ENTROPY_METHODS:
        raise ValueError(
            f"method {method!r} does not estimate entropy; valid entropy methods are {', '.join(ENTROPY_METHODS)}"
        )
    if isinstance(method, str):
        params.setdefault("preprocess", "whiten")
    estimator = resolve_estimator(method, **params)
    if not isinstance(estimator, EntropyEstimator):
        raise ValueError(f"{type(estimator).__name__} does not estimate entropy")
    return estimator.entropy(x)


def mutual_information(
    x: Any,
    y: Any,
    method: str | MutualInformationEstimator = DEFAULT_METHOD,
    *,
    discrete_x: bool = False,
    discrete_y: bool = False,
    **params: Any,
) -> Estimate:
    """Mutual information I(X;Y) in nats from paired samples.

    Continuous–continuous: ``H(X) + H(Y) − H(X,Y)`` with the chosen entropy method, or the
    direct KSG estimator. Continuous–discrete: ``H(X) − Σ_y p(y) H(X | Y=y)`` (KSG: Ross 2014).
    Discrete–discrete: the plug-in estimator, whatever ``method`` says.

    Args:
        x: ``(N, dx)`` or ``(N,)`` samples (integer labels if ``discrete_x``).
        y: ``(N, dy)`` or ``(N,)`` samples (integer labels if ``discrete_y``).
        method: one of ``METHODS`` or an estimator object.
        discrete_x, discrete_y: treat that side as discrete labels.
        **params: the method's parameters, e.g. ``k`` (an integer or ``"auto"``), ``preprocess``
            (``"none"``, ``"standardize"``, ``"whiten"``, ``"normal-scores"``, ``"smooth-scores"``),
            ``seed``, ``device``.

    Returns:
        ``Estimate`` (nats) with its standard error (``est.stderr``, ``est.ci(0.95)``).

    Example:
        >>> import torch, ibkit
        >>> from ibkit.synthetic import correlated_gaussians
        >>> x, y = correlated_gaussians(5_000, mi=1.0, dim_x=2, seed=0)   # true I(X;Y) = 1 nat
        >>> est = ibkit.mutual_information(x, torch.exp(y))               # any monotone map: same MI
        >>> round(float(est), 1), est.stderr < 0.05
        (1.0, True)
        >>> labels = (x[:, 0] > 0).long()                                 # continuous-discrete
        >>> round(float(ibkit.mutual_information(x, labels, discrete_y=True)), 1)
        0.7
    """
    estimator = resolve_estimator(method, **params)
    return estimator.mutual_information(x, y, discrete_x=discrete_x, discrete_y=discrete_y)


__all__ = [
    "DEFAULT_METHOD",
    "ENTROPY_METHODS",
    "KSG",
    "METHODS",
    "MIENF",
    "PREPROCESSING",
    "REGISTRY",
    "CriticEstimator",
    "DegenerateDataWarning",
    "EntropyEstimator",
    "EstimateWarning",
    "KernelDensityEntropy",
    "KozachenkoLeonenko",
    "MutualInformationEstimator",
    "TermsEstimator",
    "UndersampledWarning",
    "WeightedKozachenkoLeonenko",
    "auto_k",
    "auto_orders",
    "clone",
    "collect_warnings",
    "entropy",
    "epochs_estimator",
    "make_estimator",
    "method_parameters",
    "mutual_information",
    "resolve_estimator",
    "wkl_weights",
]


def __getattr__(name: str) -> Any:
    if name == "KernelDensity":  # the old name, which means a density model in scikit-learn
        warnings.warn("ibkit.estimators.KernelDensity is now KernelDensityEntropy (it estimates entropy, unlike "
                      "scikit-learn's KernelDensity)", DeprecationWarning, stacklevel=2)
        return KernelDensityEntropy
    raise AttributeError(f"module 'ibkit.estimators' has no attribute {name!r}")
