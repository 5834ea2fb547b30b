"""Autoencoder compressors (dense for vectors, convolutional for images), trained by a small loop.

:class:`AutoencoderModule` is the network (encoder, decoder, input normalisation and an optional
noise on the code during training); :class:`AutoencoderCompressor` is the scikit-learn-style
compressor that builds, trains and applies it. Training is a plain Adam loop on the chosen
device, with no Lightning ``Trainer`` (it would be a second trainer inside a user's run, with its
own logging and warnings) and no change to the process's thread settings.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.swa_utils import update_bn
from tqdm import tqdm

from ibkit.compression.base import Compressor, as_float_batch
from ibkit.compression.networks import check_widths, conv_autoencoder, mlp_autoencoder
from ibkit.errors import DataError
from ibkit.layers import AdditiveGaussianNoise
from ibkit.randomness import seeded
from ibkit.validation import check_choice, check_number, check_positive_int

LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}
ARCHITECTURES = ("auto", "mlp", "conv")
#: Samples per forward pass when encoding or measuring the reconstruction error.
INFERENCE_BATCH = 4096


class AutoencoderModule(nn.Module):
    """An autoencoder on normalised inputs: ``x -> (x − mean)/scale -> code -> x̂``.

    Args:
        encoder: ``(N, *input_shape) -> (N, latent)`` on normalised inputs.
        decoder: ``(N, latent) -> (N, *input_shape)`` in normalised units.
        input_mean: ``input_shape`` tensor subtracted from every input.
        input_scale: positive scalar the centred inputs are divided by.
        loss: ``"l1"`` (mean absolute error, the paper's choice) or ``"mse"``.
        code_noise: standard deviation of the absolute Gaussian noise added to the code during
            training only (a regulariser that spreads the codes; ``0`` disables it).
        generator: draws the code noise (default: torch's process-wide generator).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        input_mean: torch.Tensor,
        input_scale: float,
        loss: str = "l1",
        code_noise: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.code_noise = AdditiveGaussianNoise(code_noise, relative=False, generator=generator)
        self.register_buffer("input_mean", input_mean.detach().clone().float())
        self.register_buffer("input_scale", torch.tensor(float(input_scale)))
        self.loss = loss

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Centred, scaled inputs; images in channels-last layout (several times faster on CPU)."""
        x = (x - self.input_mean) / self.input_scale
        return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(N, latent)`` in ``(-1, 1)`` of raw inputs ``(N, *input_shape)``."""
        return self.encoder(self.normalise(x))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Reconstructions ``(N, *input_shape)`` in input units from codes ``(N, latent)``."""
        return self.decoder(code) * self.input_scale + self.input_mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x`` (with code noise in training mode)."""
        return self.decode(self.code_noise(self.encode(x)))

    def training_loss(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction loss of a batch of raw inputs, in normalised units."""
        target = self.normalise(x)
        reconstruction = self.decoder(self.code_noise(self.encoder(target)))
        return LOSSES[self.loss](reconstruction, target)


def _recalibrate_batch_norm(module: AutoencoderModule, train: torch.Tensor) -> None:
    """Replace BatchNorm running statistics by exact averages over ``train`` (training-mode pass).

    The running averages left by training lag behind the final weights (momentum 0.1), most
    visibly after short runs; eval-mode codes would then be computed with stale statistics.
    """
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules()):
        return
    update_bn(train.split(INFERENCE_BATCH), module, device=module.input_mean.device)


class AutoencoderCompressor(Compressor):
    """Compress samples to the code of an autoencoder trained on them (Adam, a plain loop).

    The architecture is a dense autoencoder (:func:`~ibkit.compression.networks.mlp_autoencoder`)
    for vectors and a convolutional one (:func:`~ibkit.compression.networks.conv_autoencoder`)
    for images; codes lie in ``(-1, 1)`` (tanh bottleneck). Inputs are centred per feature and
    divided by their overall standard deviation before training, so the defaults work for any
    input scale. Training is reproducible: the weights, the code noise and the data order are
    drawn from ``seed`` by private generators (``ibkit.randomness``), never from torch's
    process-wide one, so training in a background thread beside a training loop is safe.
    After training, BatchNorm statistics are recomputed over the whole training set so that
    eval-mode codes match what the network was trained on. Nothing is written to disk; the
    per-epoch training loss is kept in ``loss_history_``.

    Args:
        n_components: code dimension.
        architecture: ``"mlp"``, ``"conv"`` or ``"auto"`` (conv for ``(N, C, H, W)`` and
            ``(N, H, W)`` inputs, the latter read as one channel; mlp for everything else).
            The mlp flattens samples of any shape.
        hidden: hidden widths of the dense encoder (mirrored by the decoder).
        channels: feature maps of the conv down blocks (the last repeats as needed).
        max_epochs: training epochs (``0`` leaves the initial random network).
        batch_size: training batch size.
        lr: Adam learning rate.
        loss: ``"l1"`` (default, as in the paper) or ``"mse"``.
        code_noise: standard deviation of the Gaussian noise added to the code while training.
        seed: seed for weights, code noise and data order.
        device: where to train (default: the CPU). Codes come back on the input's device.
        progress: show a progress bar over the training epochs.

    Attributes (after :meth:`fit`):
        module_: the trained :class:`AutoencoderModule` (eval mode).
        architecture_: ``"mlp"`` or ``"conv"``.
        n_components_: code dimension (``= n_components``).
        feature_shape_: per-sample shape of the training data.
        training_time_: wall-clock seconds spent training.
        loss_history_: the mean training loss of every epoch (normalised units).

    Small networks like these train fastest with one CPU thread on a busy machine (measured:
    16×16 conv AE, 10 epochs on 6,000 images, 7.4 s with one thread vs 66 s with two on an
    oversubscribed 2-core box); set ``OMP_NUM_THREADS=1`` or ``torch.set_num_threads(1)`` yourself
    if that is your case: the library leaves the thread settings alone.
    """

    def __init__(
        self,
        n_components: int,
        architecture: str = "auto",
        *,
        hidden: Sequence[int] = (64, 32),
        channels: Sequence[int] = (4, 8, 16),
        max_epochs: int = 100,
        batch_size: int = 256,
        lr: float = 1e-3,
        loss: str = "l1",
        code_noise: float = 0.02,
        seed: int = 0,
        device: torch.device | str | None = None,
        progress: bool = False,
    ) -> None:
        check_choice(architecture, "architecture", ARCHITECTURES)
        check_choice(loss, "loss", sorted(LOSSES))
        check_positive_int(seed, "seed", minimum=0)
        self.n_components = check_positive_int(n_components, "n_components")
        self.architecture = architecture
        self.hidden = check_widths(hidden, "hidden")
        self.channels = check_widths(channels, "channels")
        self.max_epochs = check_positive_int(max_epochs, "max_epochs", minimum=0)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.lr = check_number(lr, "lr", minimum=0.0, open_interval=True)
        self.loss = loss
        self.code_noise = check_number(code_noise, "code_noise", minimum=0.0)
        self.seed = seed
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.progress = bool(progress)

    # ----------------------------------------------------------------------------- fitting

    def _resolve_architecture(self, data: torch.Tensor) -> str:
        if self.architecture != "auto":
            return self.architecture
        return "conv" if data.ndim in (3, 4) else "mlp"

    def _network_input(self, data: torch.Tensor, architecture: str) -> torch.Tensor:
        """Reshape ``(N, ...)`` samples to what the network takes: ``(N, d)`` or ``(N, C, H, W)``."""
        if architecture == "mlp":
            return data.reshape(data.shape[0], -1)
        if data.ndim == 3:
            return data.unsqueeze(1)
        if data.ndim == 4:
            return data
        raise ValueError(
            f"the conv autoencoder needs images of shape (N, C, H, W) or (N, H, W), "
            f"got shape {tuple(data.shape)}"
        )

    def _build_module(self, train: torch.Tensor, architecture: str) -> AutoencoderModule:
        """The network for ``train``: its weights, then its code noise, drawn from one private generator
        seeded with ``seed`` (never from torch's process-wide one)."""
        with seeded(self.seed) as generator:
            if architecture == "mlp":
                encoder, decoder = mlp_autoencoder(train.shape[1], self.n_components, self.hidden)
            else:
                encoder, decoder = conv_autoencoder(tuple(train.shape[1:]), self.n_components, self.channels)
                encoder = encoder.to(memory_format=torch.channels_last)
                decoder = decoder.to(memory_format=torch.channels_last)
        mean = train.mean(dim=0)
        scale = float((train - mean).std())
        if not scale > 0.0:
            raise DataError(f"x is constant (all {train.shape[0]} samples are identical): nothing to encode")
        return AutoencoderModule(encoder, decoder, mean, scale, self.loss, self.code_noise, generator)

    def _train(self, module: AutoencoderModule, train: torch.Tensor, generator: torch.Generator) -> list[float]:
        """Adam on shuffled mini-batches for ``max_epochs`` epochs; the mean loss of each epoch."""
        optimiser = torch.optim.Adam(module.parameters(), lr=self.lr)
        module.train()
        history = []
        epochs = tqdm(range(self.max_epochs), desc="autoencoder", unit="epoch", disable=not self.progress,
                      file=sys.stderr)
        for _ in epochs:
            total, count = 0.0, 0
            for batch in self._batches(train, generator):
                batch = batch.to(self.device, non_blocking=True)
                loss = module.training_loss(batch)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total, count = total + float(loss.detach()) * batch.shape[0], count + batch.shape[0]
            history.append(total / count)
            epochs.set_postfix(loss=f"{history[-1]:.4f}")
        return history

    def _batches(self, train: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        """One epoch of shuffled mini-batches of ``train``, drawn by ``generator``.

        A final batch of a single sample is dropped: BatchNorm cannot normalise it. (No
        ``DataLoader``: its iterator draws a seed from torch's process-wide generator.)
        """
        batch_size = min(self.batch_size, train.shape[0])
        batches = train[torch.randperm(train.shape[0], generator=generator)].split(batch_size)
        return list(batches[:-1]) if batches[-1].shape[0] == 1 else list(batches)

    def fit(self, x: Any) -> AutoencoderCompressor:
        """Train the autoencoder on ``x`` (``(N, ...)``, ``N >= 2``); returns ``self``."""
        data = as_float_batch(x, "x", min_samples=2)
        architecture = self._resolve_architecture(data)
        # Training needs autograd even when called under no_grad/inference_mode (e.g. from a
        # callback); cloning outside inference mode turns inference tensors into normal ones.
        with torch.inference_mode(False), torch.enable_grad():
            train = self._network_input(data, architecture).detach().to("cpu", torch.float32).clone()
            module = self._build_module(train, architecture).to(self.device)
            generator = torch.Generator().manual_seed(self.seed)
            started = time.perf_counter()
            self.loss_history_ = self._train(module, train, generator)
            self.training_time_ = time.perf_counter() - started
            _recalibrate_batch_norm(module, train)
        self.module_ = module.eval()
        self.architecture_ = architecture
        self.n_components_ = self.n_components
        self.feature_shape_ = tuple(data.shape[1:])
        return self

    # ------------------------------------------------------------------------- application

    def _prepared(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate ``x`` and return it (as given) and in the network's layout, float32."""
        self._check_fitted()
        data = as_float_batch(x, "x")
        self._check_features(data)
        shaped = data.reshape(data.shape[0], *self._network_shape())
        return data, shaped.to(torch.float32)

    def _network_shape(self) -> tuple[int, ...]:
        if self.architecture_ == "mlp":
            return (math.prod(self.feature_shape_),)
        return self.module_.input_mean.shape

    @torch.no_grad()
    def transform(self, x: Any) -> torch.Tensor:
        """Codes ``(N, n_components)`` in ``(-1, 1)``, on ``x``'s device and in its dtype."""
        data, shaped = self._prepared(x)
        module = self.module_.to(shaped.device)
        codes = [module.encode(chunk) for chunk in shaped.split(INFERENCE_BATCH)]
        return torch.cat(codes).to(data.dtype)

    @torch.no_grad()
    def inverse_transform(self, codes: Any) -> torch.Tensor:
        """Decode ``(N, n_components)`` codes to ``(N, *feature_shape_)`` reconstructions."""
        self._check_fitted()
        values = as_float_batch(codes, "codes")
        if values.ndim != 2 or values.shape[1] != self.n_components_:
            raise ValueError(f"codes must have shape (N, {self.n_components_}), got {tuple(values.shape)}")
        module = self.module_.to(values.device)
        parts = [module.decode(chunk) for chunk in values.to(torch.float32).split(INFERENCE_BATCH)]
        return torch.cat(parts).reshape(values.shape[0], *self.feature_shape_).to(values.dtype)

    @torch.no_grad()
    def reconstruction_error(self, x: Any, loss: str | None = None) -> float:
        """Mean per-element reconstruction error of ``x`` in input units (eval mode, no noise).

        Args:
            x: ``(N, ...)`` samples shaped like the training data.
            loss: ``"l1"`` (mean absolute error) or ``"mse"`` (mean squared error); defaults to
                the training loss.
        """
        loss = self.loss if loss is None else loss
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
        _, shaped = self._prepared(x)
        module = self.module_.to(shaped.device)
        total = torch.zeros((), dtype=torch.float64, device=shaped.device)
        for chunk in shaped.split(INFERENCE_BATCH):
            total += LOSSES[loss](module(chunk), chunk, reduction="sum").double()
        return float(total) / shaped.numel()

    def __repr__(self) -> str:
        return (
            f"AutoencoderCompressor(n_components={self.n_components}, architecture={self.architecture!r}, "
            f"max_epochs={self.max_epochs}, batch_size={self.batch_size}, lr={self.lr:g}, loss={self.loss!r}, "
            f"seed={self.seed}, device={str(self.device)!r})"
        )
