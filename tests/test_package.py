"""The package as a user meets it: the command line, the exports, the README's examples, and the
trainer-free analysis."""

from __future__ import annotations

import importlib
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_code(heading: str) -> str:
    """The first ```python block under the README section ``heading``."""
    text = README.read_text()
    section = text[text.index(f"## {heading}"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


# ----------------------------------------------------------------------------- the command line
def test_cli_help_loads_neither_torch_nor_lightning():
    code = ("import sys; from ibkit.benchmarks.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'lightning', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "ibkit.benchmarks.cli", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "train" in help_text and "bench" in help_text


def test_every_command_is_a_module_with_main_and_its_docstring_as_help():
    from ibkit.benchmarks.cli import COMMANDS

    for (group, name), (module_name, summary) in COMMANDS.items():
        module = importlib.import_module(module_name)
        assert callable(module.main), module_name
        assert module.__doc__.strip().splitlines()[0] == summary, (group, name)


def test_unknown_commands_are_usage_errors(capsys):
    from ibkit.benchmarks.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["train", "nothing"])
    assert stop.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_shorthands_expand_to_lightning_keys():
    from ibkit.benchmarks.command import expand_shorthands

    assert expand_shorthands(["--data", "mnist", "--data-dir=/d", "--epochs", "3", "--model.lr", "1e-3"]) == [
        "--data", "ibkit.data.MNISTDataModule", "--data.data_dir=/d", "--trainer.max_epochs", "3",
        "--model.lr", "1e-3"]


# ----------------------------------------------------------------------------- exports
def test_what_a_user_needs_is_importable_from_the_package_roots():
    import ibkit
    from ibkit.callbacks import InformationPlane  # noqa: F401

    for name in ("AdditiveGaussianNoise", "NoiseLayer", "DigitsDataModule", "MNISTDataModule",
                 "InformationPlaneAnalysis", "entropy", "mutual_information", "make_estimator", "PCA"):
        assert getattr(ibkit, name) is not None
    with pytest.raises(AttributeError):
        ibkit.no_such_name  # noqa: B018


def test_every_noise_layer_shares_the_base_and_capture_switches_them_all():
    from ibkit import AdditiveGaussianNoise, NoiseLayer
    from ibkit.capture import evaluation_state
    from ibkit.models import GaussianChannel

    net = nn.Sequential(AdditiveGaussianNoise(0.1), GaussianChannel(0.3), nn.Linear(2, 2))
    assert all(isinstance(layer, NoiseLayer) for layer in net[:2])
    net.eval()
    x = torch.ones(4, 2)
    assert torch.equal(net[1](x), x)
    with evaluation_state(net, noise_on=True):
        assert net[0].active and net[1].active and not torch.equal(net[1](x), x)
    assert not net[0].active and not net[1].active


# ----------------------------------------------------------------------------- the README's examples
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_readme_callback_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(readme_code("Adding the callback to your own model"), namespace)  # noqa: S102
    arrays = namespace["callback"].history.as_arrays()
    assert arrays["I_XL"].shape[0] >= 1 and (tmp_path / "runs").is_dir()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_readme_analysis_example_runs_as_written():
    namespace: dict = {}
    exec(readme_code("The analysis without a Trainer"), namespace)  # noqa: S102
    assert namespace["analysis"].history.epochs == [0, 1]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_readme_estimator_example_runs_as_written():
    namespace: dict = {}
    exec(readme_code("Estimators: quick example"), namespace)  # noqa: S102
    assert abs(float(namespace["est"]) - 2.0) < 0.1


# ----------------------------------------------------------------------------- the analysis core
def test_trainer_free_analysis_of_a_plain_module():
    from ibkit import InformationPlaneAnalysis
    from ibkit.errors import Failure

    generator = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (600,), generator=generator)
    x = torch.randn(600, 8, generator=generator) + 2.0 * nn.functional.one_hot(y, 8).float()
    net = nn.Sequential(nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3))
    analysis = InformationPlaneAnalysis(x, y, x_compressor="pca", x_dims=3, layer_dims=3)
    points = analysis.analyse(net, epoch=0, layers=["1", "2"]).points
    assert [p.layer for p in points] == ["1", "2"] and analysis.history.epochs == [0]
    for point in points:
        assert math.isfinite(point.I_XL) and point.I_XL > -2 * point.I_XL_stderr
        assert 0.0 <= point.I_YL <= math.log(3) + 2 * point.I_YL_stderr
    # Activations from anywhere (here: computed by hand) go through the same estimate step.
    points = analysis.analyse_activations({"hidden": torch.tanh(net[0](x)).detach(),
                                           "broken": Failure("capture", "no output")}, epoch=1).points
    assert math.isfinite(points[0].I_YL) and math.isnan(points[1].I_YL)
    assert analysis.history.epochs == [0, 1]
