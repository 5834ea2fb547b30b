"""Noise-injected Deep InfoMax (Butakov et al., ICLR 2025): representations that match a prior.

An encoder ``f`` = backbone + normaliser (unit-variance BatchNorm for a Gaussian prior, sigmoid
for a uniform one) is trained to maximise the InfoNCE lower bound on
``I(f(X') ; C(f(X)))`` between two stochastic views ``X, X'`` of each input (input noise and,
optionally, random affine augmentation), where ``C`` is a noise channel with level ``p``
(:mod:`ibkit.models.channels`). Under the normaliser's constraint, the mutual information through
``C`` is at most the capacity ``d·C = d·(−log p)`` nats and reaches it only when ``f(X)`` follows
the prior, so maximising it pushes the embedding towards ``N(0, I)`` (or ``U[0, 1]^d``) with no
extra loss term or discriminator. The gap is a certificate:

    KL(noisy embedding ‖ prior) ≤ d·C − Î     (nats)

for the Gaussian prior (given zero mean and unit variance, which BatchNorm enforces) and, with
``Uniform[0, 1]^d`` in place of the Gaussian, for the uniform one. ``Î`` is the InfoNCE estimate,
which can never exceed ``log(batch size)``: a capacity above that cannot be certified.

Logged every epoch (TensorBoard tags): ``train/mi`` (Î), ``train/capacity`` (d·C),
``train/certificate`` (d·C − Î), and on validation data the prior-matching p-value of the clean
embedding (``val/pvalue_henze_zirkler`` or ``val/pvalue_kolmogorov_smirnov``, averaged over
random subsamples of 64 points). Noise is active in training only; ``model(x)`` in eval mode
returns the clean embedding with BatchNorm running statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ibkit.estimators.critics import make_critic
from ibkit.estimators.variational import infonce_lower_bound
from ibkit.evaluation import normality_pvalues, uniformity_pvalues
from ibkit.models.channels import GaussianChannel, UniformChannel, check_noise_level
from ibkit.models.encoders import DIMEncoder, check_dim, check_prior, make_backbone
from ibkit.models.views import RandomAffine
from ibkit.validation import check_number

#: Validation monitoring: subsamples and subsample size of the per-epoch prior test.
MONITOR_SUBSAMPLES = 256
MONITOR_SUBSAMPLE_SIZE = 64


def _inputs(batch: Any) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


class NoiseInjectedDIM(L.LightningModule):
    """Noise-injected Deep InfoMax encoder with an InfoNCE critic, trained jointly.

    Args:
        input_shape: shape of one input, e.g. ``(1, 28, 28)``; images of at least 8×8 get the
            small :class:`~ibkit.models.encoders.ConvBackbone`, anything else an MLP.
        prior: ``"gaussian"`` or ``"uniform"``.
        dim: embedding dimension ``d >= 1``.
        noise: output-noise level ``p ∈ (0, 1)`` of the channel on the embedding (Gaussian
            bounded-variance for the Gaussian prior, bounded-support uniform for the uniform
            prior); ``None`` trains plain Deep InfoMax without output noise (no certificate).
        input_noise: level ``p ∈ (0, 1)`` of the bounded-variance Gaussian channel that makes the
            two input views (``y = √(1−p²)·x + p·n`` on standardised inputs), or ``None``.
        augment: also apply a random affine augmentation to each view (images only).
        backbone: a module mapping inputs to ``(N, dim)`` features instead of the default one.
        conv_widths: channels of the default ConvNet's three blocks (the paper's: 32, 64, 128).
        padding: the default ConvNet's convolutions: ``"auto"`` (valid, the paper's, when the image
            allows it), ``"valid"`` or ``"same"`` (with global average pooling).
        critic: ``"mlp"`` (MLP on concatenated embeddings) or ``"separable"`` (bilinear).
        critic_hidden: hidden width of the critic.
        lr: Adam learning rate of encoder and critic.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        prior: str = "gaussian",
        dim: int = 2,
        noise: float | None = 0.1,
        input_noise: float | None = 0.2,
        augment: bool = False,
        backbone: nn.Module | None = None,
        conv_widths: Sequence[int] = (32, 64, 128),
        padding: str = "auto",
        critic: str = "mlp",
        critic_hidden: int = 256,
        lr: float = 1e-3,
    ):
        super().__init__()
        check_prior(prior)
        check_dim(dim)
        if noise is not None:
            check_noise_level(noise, "output noise level p")
        if input_noise is not None:
            check_noise_level(input_noise, "input noise level")
        check_number(lr, "lr", minimum=0.0, open_interval=True)
        self.save_hyperparameters(ignore=["backbone"])
        if backbone is None:
            backbone = make_backbone(input_shape, dim, conv_widths, padding)
        self.encoder = DIMEncoder(backbone, dim, prior)
        channel = GaussianChannel if prior == "gaussian" else UniformChannel
        self.output_channel = None if noise is None else channel(noise)
        self.input_channel = None if input_noise is None else GaussianChannel(input_noise)
        self.augment = RandomAffine() if augment else None
        self.critic = make_critic(critic, dim, critic_hidden)
        self._val_embeddings: list[torch.Tensor] = []

    @property
    def default_ib_layers(self) -> tuple[str, ...]:
        """The encoder's layers, for ``ibkit.callbacks.InformationPlane``."""
        return tuple(f"encoder.{name}" for name in self.encoder.default_ib_layers)

    @property
    def capacity(self) -> float | None:
        """Total capacity ``d·(−log p)`` of the output channel in nats (``None`` without output noise)."""
        return None if self.output_channel is None else self.hparams.dim * self.output_channel.capacity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding ``(N, d)`` of inputs ``(N, *input_shape)`` (clean in eval mode)."""
        return self.encoder(x)

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """One stochastic view of a batch: augmentation then input noise (training mode only)."""
        if self.augment is not None:
            x = self.augment(x)
        return x if self.input_channel is None else self.input_channel(x)

    def mutual_information(self, x: torch.Tensor) -> torch.Tensor:
        """InfoNCE estimate Î (nats) of ``I(f(X'); C(f(X)))`` on a batch ``x`` of at least 2 inputs."""
        if x.shape[0] < 2:
            raise ValueError(f"training batches need at least 2 samples (InfoNCE negatives and BatchNorm "
                             f"statistics), got a batch of {x.shape[0]}; use a batch size >= 2")
        noisy = self.encoder(self.view(x))
        if self.output_channel is not None:
            noisy = self.output_channel(noisy)
        clean = self.encoder(self.view(x))
        return infonce_lower_bound(self.critic(noisy, clean))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = _inputs(batch)
        mi = self.mutual_information(x)
        size = x.shape[0]
        self.log("train/mi", mi, on_step=False, on_epoch=True, prog_bar=True, batch_size=size)
        if self.capacity is not None:
            self.log("train/capacity", self.capacity, on_step=False, on_epoch=True, batch_size=size)
            self.log("train/certificate", self.capacity - mi, on_step=False, on_epoch=True, prog_bar=True,
                     batch_size=size)
        return -mi

    def on_validation_epoch_start(self) -> None:
        self._val_embeddings = []

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._val_embeddings.append(self(_inputs(batch)).detach().cpu())

    def on_validation_epoch_end(self) -> None:
        if not self._val_embeddings:
            return
        embedding = torch.cat(self._val_embeddings).double().numpy()
        self._val_embeddings = []
        size = min(MONITOR_SUBSAMPLE_SIZE, embedding.shape[0])
        if size < 21 or not np.isfinite(embedding).all():
            return
        if self.hparams.prior == "gaussian":
            pvalue = normality_pvalues(embedding, MONITOR_SUBSAMPLES, size, tests=("henze_zirkler",))
        else:
            pvalue = uniformity_pvalues(embedding, MONITOR_SUBSAMPLES, size)
        for name, value in pvalue.items():
            self.log(f"val/pvalue_{name}", value, prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


@torch.no_grad()
def embed(model: nn.Module, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean embeddings of every ``(x, y, ...)`` batch of ``loader``, in eval mode.

    Returns:
        ``z (N, d)`` float32 and ``y (N,)`` on the CPU. The model's train/eval mode is restored.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        pairs = [(model(batch[0].to(device)).cpu(), batch[1]) for batch in loader]
    finally:
        model.train(was_training)
    if not pairs:
        raise ValueError("the loader yielded no batches")
    return torch.cat([z for z, _ in pairs]), torch.cat([y for _, y in pairs])
