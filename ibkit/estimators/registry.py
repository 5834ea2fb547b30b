"""The method names: which estimator class each name builds, and with which fixed parameters."""

from __future__ import annotations

from typing import Any

from ibkit.estimators.base import MutualInformationEstimator
from ibkit.estimators.entropy_estimator import EntropyEstimator
from ibkit.estimators.kde import KernelDensityEntropy
from ibkit.estimators.knn import KozachenkoLeonenko, WeightedKozachenkoLeonenko
from ibkit.estimators.ksg import KSG
from ibkit.estimators.mienf import MIENF
from ibkit.estimators.training import TrainedEstimator
from ibkit.estimators.variational import CriticEstimator

#: Method name -> (estimator class, parameters fixed by the name).
REGISTRY: dict[str, tuple[type[MutualInformationEstimator], dict[str, Any]]] = {
    "kl": (KozachenkoLeonenko, {}),
    "wkl": (WeightedKozachenkoLeonenko, {}),
    "ksg": (KSG, {}),
    "kde-ml": (KernelDensityEntropy, {"bandwidth": "ml"}),
    "kde-lse": (KernelDensityEntropy, {"bandwidth": "lse"}),
    "mienf": (MIENF, {"base": "full"}),
    "mienf-tridiag": (MIENF, {"base": "tridiag"}),
    "mine": (CriticEstimator, {"bound": "mine"}),
    "nwj": (CriticEstimator, {"bound": "nwj"}),
    "infonce": (CriticEstimator, {"bound": "infonce"}),
}
METHODS = tuple(REGISTRY)
ENTROPY_METHODS = tuple(name for name, (cls, _) in REGISTRY.items() if issubclass(cls, EntropyEstimator))
#: The method ``entropy`` and ``mutual_information`` use unless told otherwise.
DEFAULT_METHOD = "wkl"


def method_parameters(method: str) -> tuple[str, ...]:
    """The keyword parameters ``make_estimator(method, ...)`` accepts."""
    cls, fixed = _lookup(method)
    return tuple(name for name in cls.parameter_names() if name not in fixed)


def _lookup(method: str) -> tuple[type[MutualInformationEstimator], dict[str, Any]]:
    if method not in REGISTRY:
        raise ValueError(f"unknown method {method!r}; valid methods are {', '.join(METHODS)}")
    return REGISTRY[method]


def make_estimator(method: str, **params: Any) -> MutualInformationEstimator:
    """The estimator object behind a method name, configured by ``params``.

    Example:
        >>> from ibkit.estimators import make_estimator
        >>> make_estimator("ksg", k=8)
        KSG(k=8, preprocess='normal-scores', seed=0, device=None, stderr_method='blocks')
        >>> make_estimator("ksg", bandwidth=0.1)
        Traceback (most recent call last):
        ...
        ValueError: method 'ksg' does not take bandwidth; its parameters are k, preprocess, seed, device, stderr_method

    Raises:
        ValueError: an unknown method, or a parameter the method does not take (the message
            lists the ones it does); invalid parameter values.
    """
    cls, fixed = _lookup(method)
    unknown = sorted(set(params) - set(method_parameters(method)))
    if unknown:
        raise ValueError(f"method {method!r} does not take {', '.join(unknown)}; its parameters are "
                         f"{', '.join(method_parameters(method))}")
    return cls(**fixed, **params)


def resolve_estimator(method: str | MutualInformationEstimator, **params: Any) -> MutualInformationEstimator:
    """An estimator from a name and parameters, or an estimator object given as is (no parameters)."""
    if isinstance(method, MutualInformationEstimator):
        if params:
            raise ValueError(f"parameters {', '.join(sorted(params))} were given with an estimator object; "
                             "configure the object instead")
        return method
    if not isinstance(method, str):
        raise ValueError(f"method must be a name ({', '.join(METHODS)}) or an estimator object, got {method!r}")
    return make_estimator(method, **params)


def epochs_estimator(method: str | MutualInformationEstimator) -> MutualInformationEstimator:
    """The estimator of a run over epochs (the information plane): :func:`resolve_estimator`, and a
    trained estimator given by name is warm-started (each epoch's networks start from the
    previous epoch's; an object is used as configured)."""
    estimator = resolve_estimator(method)
    if isinstance(method, str) and isinstance(estimator, TrainedEstimator):
        estimator.set_params(warm_start=True)
    return estimator
