"""The information-plane analysis as plain objects: capture, compress, estimate — no Trainer.

:class:`InformationPlaneAnalysis` holds a fixed probe ``(x, y)`` and turns a network's layer
outputs into plane points ``(I(X;L), I(Y;L))`` with standard errors, following Butakov et al.
(ICLR 2024): the probe inputs are compressed once (an autoencoder or PCA), every layer afresh
(PCA, refitted on each call), and the mutual information between the codes is estimated with
any ibkit estimator, in nats. ``ibkit.callbacks.InformationPlane`` is the same analysis driven by
a Lightning ``Trainer``.

What keeps the plane truthful (each rule is tested on stochastic layers whose MI is known,
``ibkit.synthetic.layers``):

- **Compression keeps what it can.** Each layer first gets an injective per-unit transform
  (``layer_transform``, see ``ibkit.compression.units``: normal scores per unit, the log-ratio
  of probability layers), and only a layer with more than ``layer_dims`` units is compressed;
  one that fits is never rotated. The probe inputs get the same treatment before PCA.
- **One estimator per curve.** The method of a layer's first estimate of each quantity (the
  configured estimator, or its KSG fallback for degenerate data) is kept for the whole run,
  checkpoint resumes included, and recorded with every point.
- **Bounds are said so** (``ibkit.bounds``). An estimate above log N nats, more than N samples
  resolve, is recorded as the lower bound log N (``*_censored``); an I(Y;L) above the probe's
  label entropy H(Y) as the upper bound H(Y) (``*_capped``); one below 0 beyond 2 SE as the lower
  bound 0 (``*_negative``); with ``chain=True`` a point below a deeper layer's by more than 2 SE,
  which the data-processing inequality forbids, is flagged as compression loss
  (``*_compression_loss``). Each is drawn as a hollow marker with an arrow.
- **Phases are tested.** The change of each curve since its previous analysed epoch gets a paired
  standard error (the same probe and blocks, ``*_change_stderr``) and is marked ``up`` or
  ``down`` (``*_trend``) beyond ``ibkit.bounds.TREND_STDERRS`` of it.

A layer whose data cannot be estimated (a :class:`~ibkit.errors.DataError`: NaN activations, a
constant layer, too few samples) becomes a warning (an ``EstimateWarning``, kind ``"gap"``) and a gap (NaN in the history with the
reason in ``*_error``, no point in the plot); ``strict=True`` raises instead. Any other error is
a gap too while the epoch's other layers are estimated, and is returned in the epoch's
:class:`~ibkit.history.EpochResult` for the caller to raise. The estimators' warnings about a
layer's data (degenerate samples, a fallback) are passed on once per layer and kind.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ibkit.bounds import bounded_fields, flag_compression_loss, label_entropy, resolution_limit, trend_fields
from ibkit.capture import LayerRecorder, Selector, capture_activations, capture_seed, is_stochastic
from ibkit.compression import PCA, AutoencoderCompressor, Compressor
from ibkit.compression.units import unit_codes
from ibkit.errors import DataError, Failure
from ibkit.estimators import DEFAULT_METHOD, MutualInformationEstimator, collect_warnings
from ibkit.estimators.diagnostics import EstimateWarning, report
from ibkit.estimators.plane import InformationPlaneEstimator
from ibkit.history import QUANTITIES, EpochResult, EpochTiming, InformationPlaneHistory, PlanePoint
from ibkit.layers import readout_noise
from ibkit.plane_config import DEFAULT_LAYER_DIMS, PlaneConfig
from ibkit.result import Estimate
from ibkit.threads import in_callers_context, one_thread_per_estimate

#: Layer outputs to analyse: ``layer -> (N, features)`` tensor, or why it could not be captured.
Activations = Mapping[str, "torch.Tensor | Failure"]
#: Probe samples captured twice to tell a stochastic network from a deterministic one.
STOCHASTIC_CHECK_SAMPLES = 8
DETERMINISTIC_NETWORK = (
    "InformationPlane: the recorded layers are deterministic functions of the input while they are captured "
    "(two captures of the same probe samples agree: no active noise layer). I(X;L) of a deterministic network "
    "with continuous inputs is not finite, so the I(X;L) values reflect the estimator and the compression (how "
    "the codes cluster), not information; I(Y;L) stays meaningful. To measure information, add noise layers "
    "(ibkit.layers.AdditiveGaussianNoise, kept on while recording by noise_on=True) or set readout_noise=σ, "
    "the plane of a noisy readout L + σ·s·ε of every layer (README: 'Deterministic networks').")


class InformationPlaneAnalysis:
    """I(X;L) and I(Y;L) of any layers on a fixed probe set, as plain objects.

    Args:
        x: ``(N, ...)`` probe inputs (images in their own shape) or ``None`` to skip I(X;L).
        y: ``(N,)`` integer class labels.
        estimator: MI method name for ``ibkit.mutual_information`` or an estimator object. A
            trained estimator given by name (``"mienf-tridiag"``, ``"mine"``, ...) is warm-started:
            each epoch's networks start from the previous epoch's (pass an object to choose).
        x_compressor: ``"autoencoder"`` (trained once on the probe inputs), ``"pca"``, an object
            with ``fit_transform(x) -> (N, x_dims)`` or ``None`` (raw flattened inputs).
        x_dims: code size of the X compressor built from a name; inputs with at most ``x_dims``
            features are never compressed.
        x_transform: unit transform of the inputs before ``"pca"`` or ``None``
            (``ibkit.compression.units``; ``"auto"``: normal scores per feature). An
            autoencoder or compressor object gets the inputs as they are (``"auto"`` or ``"none"``).
        layer_compressor: ``"pca"``, a factory ``n_components -> compressor`` (a fresh one is
            built and fitted on every call) or ``None`` (raw flattened layer outputs).
        layer_dims: code size per layer; a layer with at most this many units (after its unit
            transform) keeps them all, unrotated.
        layer_transform: unit transform of each layer before compression, one for all layers or
            ``layer -> transform`` (missing layers: ``"auto"``). ``"auto"``: the log-ratio for
            probability and log-probability layers, normal scores per unit otherwise;
            ``"normal-scores"``, ``"log-ratio"`` or ``"none"`` (PCA of the raw units).
        chain: the layers, in the order given, form a chain ``X → L1 → L2 → …`` (a sequential
            network), so neither MI may grow with depth; a point below a deeper layer's by more
            than ``ibkit.bounds.DPI_STDERRS`` standard errors is flagged as compression loss.
            ``False`` for layers that are not a chain.
        strict: raise the first failure at once, data errors included, instead of recording a gap.
        seed: seeds the autoencoder and the capture-time noise.
        threads: the size of the one pool of threads that transforms each layer's units in parallel
            chunks (layers are compressed one at a time, so that one transformed copy is held) and
            estimates layers in parallel (the sorts, neighbour searches and tensor operations
            release the GIL); default ``torch.get_num_threads()`` on the CPU, one on an
            accelerator. The values do not depend on it.
        readout_noise: ``σ > 0`` adds Gaussian noise to every layer before compression, each unit's
            scaled by its standard deviation on the probe (``ibkit.layers.readout_noise``, seeded
            by ``seed``, the epoch and the layer): the plane of the noisy readout ``L + σ·s·ε``,
            which is finite for a deterministic network. ``None`` (default): the layers as they are.
        history: the history to record into (default: a new one, :attr:`history`).

    Attributes:
        config: the validated settings (:class:`~ibkit.plane_config.PlaneConfig`).
        history: every analysed epoch's points and timings.
        x_compression_s: seconds the one-off compression of the probe inputs took.

    Example:
        >>> import torch
        >>> from ibkit import InformationPlaneAnalysis
        >>> generator = torch.Generator().manual_seed(0)
        >>> x = torch.randn(2_000, 3, generator=generator)
        >>> y = (x[:, 0] > 0).long()
        >>> layer = x + 0.1 * torch.randn(2_000, 3, generator=generator)  # a noisy copy of x
        >>> analysis = InformationPlaneAnalysis(x, y, x_compressor=None)
        >>> point = analysis.analyse_activations({"layer": layer}, epoch=0).points[0]
        >>> round(point.I_XL, 1)                     # truth: 3 × ½·log(1 + 1/0.1²) = 6.92 nats
        6.9
        >>> 0.5 < point.I_YL < 0.6931                # below H(Y) = log 2
        True
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        *,
        estimator: str | MutualInformationEstimator = DEFAULT_METHOD,
        x_compressor: str | Compressor | None = "autoencoder",
        x_dims: int = 4,
        x_transform: str = "auto",
        layer_compressor: str | Callable[[int], Compressor] | None = "pca",
        layer_dims: int = DEFAULT_LAYER_DIMS,
        layer_transform: str | Mapping[str, str] = "auto",
        chain: bool = True,
        strict: bool = False,
        seed: int = 0,
        threads: int | None = None,
        readout_noise: float | None = None,
        history: InformationPlaneHistory | None = None,
    ):
        config = PlaneConfig(estimator=estimator, x_compressor=x_compressor, x_dims=x_dims, x_transform=x_transform,
                             layer_compressor=layer_compressor, layer_dims=layer_dims,
                             layer_transform=layer_transform, chain=chain, strict=strict, seed=seed, threads=threads,
                             readout_noise=readout_noise)
        self._setup(x, y, config, history)

    @classmethod
    def from_config(cls, x: Any, y: Any, config: PlaneConfig,
                    history: InformationPlaneHistory | None = None) -> InformationPlaneAnalysis:
        """The analysis of probe ``(x, y)`` with settings validated before (the callback's)."""
        analysis = cls.__new__(cls)
        analysis._setup(x, y, config, history)
        return analysis

    def _setup(self, x: Any, y: Any, config: PlaneConfig, history: InformationPlaneHistory | None) -> None:
        self.config = config
        self.x = None if x is None else torch.as_tensor(x)
        self.y = torch.as_tensor(y)
        if self.x is not None and self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"probe x and y must have the same length, got {self.x.shape[0]} and {self.y.shape[0]}")
        self.history = history if history is not None else InformationPlaneHistory()
        self.history.references = {"label_entropy": label_entropy(self.y), "log_n": resolution_limit(self.y.shape[0])}
        self.x_compression_s: float | None = None
        self._x_codes: torch.Tensor | None = None
        self._plane: InformationPlaneEstimator | None = None
        self._warned: set[tuple[str, str]] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._checked_stochastic = False

    @property
    def estimator(self) -> MutualInformationEstimator:
        """The estimator of every point (``config.estimator``)."""
        return self.config.estimator

    # ------------------------------------------------------------------ the three steps
    def capture(self, model: nn.Module, layers: Sequence[str] | None = None, *,
                select: Selector | Mapping[str, Selector] | None = None, batch_size: int = 1024,
                noise_on: bool = True, epoch: int = 0) -> dict[str, torch.Tensor | Failure]:
        """Run the probe through ``model`` once and record ``layers`` (see ``ibkit.capture``).

        Returns:
            ``layer -> (N, features)`` outputs, or why that layer could not be recorded.
        """
        recorder = LayerRecorder.for_module(model, layers, select)
        if self.x is None:
            raise ValueError("this analysis has no probe inputs x to run through the model")
        self.warn_if_deterministic(model, recorder, noise_on=noise_on)
        return capture_activations(model, recorder, self.x, batch_size=batch_size,
                                   noise_on=noise_on, seed=capture_seed(self.config.seed, epoch, 0))

    def warn_if_deterministic(self, model: nn.Module, recorder: LayerRecorder, *, noise_on: bool,
                              forward: Callable[[nn.Module, torch.Tensor], Any] | None = None) -> None:
        """Once: warn when the recorded layers are deterministic functions of the probe inputs while
        captured (two captures of a few samples agree), and ``readout_noise`` is not set."""
        if self._checked_stochastic or self.config.readout_noise is not None or self.x is None:
            return
        self._checked_stochastic = True
        if not is_stochastic(model, recorder, self.x[:STOCHASTIC_CHECK_SAMPLES], noise_on=noise_on, forward=forward):
            warnings.warn(DETERMINISTIC_NETWORK, UserWarning, stacklevel=3)

    def analyse_activations(self, activations: Activations, epoch: int, capture_s: float = 0.0,
                            device: torch.device | str | None = None) -> EpochResult:
        """Compress and estimate every layer and record the epoch in :attr:`history`.

        Args:
            activations: ``layer -> (N, features)`` outputs (or a :class:`~ibkit.errors.Failure`,
                recorded as a gap).
            epoch: the epoch the points belong to.
            capture_s: seconds the capture took, kept in the epoch's timing.
            device: where to compress and estimate (default: the activations' device).

        Returns:
            The epoch's points (one per layer, in order), timing and failures. A failure that is
            not a data error is for the caller to raise (:meth:`EpochResult.error`).

        Raises:
            Exception: with ``strict``, the first failure, at once.
        """
        device = torch.device(device) if device is not None else _device_of(activations)
        pool = self._pool_of(self.config.threads_on(device))
        started = time.perf_counter()  # one layer at a time (one transformed copy in memory), each on the pool
        codes = {layer: self._layer_codes(layer, values, device, epoch, index, pool)
                 for index, (layer, values) in enumerate(activations.items())}
        compression_s = time.perf_counter() - started

        first_x_compression = self._plane is None
        started = time.perf_counter()
        plane = self._plane_estimator(device, epoch)
        methods = self.history.methods()
        with one_thread_per_estimate() if pool._max_workers > 1 else contextlib.nullcontext():  # layers share the cores
            estimate = in_callers_context(lambda item: self._point(plane, epoch, *item, methods))
        outcomes = list(tqdm(pool.map(estimate, codes.items()),
                             desc=f"information plane, epoch {epoch}", total=len(codes), leave=False,
                             disable=None, file=sys.stderr))
        x_compression_s = self.x_compression_s if first_x_compression else None
        estimation_s = time.perf_counter() - started - (x_compression_s or 0.0)
        points = [point for point, _, _ in outcomes]
        if self.config.chain:
            points = flag_compression_loss(points)
        timing = EpochTiming(epoch, capture_s, compression_s, estimation_s, x_compression_s)
        self.history.record(points, timing, {key: value for _, _, estimates in outcomes
                                             for key, value in estimates.items()})
        return EpochResult(points, timing, [failure for _, failures, _ in outcomes for failure in failures])

    def analyse(self, model: nn.Module, epoch: int = 0, layers: Sequence[str] | None = None,
                **capture_kwargs: Any) -> EpochResult:
        """:meth:`capture` then :meth:`analyse_activations`: the plane points of ``model``'s layers now."""
        started = time.perf_counter()
        activations = self.capture(model, layers, epoch=epoch, **capture_kwargs)
        return self.analyse_activations(activations, epoch, capture_s=time.perf_counter() - started)

    def settings(self) -> dict[str, Any]:
        """The analysis settings, as written to ``information_plane.json``."""
        return {"probe_size": int(self.y.shape[0]), **self.config.settings(), "x_compression_s": self.x_compression_s}

    def close(self) -> None:
        """Stop the threads of the layer pool (a later analysis starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    # ------------------------------------------------------------------ internals
    def _pool_of(self, threads: int) -> ThreadPoolExecutor:
        """The one pool of layer threads, sized for the device (kept from epoch to epoch)."""
        if self._pool is None or self._pool._max_workers != threads:
            self.close()
            self._pool = ThreadPoolExecutor(threads, thread_name_prefix="ibkit-plane")
            weakref.finalize(self, self._pool.shutdown, wait=False)
        return self._pool

    def x_codes(self, device: torch.device | None = None) -> torch.Tensor | None:
        """Probe codes ``(N, x_dims)``, computed once; ``None`` if the inputs are skipped or failed."""
        if self.x is None or self.x_compression_s is not None:
            return self._x_codes
        started = time.perf_counter()
        try:
            x = self.x if device is None else self.x.to(device)
            config = self.config
            if config.x_compressor in (None, "pca"):
                codes = unit_codes(x, config.x_dims, config.x_transform, None if config.x_compressor is None else PCA,
                                   self._pool)
            else:
                codes = self._x_compressor(device).fit_transform(x)
            self._x_codes = torch.as_tensor(codes).detach().flatten(1).to(device or x.device)
        except DataError as error:
            if self.config.strict:
                raise
            report(EstimateWarning(f"InformationPlane: compressing the probe inputs failed ({error}); "
                                   "I(X;L) is left out of every epoch", "x", "gap"))
        finally:
            self.x_compression_s = time.perf_counter() - started
        return self._x_codes

    def _x_compressor(self, device: torch.device | None) -> Any:
        """The X compressor object (an autoencoder or the user's); a named autoencoder trains on ``device``."""
        if self.config.x_compressor == "autoencoder":
            return AutoencoderCompressor(self.config.x_dims, seed=self.config.seed, device=device)
        return self.config.x_compressor

    def _plane_estimator(self, device: torch.device | None, epoch: int) -> InformationPlaneEstimator:
        """The estimator of both MIs, built once: it keeps H(X) across layers and epochs."""
        if self._plane is None:
            x_codes = self.x_codes(device)
            labels = self.y.to(device) if device is not None else self.y
            with self._warnings_once("x", epoch):
                try:
                    self._plane = InformationPlaneEstimator(x_codes, labels, self.estimator)
                except DataError as error:
                    if self.config.strict or x_codes is None:
                        raise
                    report(EstimateWarning(f"InformationPlane: the probe codes are unusable ({error}); I(X;L) is "
                                           "left out of every epoch", "x", "gap"))
                    self._plane = InformationPlaneEstimator(None, labels, self.estimator)
        return self._plane

    def _layer_codes(self, layer: str, activations: torch.Tensor | Failure, device: torch.device | None,
                     epoch: int, index: int, pool: ThreadPoolExecutor) -> torch.Tensor | Failure:
        """``(N, units)`` layer outputs -> ``(N, ≤ layer_dims)`` codes (see ``unit_codes``, its unit
        transform on ``pool``), or the failure; ``index``, the layer's position, seeds its readout noise."""
        if isinstance(activations, Failure):
            return activations
        try:
            activations = activations.to(device) if device is not None else activations
            check_finite(activations)
            if self.config.readout_noise is not None:
                generator = torch.Generator().manual_seed(capture_seed(self.config.seed, epoch, index))
                activations = readout_noise(activations.flatten(1), self.config.readout_noise, generator)
            compressor = PCA if self.config.layer_compressor == "pca" else self.config.layer_compressor
            return unit_codes(activations, self.config.layer_dims, self.config.transform_of(layer), compressor, pool)
        except Exception as error:  # a gap now; _gap decides whether it is raised
            if self.config.strict:
                raise
            return Failure.of("compression", error)

    def _point(self, plane: InformationPlaneEstimator, epoch: int, layer: str, code: torch.Tensor | Failure,
               methods: Mapping[tuple[str, str], str]) -> tuple[PlanePoint, list[Failure], dict[tuple[str, str], Estimate]]:
        """One layer's point, failures and raw estimates: NaN with its reason where a step failed (with a
        warning), the curve's method kept, a value beyond a bound recorded as that bound
        (``ibkit.bounds.bounded_fields``), the change since the previous epoch tested (``trend_fields``)."""
        fields: dict[str, Any] = {}
        for quantity in QUANTITIES:
            fields.update({quantity: math.nan, f"{quantity}_stderr": math.nan})
        if isinstance(code, Failure):
            self._warn_gap(epoch, layer, code)
            return PlanePoint(epoch=epoch, layer=layer, I_XL_error=code.message, I_YL_error=code.message,
                              **fields), [code], {}
        failures, estimates = [], {}
        estimators = {"I_XL": plane.i_xl if plane.x is not None else None, "I_YL": plane.i_yl}
        ceilings = {"I_XL": None, "I_YL": self.history.references["label_entropy"]}
        with self._warnings_once(layer, epoch):
            for quantity, estimate_of in estimators.items():
                if estimate_of is None:
                    continue
                try:
                    estimate = estimate_of(code, layer, method=methods.get((layer, quantity)))
                except Exception as error:
                    if self.config.strict:
                        raise
                    failures.append(Failure.of(QUANTITIES[quantity], error))
                    fields[f"{quantity}_error"] = failures[-1].message
                    continue
                estimates[(layer, quantity)] = estimate
                previous = self.history.previous(layer, quantity, epoch)
                fields |= bounded_fields(quantity, estimate, ceilings[quantity])
                fields |= trend_fields(quantity, previous, estimate, ceilings[quantity])
        for failure in failures:
            self._warn_gap(epoch, layer, failure)
        return PlanePoint(epoch=epoch, layer=layer, **fields), failures, estimates

    def _warn_gap(self, epoch: int, layer: str, failure: Failure) -> None:
        """Warn that a step failed, the first time it fails for this layer (later gaps are in the history)."""
        if (layer, f"gap {failure.step}") not in self._warned:
            self._warned.add((layer, f"gap {failure.step}"))
            report(EstimateWarning(f"InformationPlane: {failure.step} for layer {layer!r} at epoch {epoch} failed "
                                   f"({failure.message}); recorded as a gap (reported once)", layer, "gap"))

    @contextmanager
    def _warnings_once(self, scope: str, epoch: int) -> Iterator[None]:
        """Pass on the estimators' warnings about ``scope`` (a layer or ``"x"``), each kind once.

        The warnings are gathered by ``collect_warnings``, which leaves the process's warning
        filters alone (other threads and the training loop are unaffected), and passed on with
        ``report``: an enclosing ``collect_warnings`` (a benchmark's) gathers them in turn.
        """
        with collect_warnings() as caught:
            yield
        for message in caught:
            if (scope, message.kind) in self._warned:
                continue
            self._warned.add((scope, message.kind))
            report(type(message)(f"InformationPlane, epoch {epoch}, {scope!r} (reported once): {message}",
                                 message.variable, message.kind))


def check_finite(activations: torch.Tensor) -> None:
    """``DataError`` naming how many of the ``(N, ...)`` samples have a NaN or infinite activation.

    A finite sum means finite values (one reduction, no mask as large as a wide layer); only an
    infinite one (or an overflow of huge values) has the samples counted, a few rows at a time.
    """
    if bool(torch.isfinite(activations.sum())):
        return
    rows = max(1, 2**24 // max(activations[0].numel(), 1))
    n_bad = sum(int((~torch.isfinite(block.flatten(1))).any(dim=1).sum()) for block in activations.split(rows))
    if n_bad:
        raise DataError(f"{n_bad} of {activations.shape[0]} samples have NaN or inf activations")


def _device_of(activations: Activations) -> torch.device | None:
    return next((value.device for value in activations.values() if isinstance(value, torch.Tensor)), None)
