"""The estimator contract: parameters, per-call diagnostics, warnings and errors that surface."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from test_package import readme_code

import ibkit
from ibkit import InformationPlaneAnalysis
from ibkit.errors import DataError
from ibkit.estimators import (
    KSG,
    METHODS,
    EstimateWarning,
    KernelDensityEntropy,
    clone,
    collect_warnings,
    make_estimator,
    method_parameters,
)
from ibkit.estimators.diagnostics import report
from ibkit.synthetic import correlated_gaussians


@pytest.mark.parametrize("method", METHODS)
def test_parameters_round_trip_through_get_set_clone_and_repr(method):
    estimator = make_estimator(method, seed=3)
    params = estimator.get_params()
    assert set(method_parameters(method)) <= set(params) and params["seed"] == 3
    assert clone(estimator).get_params() == params and clone(estimator) is not estimator
    assert repr(estimator) == f"{type(estimator).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")"
    json.dumps(estimator.settings())
    assert estimator.set_params(seed=5) is estimator and estimator.seed == 5
    with pytest.raises(ValueError, match="its parameters are"):
        estimator.set_params(no_such_parameter=1)
    with pytest.raises(ValueError):
        estimator.set_params(preprocess="rank")
    assert estimator.preprocess == params["preprocess"]  # a rejected value changes nothing


def test_entropy_takes_an_estimator_object_as_it_takes_a_name():
    x = torch.randn(2_000, 3, generator=torch.Generator().manual_seed(0))
    assert float(ibkit.entropy(x, make_estimator("wkl"))) == pytest.approx(float(ibkit.entropy(x, "wkl")))


def test_diagnostics_belong_to_the_call_not_the_estimator():
    generator = torch.Generator().manual_seed(0)
    t = torch.randn(3_000, generator=generator)
    curve = torch.stack([t, t**2], 1)  # a parabola, a 1-D curve in 2-D: degenerate, so wkl falls back to ksg
    estimator = make_estimator("wkl")
    before = repr(estimator)
    with collect_warnings() as caught:
        fallen = estimator.mutual_information(curve, t[:, None] + 0.1 * torch.randn(3_000, 1, generator=generator))
    assert fallen.method == "ksg" and fallen.diagnostics["fallback_from"] == "wkl"
    assert any(w.kind == "fallback" for w in caught)
    x, y = correlated_gaussians(3_000, mi=1.0, dim_x=2, seed=0)
    clean = estimator.mutual_information(x, y)
    assert clean.method == "wkl" and "fallback_from" not in clean.diagnostics
    assert repr(estimator) == before


def test_collected_warnings_leave_the_process_filters_alone():
    filters = list(warnings.filters)
    with collect_warnings() as caught:
        report(EstimateWarning("gathered", kind="test"))
    assert [w.kind for w in caught] == ["test"] and warnings.filters == filters
    with pytest.warns(EstimateWarning, match="outside"):
        report(EstimateWarning("outside a collector it warns", kind="test"))


def test_the_old_kernel_density_name_is_deprecated():
    with pytest.warns(DeprecationWarning, match="KernelDensityEntropy"):
        from ibkit.estimators import KernelDensity
    assert KernelDensity is KernelDensityEntropy


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_readme_estimator_writing_example_runs_as_written():
    namespace: dict = {}
    exec(readme_code("Writing an estimator"), namespace)  # noqa: S102
    assert abs(float(namespace["est"]) - 1.0) < 0.1
    assert "stderr_method='blocks'" in repr(namespace["estimator"])


class BrokenOnOneUnit(KSG):
    """KSG with a bug that only a one-unit layer triggers."""

    def continuous_terms(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y.shape[1] == 1:
            raise RuntimeError("a bug in the estimator")
        return super().continuous_terms(x, y)


def plane_probe(n: int = 1_500) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (n,), generator=generator)
    x = torch.randn(n, 3, generator=generator) + labels[:, None].float()
    layers = {"wide": torch.tanh(x @ torch.randn(3, 4, generator=generator)) + 0.1 * torch.randn(n, 4, generator=generator),
              "narrow": x[:, :1] + 0.1 * torch.randn(n, 1, generator=generator)}
    return x, labels, layers


def test_a_bug_in_an_estimate_surfaces_after_the_epoch_is_recorded():
    x, labels, layers = plane_probe()
    analysis = InformationPlaneAnalysis(x, labels, estimator=BrokenOnOneUnit(), x_compressor=None)
    with pytest.warns(UserWarning, match="'narrow'"):
        result = analysis.analyse_activations(layers, epoch=0)
    assert isinstance(result.error(), RuntimeError) and "a bug in the estimator" in str(result.error())
    assert [(failure.step, failure.data) for failure in result.failures] == [("I(X;L)", False)]
    points = {point.layer: point for point in analysis.history.points(0)}
    assert math.isfinite(points["wide"].I_XL) and math.isfinite(points["narrow"].I_YL)
    assert math.isnan(points["narrow"].I_XL) and "a bug" in points["narrow"].I_XL_error


def test_data_errors_are_gaps_unless_strict():
    x, labels, layers = plane_probe()
    layers["nan"] = torch.full((x.shape[0], 2), float("nan"))
    analysis = InformationPlaneAnalysis(x, labels, x_compressor=None)
    with pytest.warns(UserWarning, match="'nan'"):
        result = analysis.analyse_activations(layers, epoch=0)
    points = {point.layer: point for point in result.points}
    assert result.error() is None and {failure.data for failure in result.failures} == {True}
    assert math.isnan(points["nan"].I_XL) and np.isfinite(points["wide"].I_XL)
    with pytest.raises(DataError, match="NaN"):
        InformationPlaneAnalysis(x, labels, x_compressor=None, strict=True).analyse_activations(layers, epoch=0)


def test_set_params_keeps_the_name_in_step_with_the_parameters():
    estimator = make_estimator("mienf", max_epochs=1)
    assert estimator.set_params(base="tridiag").name == "mienf-tridiag"
    assert make_estimator("mine").set_params(bound="nwj").name == "nwj"
