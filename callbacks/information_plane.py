"""``InformationPlane``: the information-plane analysis of ``ibkit.analysis``, driven by a Trainer.

The analysis itself (compress the probe inputs once and every layer afresh, estimate I(X;L) and
I(Y;L) in nats with standard errors, gaps for failures) is
:class:`ibkit.analysis.InformationPlaneAnalysis`; this callback adds what Lightning needs:
scheduling, the distributed capture, logging on rank 0, and checkpointed history.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn

from ibkit.analysis import DEFAULT_LAYER_DIMS, InformationPlaneAnalysis, check_compression
from ibkit.callbacks.background import EpochQueue
from ibkit.callbacks.probe import default_probe, pad_rows, shard_bounds, unpad_gathered
from ibkit.callbacks.tensorboard_layout import (
    FIGURE_TAG,
    POINTS_TAG,
    custom_scalars_layout,
    find_tensorboard,
    plane_metrics,
    points_table,
    timing_tag,
)
from ibkit.capture import LayerRecorder, Selector, capture_activations, capture_seed
from ibkit.compression import Compressor
from ibkit.estimators import DEFAULT_METHOD, MutualInformationEstimator, epochs_estimator
from ibkit.history import InformationPlaneHistory
from ibkit.probe import probe_tensors
from ibkit.validation import check_positive_int


class InformationPlane(Callback):
    """Information-plane analysis of any ``LightningModule`` while it trains.

    After each scheduled training epoch (once the epoch's training and end-of-epoch validation
    are done, before the epoch's checkpoint is written) the callback:

    1. runs the probe inputs through the module in one ``torch.no_grad`` pass, in eval mode
       with noise layers on (``noise_on``), recording the chosen layers' outputs through
       forward hooks that exist only for that pass; under DDP every process runs its shard of
       the probe and the activations are gathered on rank 0;
    2. on rank 0, hands them to :class:`ibkit.analysis.InformationPlaneAnalysis`: the probe
       inputs are compressed once (``x_compressor``, cached), every layer afresh
       (``layer_compressor``), and I(X;L) and I(Y;L) are estimated on the module's device, in
       nats with standard errors;
    3. logs scalars ``ib/<layer>/I_XL`` and ``ib/<layer>/I_YL`` with their ``*_stderr`` and the
       ``*_lower``/``*_upper`` band of ±2 standard errors, and the analysis times
       ``ib/time/{capture_s,compression_s,estimation_s}`` (step = epoch; the one-off probe
       compression as ``ib/time/x_compression_s``; the seconds the training loop waited as
       ``ib/time/blocked_s``, also kept in :attr:`blocked_s`) to every logger; to a
       ``TensorBoardLogger`` also the information-plane figure (``ib/information_plane``) and,
       once, a custom-scalars layout (one margin chart per layer and quantity, value with its
       ±2 SE band) and, as text (``ib/points``), a table of every point's value, the estimator
       that produced it and whether it is a lower bound; and rewrites
       ``information_plane.csv``/``.json`` (with the same method and lower-bound columns) in
       the log directory.

    A layer whose data cannot be estimated is a ``UserWarning`` and a gap; other errors surface
    (see ``strict``). The history is saved in checkpoints, so a resumed run continues it without
    repeating epochs.

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
        estimator: MI method name (``"wkl"``, ``"kl"``, ...; its defaults choose k for the data)
            or an estimator object (``ibkit.estimators.make_estimator``). A trained estimator given
            by name (``"mienf-tridiag"``, ...) is warm-started from epoch to epoch.
        x_compressor, x_dims, x_transform, layer_compressor, layer_dims, layer_transform: how
            probe inputs and layers are transformed and compressed (see
            :class:`ibkit.analysis.InformationPlaneAnalysis`); any object with ``fit_transform``
            serves as a compressor. By default every layer gets an injective per-unit transform
            first (the log-ratio for softmax outputs, normal scores otherwise) and only layers
            wider than ``layer_dims`` are compressed.
        chain: the layers, in the order given, form a chain (a sequential network): points
            below a deeper layer's beyond 2 SE are flagged as compression loss.
        every_n_epochs: analyse epochs ``0, n, 2n, ...``; default 1 (every epoch).
        epochs: an explicit list of epochs to analyse instead of ``every_n_epochs``.
        noise_on: keep the noise of ``ibkit.layers.NoiseLayer`` modules on during capture.
        strict: raise the first failure of an epoch at once. Without it, a layer whose data
            cannot be estimated (a ``ValueError``: NaN or constant activations, too few samples,
            an implausible estimate) is a gap with a ``UserWarning``, and any other error (a bug,
            CUDA out of memory) is a gap while the other layers are estimated, the epoch is
            logged, and then it is raised: it stops the run instead of hiding in the plane.
        seed: seeds the probe subset, the autoencoder and the capture-time noise.
        batch_size: probe samples per forward call during capture.
        forward: ``forward(pl_module, x)`` used for capture; default ``pl_module(x)``.
        log_figure: log the information-plane figure to TensorBoard every analysed epoch.
        asynchronous: compress and estimate in a background thread while training goes on; the
            training loop waits only for the capture. Points are logged when they are ready
            (checked after every training batch), with their own epoch as the step, and are
            the same values as without it. A checkpoint does not wait: it holds the captured
            activations of the epochs still queued, and a run resumed from it estimates them
            first; the end of training waits for all and logs them. A failure
            is raised at the next analysed epoch or at the end of training, on every rank.

    Attributes:
        history: every analysed epoch's points and timings (saved in checkpoints).
        blocked_s: ``epoch -> seconds`` the training loop waited for that epoch's analysis.
    """

    def __init__(
        self,
        layers: Sequence[str] | None = None,
        *,
        select: Selector | Mapping[str, Selector] | None = None,
        probe: Any = None,
        probe_size: int = 10_000,
        estimator: str | MutualInformationEstimator = DEFAULT_METHOD,
        x_compressor: str | Compressor | None = "autoencoder",
        x_dims: int = 4,
        x_transform: str = "auto",
        layer_compressor: str | Callable[[int], Compressor] | None = "pca",
        layer_dims: int = DEFAULT_LAYER_DIMS,
        layer_transform: str | Mapping[str, str] = "auto",
        chain: bool = True,
        every_n_epochs: int | None = None,
        epochs: Sequence[int] | None = None,
        noise_on: bool = True,
        strict: bool = False,
        seed: int = 0,
        batch_size: int = 1024,
        forward: Callable[[LightningModule, torch.Tensor], Any] | None = None,
        log_figure: bool = True,
        asynchronous: bool = False,
    ):
        super().__init__()
        check_positive_int(probe_size, "probe_size")
        check_positive_int(batch_size, "batch_size")
        if every_n_epochs is not None and epochs is not None:
            raise ValueError("give either every_n_epochs or epochs, not both")
        if every_n_epochs is not None:
            check_positive_int(every_n_epochs, "every_n_epochs")
        if epochs is not None and any(not isinstance(e, int) or e < 0 for e in epochs):
            raise ValueError(f"epochs must be non-negative integers, got {list(epochs)!r}")
        check_compression(x_compressor, x_dims, x_transform, layer_compressor, layer_dims, layer_transform)
        self.layer_names = None if layers is None else list(layers)
        self.select = select
        self.probe = probe
        self.probe_size = probe_size
        self.estimator = epochs_estimator(estimator)
        self.compression = {"x_compressor": x_compressor, "x_dims": x_dims, "x_transform": x_transform,
                            "layer_compressor": layer_compressor, "layer_dims": layer_dims,
                            "layer_transform": layer_transform, "chain": chain}
        self.every_n_epochs = every_n_epochs or 1
        self.epochs = None if epochs is None else sorted(set(epochs))
        self.noise_on = noise_on
        self.strict = strict
        self.seed = seed
        self.batch_size = batch_size
        self.forward = forward
        self.log_figure = log_figure

        self.asynchronous = asynchronous

        self.history = InformationPlaneHistory()
        self.blocked_s: dict[int, float] = {}
        self.analysis: InformationPlaneAnalysis | None = None
        self._queue = EpochQueue()
        #: epoch -> (activations, capture seconds) of the queued epochs, saved with checkpoints.
        self._captured: dict[int, tuple[dict[str, torch.Tensor | Exception], float]] = {}
        #: queued epochs of a loaded checkpoint, redone when training starts.
        self._resumed: list[tuple[int, dict[str, torch.Tensor | Exception], float]] = []
        self._failure: BaseException | None = None
        self._x_compression_logged = False
        self._recorder: LayerRecorder | None = None
        self._log_dir: str | None = None
        self._layout_written = False
        self._last_epoch_analysed: int | None = None
        self._batches_done = 0

    # ------------------------------------------------------------------ Lightning hooks
    @property
    def state_key(self) -> str:
        return self._generate_state_key(layers=self.layer_names)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Resolve the layers (``ValueError`` listing valid names on a typo) and the log directory."""
        if stage != "fit":
            return
        self._recorder = LayerRecorder.for_module(pl_module, self.layer_names, self.select)
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
        if self._epoch_finished(trainer):
            self._analyse_if_due(trainer, pl_module)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._batches_done = 0

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._batches_done = batch_idx + 1
        if len(self._queue):
            self._log_finished(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._analyse_if_due(trainer, pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Finish and log every queued epoch, then raise any failure on every rank."""
        self._log_finished(trainer, wait=True)
        self._queue.close()
        self._raise_failure_on_every_rank(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if self._recorder is not None:
            self._recorder.remove_hooks()
        self._queue.close(cancel=True)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Redo the epochs a resumed checkpoint had still queued (rank 0 estimates them)."""
        resumed, self._resumed = self._resumed, []
        if trainer.is_global_zero:
            for epoch, activations, capture_s in resumed:
                self._analyse_captured(trainer, pl_module, epoch, activations, capture_s)
        self._raise_failure_on_every_rank(trainer)

    def state_dict(self) -> dict[str, Any]:
        """The history, and the captured activations of the epochs still being estimated.

        A checkpoint does not wait for queued estimates: their inputs travel with it (on the CPU,
        float32, about ``N × units × 4`` bytes per queued epoch) and a resumed run redoes them.
        """
        running = self._queue.running()  # before the history: an epoch done in between is in both
        return {"history": self.history.state_dict(),
                "queued": [{"epoch": epoch, "capture_s": self._captured[epoch][1],
                            "activations": {layer: value.cpu() if isinstance(value, torch.Tensor) else str(value)
                                            for layer, value in self._captured[epoch][0].items()}}
                           for epoch in running]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history.load_state_dict(state_dict["history"])
        self._resumed = [(entry["epoch"], {layer: value if isinstance(value, torch.Tensor) else ValueError(value)
                                           for layer, value in entry["activations"].items()}, entry["capture_s"])
                         for entry in state_dict.get("queued", [])]

    # ------------------------------------------------------------------ scheduling
    def is_scheduled(self, epoch: int) -> bool:
        """Whether ``epoch`` (0-based) is analysed."""
        if self.epochs is not None:
            return epoch in self.epochs
        return epoch % self.every_n_epochs == 0

    def _epoch_finished(self, trainer: Trainer) -> bool:
        """Whether this validation run is the one at the end of the training epoch.

        Every training batch of the epoch has run; with an unknown epoch length (iterable data)
        the end-of-epoch hook decides instead.
        """
        total = trainer.num_training_batches
        return isinstance(total, int) and self._batches_done >= total

    def _analyse_if_due(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        if self._last_epoch_analysed == epoch or not self.is_scheduled(epoch):
            return
        self._last_epoch_analysed = epoch
        self.analyse_epoch(trainer, pl_module, epoch)

    # ------------------------------------------------------------------ the analysis
    def analyse_epoch(self, trainer: Trainer, pl_module: LightningModule, epoch: int) -> None:
        """Capture (all ranks), then estimate and log (rank 0) the information plane for ``epoch``.

        With ``asynchronous`` the estimate is queued and logged when it is done; a failure of an
        earlier queued epoch is raised here, on every rank.
        """
        assert self._recorder is not None, "setup('fit') must run before analyse_epoch"
        analysis = self._analysis(trainer)
        started = time.perf_counter()
        activations = self._capture(trainer, pl_module, analysis.x, epoch)
        capture_s = time.perf_counter() - started
        if trainer.is_global_zero:
            self._analyse_captured(trainer, pl_module, epoch, activations, capture_s)
            self.blocked_s[epoch] = time.perf_counter() - started
            for logger in trainer.loggers:
                logger.log_metrics({timing_tag("blocked_s"): self.blocked_s[epoch]}, step=epoch)
        self._raise_failure_on_every_rank(trainer)

    def _analyse_captured(self, trainer: Trainer, pl_module: LightningModule, epoch: int,
                          activations: dict[str, torch.Tensor | Exception], capture_s: float) -> None:
        """Estimate and log one captured epoch (rank 0): now, or queued with ``asynchronous``."""
        job = functools.partial(self._estimate, self._analysis(trainer), activations, epoch, capture_s,
                                pl_module.device)
        if not self.asynchronous:
            self._note_failure(job())
            self._log_epoch(trainer, epoch)
            return
        self._log_finished(trainer)
        self._captured[epoch] = (activations, capture_s)
        self._queue.submit(epoch, job)

    @staticmethod
    def _estimate(analysis: InformationPlaneAnalysis, activations: dict[str, torch.Tensor | Exception], epoch: int,
                  capture_s: float, device: torch.device) -> BaseException | None:
        """Compress and estimate one epoch into the history; the failure it raised, if any."""
        try:
            analysis.estimate(activations, epoch, capture_s, device=device)
        except Exception as exc:  # raised on every rank at the next synchronisation point
            return exc
        return None

    def _note_failure(self, failure: BaseException | None) -> None:
        if failure is not None and self._failure is None:
            self._failure = failure

    def _log_finished(self, trainer: Trainer, wait: bool = False) -> None:
        """Log the queued epochs that are done (all of them with ``wait``), in epoch order."""
        for epoch, failure in self._queue.finished(wait):
            self._captured.pop(epoch, None)
            self._note_failure(failure)
            self._log_epoch(trainer, epoch)

    def _raise_failure_on_every_rank(self, trainer: Trainer) -> None:
        """Raise rank 0's first analysis failure on every process, so none is left waiting."""
        failure, self._failure = self._failure, None
        error = None if failure is None else f"{type(failure).__name__}: {failure}"
        error = trainer.strategy.broadcast(error, src=0)
        if failure is not None:
            raise failure
        if error is not None:
            raise RuntimeError(f"InformationPlane failed on rank 0: {error}")

    def _analysis(self, trainer: Trainer) -> InformationPlaneAnalysis:
        """The analysis of this run's probe, built on first use (every rank holds the probe)."""
        if self.analysis is None:
            if self.probe is None:
                x, y = default_probe(trainer, self.probe_size, self.seed)
            else:
                x, y = probe_tensors(self.probe, self.probe_size, self.seed)
            if x.shape[0] < trainer.world_size:
                raise ValueError(f"the probe set has {x.shape[0]} samples, fewer than the "
                                 f"{trainer.world_size} processes")
            self.analysis = InformationPlaneAnalysis(x, y, estimator=self.estimator, strict=self.strict,
                                                     seed=self.seed, history=self.history, **self.compression)
        return self.analysis

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

    # ------------------------------------------------------------------ output (rank 0)
    def settings(self) -> dict[str, Any]:
        """The analysis settings, as written to ``information_plane.json``."""
        analysis = self.analysis.settings() if self.analysis is not None else {}
        return {"layers": list(self._recorder.layers) if self._recorder else self.layer_names, **analysis,
                "noise_on": self.noise_on}

    def _log_epoch(self, trainer: Trainer, epoch: int) -> None:
        """Log a recorded epoch's points (nothing if it failed before it was recorded)."""
        if epoch not in self.history:
            return
        points = self.history.points(epoch)
        x_compression_s = None
        if not self._x_compression_logged and self.analysis is not None and self.analysis.x_compression_s is not None:
            x_compression_s, self._x_compression_logged = self.analysis.x_compression_s, True
        metrics = plane_metrics(points, self.history.timing(epoch), x_compression_s)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=epoch)
        tensorboard = find_tensorboard(trainer.loggers)
        if tensorboard is not None:
            writer = tensorboard.experiment
            if not self._layout_written:
                writer.add_custom_scalars(custom_scalars_layout([point.layer for point in points]))
                self._layout_written = True
            writer.add_text(POINTS_TAG, points_table(points), global_step=epoch)
            if self.log_figure:
                writer.add_figure(FIGURE_TAG, self.history.figure(), global_step=epoch, close=True)
        if self._log_dir is not None:
            self.history.write(self._log_dir, settings=self.settings())
