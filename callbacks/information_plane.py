"""``InformationPlane``: estimate I(X;L) and I(Y;L) of chosen layers after training epochs.

The method is that of Butakov et al. (ICLR 2024): the probe inputs X are compressed once (an
autoencoder or PCA, cached), each layer's outputs L are captured on the probe set in eval mode
with the network's noise layers kept on, compressed (PCA to a few dimensions, refitted every
epoch), and the mutual information between the codes is estimated with a non-parametric
estimator (``ibkit.mutual_information``), in nats, with standard errors.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from tqdm import tqdm

from ibkit.callbacks.capture import LayerRecorder, Selector, capture_activations, capture_seed, resolve_layers
from ibkit.callbacks.history import EpochTiming, InformationPlaneHistory, PlanePoint
from ibkit.callbacks.probe import default_probe, pad_rows, probe_tensors, shard_bounds, unpad_gathered
from ibkit.callbacks.tensorboard_layout import (
    FIGURE_TAG,
    TIMING_KEYS,
    custom_scalars_layout,
    find_tensorboard,
    scalar_tag,
    timing_tag,
)
from ibkit.compression import PCA, AutoencoderCompressor
from ibkit.estimators import DEFAULT_METHOD, EstimateWarning, MutualInformationEstimator, resolve_estimator
from ibkit.estimators.plane import InformationPlaneEstimator
from ibkit.validation import check_positive_int

#: Errors a single layer's compression or estimate may raise; they become gaps unless strict.
ESTIMATE_ERRORS = (ValueError, RuntimeError, ArithmeticError)


class InformationPlane(Callback):
    """Information-plane analysis of any ``LightningModule`` while it trains.

    After each scheduled training epoch (once the epoch's training and end-of-epoch validation
    are done, before the epoch's checkpoint is written) the callback:

    1. runs the probe inputs through the module in one ``torch.no_grad`` pass, in eval mode
       with noise layers on (``noise_on``), recording the chosen layers' outputs through
       forward hooks that exist only for that pass; under DDP every process runs its shard of
       the probe and the activations are gathered on rank 0;
    2. compresses the probe inputs once (``x_compressor``, cached; it sees the inputs in their
       own shape) and every layer afresh (``layer_compressor``, refitted each epoch, on the
       layer's outputs flattened per sample);
    3. estimates I(X;L) between the codes (continuous–continuous) and I(Y;L) with the labels
       (continuous–discrete) on the module's device, in nats with standard errors;
    4. logs scalars ``ib/<layer>/I_XL``, ``ib/<layer>/I_YL`` and their ``*_stderr`` and the
       analysis times ``ib/time/{capture_s,compression_s,estimation_s}`` (step = epoch; the
       one-off probe compression as ``ib/time/x_compression_s``) to every
       logger; to a ``TensorBoardLogger`` also the information-plane figure (tag
       ``ib/information_plane``) and, once, a custom-scalars layout; and rewrites
       ``information_plane.csv`` / ``.json`` in the trainer's log directory.

    A layer whose compression or estimate fails (NaN activations, a constant layer, too few
    samples) is a ``UserWarning`` and a gap (NaN in the history, no point in the plot);
    ``strict=True`` raises instead. The history is saved in checkpoints, so a resumed run
    continues it without repeating epochs.

    Args:
        layers: module names as in ``pl_module.named_modules()``; default: the module's
            ``default_ib_layers`` attribute if present, else its top-level children.
        select: picks the tensor to analyse from a layer's output; one callable or a dict
            ``layer -> callable``. Default: the output itself, the first element of a tuple or
            list, the first value of a dict.
        probe: ``(x, y)`` tensors, a ``Dataset`` of ``(x, y, ...)`` items or a ``DataLoader``.
            Default: ``trainer.datamodule.probe_tensors(probe_size)`` if the data module has it,
            else a seeded subset of the validation dataset. Labels ``y`` are class indices.
        probe_size: maximal number of probe samples N (seeded subset of larger sources).
        estimator: MI method name for ``ibkit.mutual_information`` (``"kl"``, ``"wkl"``, ...; its
            defaults choose k for the data) or an estimator object (``ibkit.estimators.make_estimator``).
        x_compressor: ``"autoencoder"`` (trained once on the probe inputs), ``"pca"``, an object
            with ``fit_transform(x) -> (N, x_dims)`` or ``None`` (raw flattened inputs).
        x_dims: code size of the X compressor built from a name.
        layer_compressor: ``"pca"``, a factory ``n_components -> compressor`` (a fresh one is
            built and fitted every epoch) or ``None`` (raw flattened layer outputs).
        layer_dims: code size per layer; a layer with fewer features keeps all of them.
        every_n_epochs: analyse epochs ``0, n, 2n, ...``; default 1 (every epoch).
        epochs: an explicit list of epochs to analyse instead of ``every_n_epochs``.
        noise_on: keep the noise of modules with an ``enabled_on_eval`` switch (e.g.
            ``ibkit.layers.AdditiveGaussianNoise``) on during capture; ``False`` turns it off.
        strict: re-raise estimation failures instead of warning.
        seed: seeds the probe subset, the autoencoder and the capture-time noise.
        batch_size: probe samples per forward call during capture.
        forward: ``forward(pl_module, x)`` used for capture; default ``pl_module(x)``.
        log_figure: log the information-plane figure to TensorBoard every analysed epoch.
    """

    def __init__(
        self,
        layers: Sequence[str] | None = None,
        *,
        select: Selector | Mapping[str, Selector] | None = None,
        probe: Any = None,
        probe_size: int = 10_000,
        estimator: str | MutualInformationEstimator = DEFAULT_METHOD,
        x_compressor: Any = "autoencoder",
        x_dims: int = 4,
        layer_compressor: str | Callable[[int], Any] | None = "pca",
        layer_dims: int = 4,
        every_n_epochs: int | None = None,
        epochs: Sequence[int] | None = None,
        noise_on: bool = True,
        strict: bool = False,
        seed: int = 0,
        batch_size: int = 1024,
        forward: Callable[[LightningModule, torch.Tensor], Any] | None = None,
        log_figure: bool = True,
    ):
        super().__init__()
        for name, value in (("probe_size", probe_size), ("x_dims", x_dims), ("layer_dims", layer_dims),
                            ("batch_size", batch_size)):
            check_positive_int(value, name)
        if every_n_epochs is not None and epochs is not None:
            raise ValueError("give either every_n_epochs or epochs, not both")
        if every_n_epochs is not None:
            check_positive_int(every_n_epochs, "every_n_epochs")
        if epochs is not None and any(not isinstance(e, int) or e < 0 for e in epochs):
            raise ValueError(f"epochs must be non-negative integers, got {list(epochs)!r}")
        if x_compressor not in (None, "pca", "autoencoder") and not hasattr(x_compressor, "fit_transform"):
            raise ValueError(f"x_compressor must be 'pca', 'autoencoder', None or an object with fit_transform, "
                             f"got {x_compressor!r}")
        if layer_compressor is not None and layer_compressor != "pca" and not callable(layer_compressor):
            raise ValueError(f"layer_compressor must be 'pca', a factory n_components -> compressor or None, "
                             f"got {layer_compressor!r}")
        self.layer_names = None if layers is None else list(layers)
        self.select = select
        self.probe = probe
        self.probe_size = probe_size
        self.estimator = resolve_estimator(estimator)
        self.x_compressor = x_compressor
        self.x_dims = x_dims
        self.layer_compressor = layer_compressor
        self.layer_dims = layer_dims
        self.every_n_epochs = every_n_epochs or 1
        self.epochs = None if epochs is None else sorted(set(epochs))
        self.noise_on = noise_on
        self.strict = strict
        self.seed = seed
        self.batch_size = batch_size
        self.forward = forward
        self.log_figure = log_figure

        self.history = InformationPlaneHistory()
        self._recorder: LayerRecorder | None = None
        self._probe: tuple[torch.Tensor, torch.Tensor] | None = None
        self._x_codes: torch.Tensor | None = None
        self._x_failed = False
        self._plane: InformationPlaneEstimator | None = None
        self._log_dir: str | None = None
        self._layout_written = False
        self._last_epoch_analysed: int | None = None
        self._warned: set[tuple[str, str]] = set()
        #: Seconds spent compressing the probe inputs (once, at the first analysed epoch).
        self.x_compression_s: float | None = None

    # ------------------------------------------------------------------ Lightning hooks
    @property
    def state_key(self) -> str:
        return self._generate_state_key(layers=self.layer_names)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Resolve the layers (``ValueError`` listing valid names on a typo) and the log directory."""
        if stage != "fit":
            return
        self._recorder = LayerRecorder(resolve_layers(pl_module, self.layer_names), self.select)
        self._log_dir = trainer.log_dir
        self._last_epoch_analysed = None
        self._layout_written = False
        if find_tensorboard(trainer.loggers) is None:
            rank_zero_warn(
                "InformationPlane: no TensorBoardLogger attached; the information plane is written "
                f"only to information_plane.csv/.json in {self._log_dir} (scalars still go to any "
                "other logger)",
                category=UserWarning,
            )

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Validation at the end of an epoch runs before on_train_epoch_end and may write the
        # epoch's checkpoint; analysing here keeps that checkpoint's history complete.
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            self._analyse_if_due(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._analyse_if_due(trainer, pl_module)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if self._recorder is not None:
            self._recorder.remove_hooks()

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history.load_state_dict(state_dict["history"])

    # ------------------------------------------------------------------ scheduling
    def is_scheduled(self, epoch: int) -> bool:
        """Whether ``epoch`` (0-based) is analysed."""
        if self.epochs is not None:
            return epoch in self.epochs
        return epoch % self.every_n_epochs == 0

    def _analyse_if_due(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        if self._last_epoch_analysed == epoch or not self.is_scheduled(epoch):
            return
        self._last_epoch_analysed = epoch
        self.analyse_epoch(trainer, pl_module, epoch)

    # ------------------------------------------------------------------ the analysis
    def analyse_epoch(self, trainer: Trainer, pl_module: LightningModule, epoch: int) -> None:
        """Capture, compress, estimate and log the information plane for ``epoch`` (all ranks)."""
        assert self._recorder is not None, "setup('fit') must run before analyse_epoch"
        x, y = self._probe_set(trainer)
        started = time.perf_counter()
        activations = self._capture(trainer, pl_module, x, epoch)
        capture_s = time.perf_counter() - started
        error: str | None = None
        failure: BaseException | None = None
        if trainer.is_global_zero:
            try:
                self._estimate_and_log(trainer, pl_module, epoch, x, y, activations, capture_s)
            except Exception as exc:  # re-raised below on every rank, so no process is left waiting
                failure, error = exc, f"{type(exc).__name__}: {exc}"
        error = trainer.strategy.broadcast(error, src=0)
        if failure is not None:
            raise failure
        if error is not None:
            raise RuntimeError(f"InformationPlane failed on rank 0: {error}")

    def _probe_set(self, trainer: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
        if self._probe is None:
            if self.probe is None:
                self._probe = default_probe(trainer, self.probe_size, self.seed)
            else:
                self._probe = probe_tensors(self.probe, self.probe_size, self.seed)
            if self._probe[0].shape[0] < trainer.world_size:
                raise ValueError(
                    f"the probe set has {self._probe[0].shape[0]} samples, fewer than the "
                    f"{trainer.world_size} processes"
                )
        return self._probe

    def _capture(self, trainer: Trainer, pl_module: LightningModule, x: torch.Tensor,
                 epoch: int) -> dict[str, torch.Tensor | Exception]:
        """Every rank captures its shard; rank 0 gets the full ``(N, features)`` activations."""
        assert self._recorder is not None
        world, rank = trainer.world_size, trainer.global_rank
        bounds = shard_bounds(x.shape[0], world)
        start, stop = bounds[rank]
        local = capture_activations(pl_module, self._recorder, x[start:stop], batch_size=self.batch_size,
                                    noise_on=self.noise_on, seed=capture_seed(self.seed, epoch, rank),
                                    forward=self.forward)
        if world == 1:
            return local
        # Agree on which layers every rank captured, and their widths, before gathering them.
        widths = torch.tensor([-1 if isinstance(v, Exception) else v.shape[1] for v in local.values()],
                              device=pl_module.device)
        all_widths = trainer.strategy.all_gather(widths)
        per_rank = bounds[0][1] - bounds[0][0]
        gathered: dict[str, torch.Tensor | Exception] = {}
        for column, (name, value) in enumerate(local.items()):
            widths_here = all_widths[:, column]
            if bool((widths_here < 0).any()) or bool((widths_here != widths_here[0]).any()):
                gathered[name] = value if isinstance(value, Exception) else ValueError(
                    f"layer {name!r} failed to capture on another process")
                continue
            assert isinstance(value, torch.Tensor)
            stacked = trainer.strategy.all_gather(pad_rows(value.contiguous(), per_rank))
            gathered[name] = unpad_gathered(stacked, bounds)
        return gathered

    def _compress_x(self, x: torch.Tensor, device: torch.device) -> torch.Tensor | None:
        """Probe codes ``(N, x_dims)`` on ``device``, computed once; ``None`` if compression failed.

        The one-off time it takes (e.g. training the autoencoder) is kept in ``x_compression_s``.
        """
        if self._x_codes is None and not self._x_failed:
            started = time.perf_counter()
            try:
                if self.x_compressor is None:
                    codes = x.flatten(1)
                else:
                    codes = torch.as_tensor(self._x_compressor_for(device).fit_transform(x))
                self._x_codes = codes.detach().flatten(1).to(device)
            except ESTIMATE_ERRORS as error:
                if self.strict:
                    raise
                self._x_failed = True
                warnings.warn(f"InformationPlane: compressing the probe inputs failed ({error}); "
                              "I(X;L) is left out of every epoch", UserWarning, stacklevel=2)
            self.x_compression_s = time.perf_counter() - started
        return self._x_codes

    def _x_compressor_for(self, device: torch.device) -> Any:
        """The X compressor object; a named autoencoder trains on ``device``'s kind of accelerator."""
        if self.x_compressor == "pca":
            return PCA(self.x_dims)
        if self.x_compressor == "autoencoder":
            return AutoencoderCompressor(self.x_dims, seed=self.seed,
                                         accelerator="gpu" if device.type == "cuda" else "cpu")
        return self.x_compressor

    def _plane_estimator(self, x_codes: torch.Tensor | None, y: torch.Tensor,
                         device: torch.device) -> InformationPlaneEstimator:
        """The estimator of both MIs, built once: it keeps H(X) across layers and epochs."""
        if self._plane is None:
            try:
                self._plane = InformationPlaneEstimator(x_codes, y.to(device), self.estimator)
            except ESTIMATE_ERRORS as error:
                if self.strict or x_codes is None:
                    raise
                warnings.warn(f"InformationPlane: the probe codes are unusable ({error}); I(X;L) is left out "
                              "of every epoch", UserWarning, stacklevel=2)
                self._plane = InformationPlaneEstimator(None, y.to(device), self.estimator)
        return self._plane

    def _compress_layer(self, activations: torch.Tensor) -> torch.Tensor:
        """``(N, features)`` layer outputs -> ``(N, min(layer_dims, features))`` codes."""
        n_bad = int((~torch.isfinite(activations)).any(dim=1).sum())
        if n_bad:
            raise ValueError(f"{n_bad} of {activations.shape[0]} samples have NaN or inf activations")
        if self.layer_compressor is None:
            return activations
        n_components = min(self.layer_dims, activations.shape[1])
        if self.layer_compressor == "pca":
            compressor = PCA(n_components)
        else:
            compressor = self.layer_compressor(n_components)
        return torch.as_tensor(compressor.fit_transform(activations)).to(activations.device)

    @contextmanager
    def _warnings_once(self, scope: str, epoch: int) -> Iterator[None]:
        """Pass on the estimators' warnings about ``scope`` (a layer or ``"x"``), each kind once per run."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for record in caught:
            message = record.message
            if not isinstance(message, EstimateWarning):
                warnings.warn_explicit(message, record.category, record.filename, record.lineno)
                continue
            if (scope, message.kind) in self._warned:
                continue
            self._warned.add((scope, message.kind))
            warnings.warn(type(message)(f"InformationPlane, epoch {epoch}, {scope!r} (reported once per run): "
                                        f"{message}", message.variable, message.kind), stacklevel=3)

    def _gap(self, epoch: int, layer: str, what: str, error: BaseException) -> None:
        if self.strict:
            raise error
        warnings.warn(f"InformationPlane: {what} for layer {layer!r} at epoch {epoch} failed ({error}); "
                      "recorded as a gap", UserWarning, stacklevel=3)

    def _estimate_and_log(self, trainer: Trainer, pl_module: LightningModule, epoch: int, x: torch.Tensor,
                          y: torch.Tensor, activations: Mapping[str, torch.Tensor | Exception],
                          capture_s: float) -> None:
        device = pl_module.device
        x_compressed_now = self.x_compression_s is None
        x_codes = self._compress_x(x, device)
        started = time.perf_counter()
        codes: dict[str, torch.Tensor | BaseException] = {}
        for layer, value in activations.items():
            if isinstance(value, Exception):
                codes[layer] = value
                continue
            try:
                codes[layer] = self._compress_layer(value.to(device))
            except ESTIMATE_ERRORS as error:
                codes[layer] = error
        compression_s = time.perf_counter() - started

        started = time.perf_counter()
        with self._warnings_once("x", epoch):
            plane = self._plane_estimator(x_codes, y, device)
        nan = float("nan")
        points = []
        progress = tqdm(codes.items(), desc=f"information plane, epoch {epoch}", total=len(codes),
                        leave=False, disable=None, file=sys.stderr)
        for layer, code in progress:
            i_xl = i_yl = None
            if isinstance(code, BaseException):
                self._gap(epoch, layer, "capture or compression", code)
            else:
                with self._warnings_once(layer, epoch):
                    if x_codes is not None:
                        try:
                            i_xl = plane.i_xl(code, layer)
                        except ESTIMATE_ERRORS as error:
                            self._gap(epoch, layer, "I(X;L)", error)
                    try:
                        i_yl = plane.i_yl(code, layer)
                    except ESTIMATE_ERRORS as error:
                        self._gap(epoch, layer, "I(Y;L)", error)
            points.append(PlanePoint(
                epoch=epoch, layer=layer,
                I_XL=i_xl.value if i_xl else nan, I_XL_stderr=i_xl.stderr if i_xl else nan,
                I_YL=i_yl.value if i_yl else nan, I_YL_stderr=i_yl.stderr if i_yl else nan,
            ))
        estimation_s = time.perf_counter() - started

        timing = EpochTiming(epoch=epoch, capture_s=capture_s, compression_s=compression_s, estimation_s=estimation_s)
        self.history.record(points, timing)
        self._log(trainer, epoch, points, timing, x_compressed_now and self.x_compression_s is not None)

    # ------------------------------------------------------------------ output (rank 0)
    def settings(self) -> dict[str, Any]:
        """The analysis settings, as written to ``information_plane.json``."""
        return {
            "layers": list(self._recorder.layers) if self._recorder else self.layer_names,
            "probe_size": None if self._probe is None else int(self._probe[0].shape[0]),
            "estimator": repr(self.estimator),
            "x_compressor": repr(self.x_compressor), "x_dims": self.x_dims,
            "layer_compressor": repr(self.layer_compressor), "layer_dims": self.layer_dims,
            "noise_on": self.noise_on, "seed": self.seed, "units": "nats",
            "x_compression_s": self.x_compression_s,
        }

    def _log(self, trainer: Trainer, epoch: int, points: Sequence[PlanePoint], timing: EpochTiming,
             x_compressed_now: bool) -> None:
        metrics = {}
        for point in points:
            for quantity in ("I_XL", "I_XL_stderr", "I_YL", "I_YL_stderr"):
                value = getattr(point, quantity)
                if value == value:  # NaN is a gap: not logged
                    metrics[scalar_tag(point.layer, quantity)] = value
        for stage in TIMING_KEYS:
            metrics[timing_tag(stage)] = getattr(timing, stage)
        if x_compressed_now:
            metrics[timing_tag("x_compression_s")] = self.x_compression_s
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=epoch)
        tensorboard = find_tensorboard(trainer.loggers)
        if tensorboard is not None:
            writer = tensorboard.experiment
            if not self._layout_written:
                writer.add_custom_scalars(custom_scalars_layout([point.layer for point in points]))
                self._layout_written = True
            if self.log_figure:
                writer.add_figure(FIGURE_TAG, self.history.figure(), global_step=epoch, close=False)
        if self._log_dir is not None:
            self.history.write(self._log_dir, settings=self.settings())
