"""Tests of noise-injected Deep InfoMax: channels, InfoNCE, critics, encoder, bad settings,
an end-to-end distribution-matching check, the information-plane callback and the commands."""

from __future__ import annotations

import json
import math

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ibkit.benchmarks.cli import main as cli_main
from ibkit.benchmarks.train_dim import train_and_evaluate
from ibkit.estimators.critics import ConcatCritic, SeparableCritic
from ibkit.estimators.variational import infonce_lower_bound
from ibkit.evaluation import normality_pvalues
from ibkit.models.channels import GaussianChannel, UniformChannel
from ibkit.models.dim import NoiseInjectedDIM, embed
from ibkit.models.encoders import DIMEncoder


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models train far faster on one thread (no OpenMP spin-waiting on a shared machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ----------------------------------------------------------------------------------- channels
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_gaussian_channel_keeps_unit_variance_and_has_capacity_minus_log_p(p):
    channel = GaussianChannel(p, generator=torch.Generator().manual_seed(0))
    x = 3.0 * torch.randn(200_000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = channel(x)
    assert y.var(0).numpy() == pytest.approx(((1 - p**2) * x.var(0) + p**2).numpy(), rel=0.02)
    unit = channel(x / x.std(0))
    assert unit.var(0).numpy() == pytest.approx([1.0, 1.0], rel=0.02)
    assert channel.capacity == pytest.approx(-math.log(p))
    # Capacity = ½·log(1 + 1/σ²) of the equivalent additive channel x + σn.
    assert channel.capacity == pytest.approx(0.5 * math.log1p(1 / channel.sigma**2))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_uniform_channel_stays_in_unit_box_with_capacity_bound(p):
    channel = UniformChannel(p, generator=torch.Generator().manual_seed(0))
    x = torch.rand(100_000, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = channel(x)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert float(y.mean()) == pytest.approx((1 - p) * 0.5 + p * 0.5, abs=0.01)
    assert y.var(0).numpy() == pytest.approx(((1 - p) ** 2 * x.var(0) + p**2 / 12).numpy(), rel=0.03)
    # Bound −log p = log((1+w)/w) for x + w·u, w = p/(1−p): log-volume of the output box over the noise's.
    assert channel.capacity == pytest.approx(math.log((1 + channel.width) / channel.width))


def test_channels_add_noise_in_training_only():
    x = torch.randn(8, 2)
    for channel in (GaussianChannel(0.3), UniformChannel(0.3)):
        assert not torch.equal(channel.train()(x), x)
        assert torch.equal(channel.eval()(x), x)
        channel.enabled_on_eval = True
        assert not torch.equal(channel(x), x)


# ------------------------------------------------------------------------------ InfoNCE, critics
def test_infonce_equals_hand_computed_value():
    # Rows are anchors b_i, columns candidates a_j; positives on the diagonal (2 and 0).
    scores = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    row0 = math.log(math.exp(2) + 1) - 2
    row1 = math.log(math.exp(1) + 1) - 0
    assert float(infonce_lower_bound(scores)) == pytest.approx(math.log(2) - (row0 + row1) / 2, rel=1e-6)
    assert float(infonce_lower_bound(torch.zeros(4, 4))) == pytest.approx(0.0, abs=1e-7)
    assert float(infonce_lower_bound(100 * torch.eye(8))) == pytest.approx(math.log(8), abs=1e-6)


def test_infonce_rejects_bad_score_matrices():
    with pytest.raises(ValueError, match="square"):
        infonce_lower_bound(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="at least 2"):
        infonce_lower_bound(torch.zeros(1, 1))


def test_concat_critic_scores_every_pair_as_an_mlp_on_the_concatenation():
    torch.manual_seed(0)
    critic = ConcatCritic(dim=3, hidden=16)
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    mlp = nn.Sequential(critic.joint, *critic.head)
    expected = torch.stack([torch.stack([mlp(torch.cat([a[j], b[i]])).squeeze() for j in range(5)]) for i in range(5)])
    torch.testing.assert_close(critic(a, b), expected)
    separable = SeparableCritic(dim=3, hidden=8, features=4)
    torch.testing.assert_close(separable(a, b)[1, 2], separable.project_b(b[1]) @ separable.project_a(a[2]) / 4)
    with pytest.raises(ValueError, match="shape"):
        critic(a, b[:, :2])


# ----------------------------------------------------------------------------------- encoder
def test_encoder_normalisers_and_layer_names():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 28, 28)
    model = NoiseInjectedDIM((1, 28, 28), prior="gaussian", dim=3, noise=0.2)
    z = model(x)
    assert z.shape == (64, 3)
    torch.testing.assert_close(z.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.var(0, unbiased=False), torch.ones(3), atol=1e-2, rtol=0)  # BatchNorm eps
    names = dict(model.named_modules())
    assert list(model.default_ib_layers) == ["encoder.backbone.block1", "encoder.backbone.block2", "encoder.backbone.block3",
                                       "encoder.backbone.hidden", "encoder.normaliser"]
    assert all(name in names for name in model.default_ib_layers)
    uniform = NoiseInjectedDIM((64,), prior="uniform", dim=2, noise=0.2)
    u = uniform(torch.randn(10, 64))
    assert float(u.min()) > 0 and float(u.max()) < 1
    assert uniform.capacity == pytest.approx(2 * -math.log(0.2))


def test_user_backbone_is_accepted_and_checked():
    model = NoiseInjectedDIM((10,), dim=4, backbone=nn.Sequential(nn.Linear(10, 4)))
    assert model(torch.randn(5, 10)).shape == (5, 4)
    assert list(model.default_ib_layers) == ["encoder.backbone.0", "encoder.normaliser"]
    wrong = DIMEncoder(nn.Linear(10, 3), dim=4)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        wrong(torch.randn(5, 10))


@pytest.mark.parametrize("kwargs, message", [
    (dict(noise=0.0), r"open interval \(0, 1\)"),
    (dict(noise=1.0), r"open interval \(0, 1\)"),
    (dict(noise=-0.3), r"open interval \(0, 1\)"),
    (dict(noise=1.5), r"open interval \(0, 1\)"),
    (dict(input_noise=1.0), "input noise"),
    (dict(dim=0), "d must be an integer >= 1"),
    (dict(dim=-2), "d must be an integer >= 1"),
    (dict(prior="laplace"), "unknown prior"),
    (dict(critic="transformer"), "unknown critic"),
    (dict(lr=0.0), "lr"),
])
def test_bad_settings_raise_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NoiseInjectedDIM((64,), **kwargs)


def test_batch_of_one_with_batchnorm_is_a_clear_error():
    model = NoiseInjectedDIM((64,), dim=2, noise=0.3)
    with pytest.raises(ValueError, match="at least 2 samples"):
        model.training_step((torch.randn(1, 64), torch.zeros(1, dtype=torch.int64)), 0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        model.encoder.normaliser(torch.randn(1, 2))
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        train_and_evaluate(["--data.batch_size", "1"])
    with pytest.raises(ValueError, match="open interval"):
        train_and_evaluate(["--model.noise", "1.2"])
    with pytest.raises(ValueError, match="d must be"):
        train_and_evaluate(["--model.dim", "0"])


# ------------------------------------------------------------------------------- end to end
def clustered_splits(seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """4 Gaussian clusters in R^8 (standardised): 2000 training and 500 held-out samples.

    Clustered inputs give a clustered (clearly non-Gaussian) embedding unless something pushes
    the embedding towards the prior, which is what the output noise does.
    """
    generator = torch.Generator().manual_seed(seed)
    centres = 3.0 * torch.randn(4, 8, generator=generator)
    labels = torch.randint(0, 4, (2500,), generator=generator)
    x = centres[labels] + torch.randn(2500, 8, generator=generator)
    x = (x - x.mean(0)) / x.std(0)
    return TensorDataset(x[:2000], labels[:2000]), TensorDataset(x[2000:], labels[2000:])


def train_encoder(train: TensorDataset, noise: float | None, epochs: int, seed: int = 0, **callbacks_and_kwargs):
    callbacks = callbacks_and_kwargs.pop("callbacks", [])
    L.seed_everything(seed, verbose=False)
    model = NoiseInjectedDIM(tuple(train.tensors[0].shape[1:]), prior="gaussian", dim=2, noise=noise, input_noise=0.2,
                             critic_hidden=32, lr=3e-3)
    loader = DataLoader(train, batch_size=128, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(seed))
    trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", devices=1, callbacks=callbacks,
                        **callbacks_and_kwargs)
    trainer.fit(model, loader)
    return model, trainer


def test_output_noise_makes_the_embedding_more_gaussian():
    train, held_out = clustered_splits()
    pvalues = {}
    for noise in (0.3, None):
        model, trainer = train_encoder(train, noise, epochs=10)
        z, _ = embed(model, DataLoader(held_out, batch_size=500))
        pvalues[noise] = normality_pvalues(z, 512, seed=0)["henze_zirkler"]
        if noise is not None:
            metrics = trainer.callback_metrics
            assert float(metrics["train/capacity"]) == pytest.approx(2 * -math.log(noise))
            assert float(metrics["train/certificate"]) == pytest.approx(
                float(metrics["train/capacity"]) - float(metrics["train/mi"]), abs=1e-5)
            assert 0 < float(metrics["train/mi"]) < math.log(128)
    assert pvalues[None] < 0.02, pvalues
    assert pvalues[0.3] > 5 * pvalues[None], pvalues


def test_information_plane_callback_tracks_the_encoder_layers(tmp_path):
    from ibkit.callbacks import InformationPlane

    train, held_out = clustered_splits()
    callback = InformationPlane(probe=held_out.tensors, x_compressor="pca", x_dims=2, layer_dims=2, probe_size=500,
                                log_figure=False)
    model, _ = train_encoder(train, 0.3, epochs=1, callbacks=[callback], default_root_dir=str(tmp_path))
    rows = callback.history.rows()
    assert sorted({row.layer for row in rows}) == sorted(model.default_ib_layers)
    assert all(math.isfinite(row.I_XL) and math.isfinite(row.I_YL) for row in rows)
    assert all(0 <= row.I_YL <= math.log(4) + 0.3 for row in rows)


# ----------------------------------------------------------------------------------- commands
def test_train_and_bench_commands_write_their_outputs(tmp_path):
    assert cli_main(["train", "dim", "--data", "digits", "--epochs", "1", "--data.batch_size", "64",
                     "--model.noise", "0.3", "--model.conv_widths", "[8, 8, 8]", "--model.critic_hidden", "16",
                     "--eval.subsamples", "32", "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"),
                     "--trainer.enable_progress_bar", "false"]) == 0
    (run_dir,) = (tmp_path / "runs").glob("dim_digits_gaussian_d2_p0.3_seed0/version_0")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["capacity"] == pytest.approx(2 * -math.log(0.3))
    assert summary["certificate"] == pytest.approx(summary["capacity"] - summary["mi"])
    assert 0 <= summary["pvalue_henze_zirkler"] <= 1 and 0 <= summary["accuracy_mlp"] <= 1
    assert (run_dir / "summary.md").read_text().startswith("# Noise-injected Deep InfoMax")
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert "noise: 0.3" in (run_dir / "config.yaml").read_text()  # every setting of the run, re-runnable

    assert cli_main(["bench", "dim", "--data", "digits", "--epochs", "1", "--data.batch_size", "64",
                     "--noise-levels", "0.5", "0.1", "--model.conv_widths", "[8, 8, 8]", "--model.critic_hidden", "16",
                     "--eval.subsamples", "32", "--out", str(tmp_path / "bench")]) == 0
    table = (tmp_path / "bench" / "dim_tradeoff.md").read_text()
    assert "| 0.5 | 1.39 |" in table and "| 0.1 | 4.61 |" in table
    assert (tmp_path / "bench" / "dim_tradeoff.png").stat().st_size > 0
    assert len((tmp_path / "bench" / "dim_tradeoff.csv").read_text().splitlines()) == 3
    with pytest.raises(SystemExit):
        cli_main(["bench", "dim", "--noise-levels", "1.5"])


def test_paper_preset_sets_the_authors_settings(capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "dim", "--preset", "paper", "--data-dir", "/mnist", "--epochs", "7", "--print_config"])
    config = capsys.readouterr().out
    for setting in ("batch_size: 1024", "critic_hidden: 256", "input_noise: 0.5", "padding: valid",
                    "noise: 0.316", "max_epochs: 7", "data_dir: /mnist"):
        assert setting in config, setting
    with pytest.raises(SystemExit) as exit_:  # a usage error: one line, status 2
        cli_main(["train", "dim", "--preset", "fast"])
    assert exit_.value.code == 2 and "error: unknown preset" in capsys.readouterr().err
