"""``InformationPlane``: :class:`ibkit.analysis.InformationPlaneAnalysis` driven by a Trainer.

The Lightning glue around the analysis: when to analyse (:mod:`.schedule`), the capture on every
process (:mod:`.distributed`), the background queue (:mod:`.background`), logging (:mod:`.plane_logger`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback

from ibkit.analysis import InformationPlaneAnalysis
from ibkit.callbacks.background import WHEN_FULL, EpochQueue, analysis_job, queued_from_state
from ibkit.callbacks.distributed import capture_on_every_rank, raise_on_every_rank, run_probe
from ibkit.callbacks.epoch_metric import EpochMetric
from ibkit.callbacks.plane_logger import PlaneLogger
from ibkit.callbacks.schedule import EpochSchedule, closes_epoch
from ibkit.capture import LayerRecorder, Selector
from ibkit.compression import Compressor
from ibkit.errors import Failure
from ibkit.estimators import DEFAULT_METHOD, MutualInformationEstimator
from ibkit.history import InformationPlaneHistory
from ibkit.plane_config import DEFAULT_LAYER_DIMS, PlaneConfig
from ibkit.validation import check_choice, check_positive_int


class InformationPlane(Callback):
    """Information-plane analysis of any ``LightningModule`` while it trains.

    After each scheduled epoch (training and closing validation done, before its checkpoint) the
    probe runs once through the module in eval mode with noise layers on (``noise_on``); forward
    hooks that exist only for that pass record the layers (under DDP each process runs its shard,
    gathered on rank 0). Rank 0 compresses and estimates them
    (:class:`~ibkit.analysis.InformationPlaneAnalysis`) and logs scalars ``ib/<layer>/I_XL``,
    ``ib/<layer>/I_YL`` (their ``_stderr``, ``_lower``/``_upper`` ±2 SE as ``ib_band/...``) and ``ib/time/*``, to
    TensorBoard the figures, a custom-scalars layout and a table of the points (``ib/points``), and
    rewrites ``information_plane.csv``/``.json``; the history is saved in checkpoints. Data that
    cannot be estimated (:class:`~ibkit.errors.DataError`) is a warning and a gap; any other error
    is raised once the epoch is logged, on every rank.

    Args:
        layers: module names as in ``pl_module.named_modules()``; default: the module's
            ``default_ib_layers`` attribute if present, else its top-level children.
        select: picks the tensor to analyse from a layer's output: a callable or a dict
            ``layer -> callable`` (default: the output, or its first tensor).
        probe: ``(x, y)`` tensors, a ``Dataset`` of ``(x, y, ...)`` or a ``DataLoader`` (default:
            ``trainer.datamodule.probe_tensors(probe_size)``, else a seeded subset of the
            validation dataset); ``y`` holds class indices. ``probe_size``: at most N samples.
        estimator, x_compressor, x_dims, x_transform, layer_compressor, layer_dims,
            layer_transform, chain, strict, seed, threads, readout_noise: the analysis settings
            (:class:`~ibkit.analysis.InformationPlaneAnalysis`); ``seed`` also seeds the probe
            subset and the capture-time noise.
        every_n_epochs, epochs: analyse epochs ``0, n, 2n, ...`` (default every one), or those listed.
        noise_on: keep the noise of ``ibkit.layers.NoiseLayer`` modules on during capture.
        batch_size, forward: probe samples per forward call ``forward(pl_module, x)`` (default
            ``pl_module(x)``) during capture. log_figure: log the plane figure every analysed epoch.
        asynchronous: compress and estimate in a background thread while training goes on (the
            loop waits only for the capture); points, the same values as without it, are logged
            when ready with their own epoch as the step. A checkpoint carries the activations of
            the epochs still queued and a resumed run estimates them first; the end of training
            waits for all.
        max_queued: with ``asynchronous``, the most epochs captured and not yet estimated, each
            holding its activations (``N × units × 4`` bytes); default ``None``: as many as 2 GiB
            hold (``background.QUEUE_BYTES``), at least one.
        when_full: when ``max_queued`` epochs wait: ``"wait"`` (the training loop waits for the
            oldest) or ``"skip"`` (the new epoch is not analysed: a warning and a gap).
        colour_metric: the per-layer figure colours each trajectory by the change of this metric
            since the previous analysed epoch: ``"loss"`` (the epoch's mean training loss, as in the
            paper), a logged metric's name, or ``None`` (by epoch).

    Attributes:
        history: every analysed epoch's points and timings (saved in checkpoints).
        blocked_s: ``epoch -> seconds`` the training loop waited for that epoch's analysis.

    Example:
        >>> import lightning as L
        >>> from ibkit import DigitsDataModule
        >>> from ibkit.callbacks import InformationPlane
        >>> from ibkit.models import MNISTClassifier
        >>> data = DigitsDataModule()
        >>> callback = InformationPlane(layers=["L4", "probs"], x_compressor="pca", log_figure=False)
        >>> trainer = L.Trainer(max_epochs=1, callbacks=[callback], logger=False, enable_checkpointing=False,
        ...                     enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(MNISTClassifier(input_shape=data.input_shape), datamodule=data)
        >>> [(point.layer, point.I_YL_method) for point in callback.history.points(0)]
        [('L4', 'wkl'), ('probs', 'wkl')]
    """

    def __init__(
        self, layers: Sequence[str] | None = None, *, select: Selector | Mapping[str, Selector] | None = None,
        probe: Any = None, probe_size: int = 10_000, estimator: str | MutualInformationEstimator = DEFAULT_METHOD,
        x_compressor: str | Compressor | None = "autoencoder", x_dims: int = 4, x_transform: str = "auto",
        layer_compressor: str | Callable[[int], Compressor] | None = "pca", layer_dims: int = DEFAULT_LAYER_DIMS,
        layer_transform: str | Mapping[str, str] = "auto", chain: bool = True, every_n_epochs: int | None = None,
        epochs: Sequence[int] | None = None, noise_on: bool = True, strict: bool = False, seed: int = 0,
        batch_size: int = 1024, forward: Callable[[LightningModule, torch.Tensor], Any] | None = None,
        log_figure: bool = True, asynchronous: bool = False, threads: int | None = None, max_queued: int | None = None,
        when_full: str = "wait", readout_noise: float | None = None, colour_metric: str | None = "loss",
    ):
        super().__init__()
        self.config = PlaneConfig(estimator=estimator, x_compressor=x_compressor, x_dims=x_dims,
                                  x_transform=x_transform, layer_compressor=layer_compressor, layer_dims=layer_dims,
                                  layer_transform=layer_transform, chain=chain, strict=strict, seed=seed,
                                  threads=threads, readout_noise=readout_noise)
        self.schedule = EpochSchedule(every_n_epochs, epochs)
        self.layer_names = None if layers is None else list(layers)
        self.select, self.probe, self.forward = select, probe, forward
        self.probe_size = check_positive_int(probe_size, "probe_size")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.noise_on, self.asynchronous = noise_on, asynchronous
        self.max_queued = None if max_queued is None else check_positive_int(max_queued, "max_queued")
        self.when_full = check_choice(when_full, "when_full", WHEN_FULL)
        self.history = InformationPlaneHistory()
        self.blocked_s: dict[int, float] = {}
        self.analysis: InformationPlaneAnalysis | None = None
        self._logger, self._metric = PlaneLogger(log_figure), EpochMetric(colour_metric)
        self._queue = EpochQueue(background=asynchronous)
        self._resumed: list[tuple[int, dict[str, torch.Tensor | Failure], float]] = []
        self._failure: BaseException | None = None
        self._recorder: LayerRecorder | None = None
        self._last_epoch: int | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(layers=self.layer_names)

    # ------------------------------------------------------------------ Lightning hooks, in call order
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Resolve the layers (``ValueError`` listing valid names on a typo) and the log directory."""
        if stage == "fit":
            self._recorder = LayerRecorder.for_module(pl_module, self.layer_names, self.select)
            self._logger.setup(trainer)
            self._last_epoch = self._failure = None  # a new fit starts clean

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history.load_state_dict(state_dict["history"])
        self._resumed = [queued_from_state(entry) for entry in state_dict.get("queued", [])]

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Redo the epochs a resumed checkpoint had still queued (rank 0 estimates them)."""
        resumed, self._resumed = self._resumed, []
        if trainer.is_global_zero:
            for epoch, activations, capture_s in resumed:
                self._estimate(trainer, pl_module, epoch, activations, capture_s)
        self._raise_failure(trainer)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, *args: Any) -> None:
        self._metric.update(outputs)
        if len(self._queue):
            self._log_finished(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if closes_epoch(trainer):
            self._epoch_done(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_done(trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        """The history, and the captured activations of the epochs still being estimated (on the
        CPU, float32, ``N × units × 4`` bytes per queued epoch), which a resumed run redoes."""
        pending = self._queue.pending()  # before the history: an epoch done in between is in both
        return {"history": self.history.state_dict(), "queued": [queued.state() for queued in pending]}

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Finish and log every queued epoch, then raise any failure on every rank."""
        self._log_finished(trainer, wait=True)
        self._close(cancel=False)
        self._raise_failure(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if self._recorder is not None:
            self._recorder.remove_hooks()
        self._close(cancel=True)

    # ------------------------------------------------------------------ the analysis of an epoch
    def is_scheduled(self, epoch: int) -> bool:
        """Whether ``epoch`` (0-based) is analysed."""
        return epoch in self.schedule

    def _epoch_done(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The one scheduling check: analyse the epoch that just ended, once, if it is scheduled."""
        epoch = trainer.current_epoch
        if self._last_epoch != epoch and epoch in self.schedule:
            self._last_epoch = epoch
            self.analyse_epoch(trainer, pl_module, epoch)

    def analyse_epoch(self, trainer: Trainer, pl_module: LightningModule, epoch: int) -> None:
        """Capture (all ranks), then estimate and log (rank 0, now or queued) the plane of ``epoch``;
        raise on every rank a failure of this or an earlier epoch."""
        if self._recorder is None:
            raise RuntimeError("InformationPlane.setup(stage='fit') must run before analyse_epoch")
        started = time.perf_counter()
        room = self._queue.make_room(epoch, self.max_queued, self.when_full) if trainer.is_global_zero else True
        if not trainer.strategy.broadcast(room, src=0):  # back-pressure: rank 0 decides for every rank
            return
        analysis = self._analysis(trainer)
        if trainer.is_global_zero:
            if self._metric.name:
                self.history.record_metric(epoch, self._metric.name, self._metric.value(trainer))
            analysis.warn_if_deterministic(pl_module, self._recorder, noise_on=self.noise_on, forward=self.forward)
        activations = capture_on_every_rank(trainer, pl_module, self._recorder, analysis.x, epoch=epoch,
                                            seed=self.config.seed, batch_size=self.batch_size,
                                            noise_on=self.noise_on, forward=self.forward)
        if trainer.is_global_zero:
            self._estimate(trainer, pl_module, epoch, activations, time.perf_counter() - started)
            self.blocked_s[epoch] = time.perf_counter() - started
            self._logger.log_blocked(trainer, epoch, self.blocked_s[epoch])
        self._raise_failure(trainer)

    def _estimate(self, trainer: Trainer, pl_module: LightningModule, epoch: int,
                  activations: dict[str, torch.Tensor | Failure], capture_s: float) -> None:
        """Compress, estimate and log one captured epoch (rank 0): now, or queued with ``asynchronous``."""
        job = functools.partial(analysis_job, self._analysis(trainer), epoch, activations, capture_s, pl_module.device)
        self._queue.submit(epoch, activations, capture_s, job)
        self._log_finished(trainer)

    def _log_finished(self, trainer: Trainer, wait: bool = False) -> None:
        """Log the epochs that are done (all of them with ``wait``), in epoch order; keep the first error."""
        for result in self._queue.finished(wait):
            self._logger.log(trainer, result, self.history, self.settings)
            error = result.error() if result.points else result.failures[0].exception()
            self._failure = self._failure or error

    def _raise_failure(self, trainer: Trainer) -> None:
        raise_on_every_rank(trainer, self._failure)

    def _close(self, cancel: bool) -> None:
        self._queue.close(cancel=cancel)
        if self.analysis is not None:
            self.analysis.close()

    def _analysis(self, trainer: Trainer) -> InformationPlaneAnalysis:
        """The analysis of this run's probe, built on first use (every rank holds the probe)."""
        if self.analysis is None:
            probe = run_probe(trainer, self.probe, self.probe_size, self.config.seed)
            self.analysis = InformationPlaneAnalysis.from_config(*probe, self.config, history=self.history)
        return self.analysis

    def settings(self) -> dict[str, Any]:
        """The analysis settings, as written to ``information_plane.json``."""
        analysis = self.analysis.settings() if self.analysis is not None else self.config.settings()
        layers = list(self._recorder.layers) if self._recorder else self.layer_names
        return {"layers": layers, **analysis, "noise_on": self.noise_on}
