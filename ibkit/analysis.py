"""The information-plane analysis as plain objects: capture, compress, estimate — no Trainer.

:class:`InformationPlaneAnalysis` holds a fixed probe ``(x, y)`` and turns a network's layer
outputs into plane points ``(I(X;L), I(Y;L))`` with standard errors, following Butakov et al.
(ICLR 2024): the probe inputs are compressed once (an autoencoder or PCA), every layer afresh
(PCA, refitted on each call), and the mutual information between the codes is estimated with
any ibkit estimator, in nats. Use it from a notebook::

    analysis = InformationPlaneAnalysis(x_probe, y_probe, x_compressor="pca")
    points = analysis.analyse(model, epoch=0)            # capture + compress + estimate
    analysis.history.figure()                            # the plane of every analysed epoch

``ibkit.callbacks.InformationPlane`` is the same analysis driven by a Lightning ``Trainer``.

What keeps the plane truthful (each rule is tested on stochastic layers whose MI is known,
``ibkit.synthetic.layers``):

- **Compression keeps what it can.** Each layer first gets an injective per-unit transform
  (``layer_transform``, see ``ibkit.compression.units``: normal scores per unit, the log-ratio
  of probability layers), and only a layer with more than ``layer_dims`` units is compressed;
  one that fits is never rotated. The probe inputs get the same treatment before PCA.
- **One estimator per curve.** The method of a layer's first estimate of each quantity (the
  configured estimator, or its KSG fallback for degenerate data) is kept for the whole run,
  checkpoint resumes included, and recorded with every point.
- **Lower bounds are said so.** An estimate above log N nats, more than N samples resolve, is
  recorded as the lower bound log N (``*_censored``); with ``chain=True`` a point below a deeper
  layer's by more than 2 SE, which the data-processing inequality forbids, is flagged as
  compression loss (``*_compression_loss``). Both are drawn as hollow markers with an arrow.

A layer whose compression or estimate fails (NaN activations, a constant layer, too few
samples) becomes a ``UserWarning`` and a gap (NaN in the history with the reason in
``*_error``, no point in the plot); ``strict=True`` raises instead. The estimators' warnings
about a layer's data (degenerate samples, a fallback) are passed on once per layer and kind, not
every epoch.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ibkit.capture import LayerRecorder, Selector, capture_activations, capture_seed
from ibkit.compression import PCA, AutoencoderCompressor, Compressor
from ibkit.compression.units import check_unit_transform, is_log_probability, is_probability, unit_codes
from ibkit.estimators import DEFAULT_METHOD, MutualInformationEstimator, collect_warnings, epochs_estimator
from ibkit.estimators.base import label_entropy_terms
from ibkit.estimators.plane import InformationPlaneEstimator
from ibkit.history import QUANTITIES, EpochTiming, InformationPlaneHistory, PlanePoint
from ibkit.result import Estimate
from ibkit.validation import as_labels, check_positive_int, check_same_length

#: Errors that mean "these data cannot be estimated" (NaN activations, a constant layer, too few
#: samples, an implausible estimate): a layer's gap, with a warning, unless ``strict``. Any other
#: error (a bug, CUDA out of memory) is a gap too while the other layers are estimated, and is
#: then raised at the end of the epoch, after the history is recorded.
DATA_ERRORS = (ValueError,)
#: Code size per layer. The paper compressed to 4; measured on the MNIST main job (8 epochs,
#: probe N = 3,000), 6 keeps most of what 4 loses: I(Y; probs) 2.19 ± 0.02 nats against the
#: floor 2.16 its own predictions give (2.08 at 4: below it), and I(Y; L1) 1.97 against I(Y; L4)
#: 2.19 (1.48 against 2.02 at 4), while the known-truth plane battery stays within its targets
#: (``ibkit bench plane``: 228/234 resolved points at 6, 230/234 at 4).
DEFAULT_LAYER_DIMS = 6
#: A layer's estimate is compression loss when a deeper layer's exceeds it by this many
#: standard errors of their difference.
DPI_STDERRS = 2.0

Activations = Mapping[str, "torch.Tensor | Exception"]


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
            than ``DPI_STDERRS`` standard errors is flagged as compression loss. ``False`` for
            layers that are not a chain.
        strict: raise the first failure at once, data errors included, instead of recording a gap.
        seed: seeds the autoencoder and the capture-time noise.
        history: the history to record into (default: a new one, :attr:`history`).
        threads: layers compressed and estimated at once, in threads (the neighbour searches
            and tensor operations release the GIL); default ``torch.get_num_threads()`` on the CPU, one on an accelerator. The
            values do not depend on it.

    Attributes:
        history: every analysed epoch's points and timings.
        x_compression_s: seconds the one-off compression of the probe inputs took.
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
        history: InformationPlaneHistory | None = None,
        threads: int | None = None,
    ):
        check_compression(x_compressor, x_dims, x_transform, layer_compressor, layer_dims, layer_transform)
        self.x = None if x is None else torch.as_tensor(x)
        self.y = torch.as_tensor(y)
        if self.x is not None and self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"probe x and y must have the same length, got {self.x.shape[0]} and {self.y.shape[0]}")
        self.estimator = epochs_estimator(estimator)
        self.x_compressor = x_compressor
        self.x_dims = x_dims
        self.x_transform = x_transform
        self.layer_compressor = layer_compressor
        self.layer_dims = layer_dims
        self.layer_transform = dict(layer_transform) if isinstance(layer_transform, Mapping) else layer_transform
        self.chain = chain
        self.strict = strict
        self.seed = seed
        self.threads = None if threads is None else check_positive_int(threads, "threads")
        self.history = history if history is not None else InformationPlaneHistory()
        self.x_compression_s: float | None = None
        self._x_codes: torch.Tensor | None = None
        self._x_failed = False
        self._plane: InformationPlaneEstimator | None = None
        self._warned: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ the three steps
    def capture(self, model: nn.Module, layers: Sequence[str] | None = None, *,
                select: Selector | Mapping[str, Selector] | None = None, batch_size: int = 1024,
                noise_on: bool = True, epoch: int = 0) -> dict[str, torch.Tensor | Exception]:
        """Run the probe through ``model`` once and record ``layers`` (see ``ibkit.capture``).

        Returns:
            ``layer -> (N, features)`` outputs, or the error that layer raised.
        """
        recorder = LayerRecorder.for_module(model, layers, select)
        if self.x is None:
            raise ValueError("this analysis has no probe inputs x to run through the model")
        return capture_activations(model, recorder, self.x, batch_size=batch_size,
                                   noise_on=noise_on, seed=capture_seed(self.seed, epoch, 0))

    def estimate(self, activations: Activations, epoch: int, capture_s: float = 0.0,
                 device: torch.device | str | None = None) -> list[PlanePoint]:
        """Compress and estimate every layer, record the epoch in :attr:`history`; one point per layer.

        Args:
            activations: ``layer -> (N, features)`` outputs (or an error, recorded as a gap).
            epoch: the epoch the points belong to.
            capture_s: seconds the capture took, kept in the epoch's timing.
            device: where to compress and estimate (default: the activations' device).

        Raises:
            Exception: with ``strict``, the first failure; otherwise the first failure that is not a
                data error (:data:`DATA_ERRORS`), after every layer is done and the epoch recorded.
        """
        self._failures: list[BaseException] = []
        device = device or _device_of(activations)
        # Threads share the CPU's cores; an accelerator runs one layer's kernels at a time anyway
        # (and some of torch's CUDA libraries must not be first loaded from two threads at once).
        threads = (self.threads or torch.get_num_threads()) if device is None or torch.device(device).type == "cpu" else 1
        with ThreadPoolExecutor(max(1, min(len(activations), threads)), thread_name_prefix="ibkit-plane") as pool:
            started = time.perf_counter()
            codes = dict(zip(activations, pool.map(lambda item: self._layer_codes(*item, device),
                                                   activations.items())))
            compression_s = time.perf_counter() - started

            started = time.perf_counter()
            plane = self._plane_estimator(device, epoch)
            methods = self.history.methods()
            points = list(tqdm(pool.map(lambda item: self._point(plane, epoch, *item, methods), codes.items()),
                               desc=f"information plane, epoch {epoch}", total=len(codes), leave=False,
                               disable=None, file=sys.stderr))
        if self.chain:
            points = flag_compression_loss(points)
        estimation_s = time.perf_counter() - started
        self.history.record(points, EpochTiming(epoch, capture_s, compression_s, estimation_s))
        if self._failures:
            raise self._failures[0]
        return points

    def analyse(self, model: nn.Module, epoch: int = 0, layers: Sequence[str] | None = None,
                **capture_kwargs: Any) -> list[PlanePoint]:
        """:meth:`capture` then :meth:`estimate`: the plane points of ``model``'s layers now."""
        started = time.perf_counter()
        activations = self.capture(model, layers, epoch=epoch, **capture_kwargs)
        return self.estimate(activations, epoch, capture_s=time.perf_counter() - started)

    # ------------------------------------------------------------------ internals
    def x_codes(self, device: torch.device | str | None = None) -> torch.Tensor | None:
        """Probe codes ``(N, x_dims)``, computed once; ``None`` if the inputs are skipped or failed."""
        if self.x is None or self._x_failed:
            return None
        if self._x_codes is None:
            started = time.perf_counter()
            try:
                x = self.x if device is None else self.x.to(device)
                if self.x_compressor in (None, "pca"):
                    codes = unit_codes(x, self.x_dims, self.x_transform, None if self.x_compressor is None else PCA)
                else:
                    codes = self._x_compressor(device).fit_transform(x)
                self._x_codes = torch.as_tensor(codes).detach().flatten(1).to(device or x.device)
            except DATA_ERRORS as error:
                if self.strict:
                    raise
                self._x_failed = True
                warnings.warn(f"InformationPlane: compressing the probe inputs failed ({error}); "
                              "I(X;L) is left out of every epoch", UserWarning, stacklevel=3)
            self.x_compression_s = time.perf_counter() - started
        return self._x_codes

    def _x_compressor(self, device: torch.device | str | None) -> Any:
        """The X compressor object (an autoencoder or the user's); a named autoencoder trains on ``device``."""
        if self.x_compressor == "autoencoder":
            return AutoencoderCompressor(self.x_dims, seed=self.seed, device=device)
        return self.x_compressor

    def _plane_estimator(self, device: torch.device | str | None, epoch: int) -> InformationPlaneEstimator:
        """The estimator of both MIs, built once: it keeps H(X) across layers and epochs."""
        if self._plane is None:
            x_codes = self.x_codes(device)
            labels = self.y.to(device) if device is not None else self.y
            with self._warnings_once("x", epoch):
                try:
                    self._plane = InformationPlaneEstimator(x_codes, labels, self.estimator)
                except DATA_ERRORS as error:
                    if self.strict or x_codes is None:
                        raise
                    warnings.warn(f"InformationPlane: the probe codes are unusable ({error}); I(X;L) is left "
                                  "out of every epoch", UserWarning, stacklevel=2)
                    self._plane = InformationPlaneEstimator(None, labels, self.estimator)
        return self._plane

    def _layer_codes(self, layer: str, activations: torch.Tensor | Exception,
                     device: torch.device | str | None) -> torch.Tensor | BaseException:
        """``(N, units)`` layer outputs -> ``(N, ≤ layer_dims)`` codes (see ``unit_codes``), or the error."""
        if isinstance(activations, Exception):
            return activations
        try:
            activations = activations.to(device) if device is not None else activations
            n_bad = int((~torch.isfinite(activations)).any(dim=1).sum())
            if n_bad:
                raise ValueError(f"{n_bad} of {activations.shape[0]} samples have NaN or inf activations")
            transform = self.layer_transform.get(layer, "auto") if isinstance(self.layer_transform, dict) \
                else self.layer_transform
            compressor = PCA if self.layer_compressor == "pca" else self.layer_compressor
            return unit_codes(activations, self.layer_dims, transform, compressor)
        except Exception as error:  # a gap now; _gap decides whether it is raised
            return error

    def _point(self, plane: InformationPlaneEstimator, epoch: int, layer: str, code: torch.Tensor | BaseException,
               methods: Mapping[tuple[str, str], str]) -> PlanePoint:
        """One layer's estimates: NaN with its reason where a step failed (a warning, or an error when
        strict), the curve's method kept, values above log N censored to that lower bound."""
        fields: dict[str, Any] = {}
        for quantity in QUANTITIES:
            fields.update({quantity: math.nan, f"{quantity}_stderr": math.nan})
        if isinstance(code, BaseException):
            self._gap(epoch, layer, "capture or compression", code)
            return PlanePoint(epoch=epoch, layer=layer, I_XL_error=str(code), I_YL_error=str(code), **fields)
        estimators = {"I_XL": plane.i_xl if plane.x is not None else None, "I_YL": plane.i_yl}
        with self._warnings_once(layer, epoch):
            for quantity, estimate_of in estimators.items():
                if estimate_of is None:
                    continue
                try:
                    estimate = estimate_of(code, layer, method=methods.get((layer, quantity)))
                except Exception as error:  # a gap now; _gap decides whether it is raised
                    self._gap(epoch, layer, QUANTITIES[quantity], error)
                    fields[f"{quantity}_error"] = str(error)
                    continue
                limit = resolution_limit(estimate.n)
                fields.update({quantity: min(estimate.value, limit), f"{quantity}_stderr": estimate.stderr,
                               f"{quantity}_method": estimate.method, f"{quantity}_censored": estimate.value > limit})
        return PlanePoint(epoch=epoch, layer=layer, **fields)

    def _gap(self, epoch: int, layer: str, what: str, error: BaseException) -> None:
        """Record a failed step as a gap with a warning; raise at once if strict, and keep any error
        other than a data error to raise at the end of the epoch."""
        if self.strict:
            raise error
        if not isinstance(error, DATA_ERRORS):
            self._failures.append(error)
        warnings.warn(f"InformationPlane: {what} for layer {layer!r} at epoch {epoch} failed ({error}); "
                      "recorded as a gap", UserWarning, stacklevel=4)

    @contextmanager
    def _warnings_once(self, scope: str, epoch: int) -> Iterator[None]:
        """Pass on the estimators' warnings about ``scope`` (a layer or ``"x"``), each kind once.

        The warnings are gathered by ``collect_warnings``, which leaves the process's warning
        filters alone (other threads and the training loop are unaffected).
        """
        with collect_warnings() as caught:
            yield
        for message in caught:
            if (scope, message.kind) in self._warned:
                continue
            self._warned.add((scope, message.kind))
            warnings.warn(type(message)(f"InformationPlane, epoch {epoch}, {scope!r} (reported once): {message}",
                                        message.variable, message.kind), stacklevel=4)

    def settings(self) -> dict[str, Any]:
        """The analysis settings, as written to ``information_plane.json``."""
        return {
            "probe_size": int(self.y.shape[0]),
            "estimator": self.estimator.settings(),
            "x_compressor": repr(self.x_compressor), "x_dims": self.x_dims, "x_transform": self.x_transform,
            "layer_compressor": repr(self.layer_compressor), "layer_dims": self.layer_dims,
            "layer_transform": self.layer_transform, "chain": self.chain,
            "seed": self.seed, "units": "nats", "x_compression_s": self.x_compression_s,
        }


def check_compression(x_compressor: Any, x_dims: int = 4, x_transform: str = "auto", layer_compressor: Any = "pca",
                      layer_dims: int = DEFAULT_LAYER_DIMS, layer_transform: str | Mapping[str, str] = "auto") -> None:
    """``ValueError`` for compression settings :class:`InformationPlaneAnalysis` does not take.

    ``x_compressor``: ``"pca"``, ``"autoencoder"``, ``None`` or an object with ``fit_transform``;
    ``layer_compressor``: ``"pca"``, a factory or ``None``; the dims: positive integers; the
    transforms: names from ``ibkit.compression.units.UNIT_TRANSFORMS`` (``x_transform`` other than
    ``"auto"``/``"none"`` only before ``"pca"`` or no compression).
    """
    check_positive_int(x_dims, "x_dims")
    check_positive_int(layer_dims, "layer_dims")
    if x_compressor not in (None, "pca", "autoencoder") and not hasattr(x_compressor, "fit_transform"):
        raise ValueError(f"x_compressor must be 'pca', 'autoencoder', None or an object with fit_transform, "
                         f"got {x_compressor!r}")
    if layer_compressor is not None and layer_compressor != "pca" and not callable(layer_compressor):
        raise ValueError(f"layer_compressor must be 'pca', a factory n_components -> compressor or None, "
                         f"got {layer_compressor!r}")
    check_unit_transform(x_transform)
    if x_compressor not in (None, "pca") and x_transform not in ("auto", "none"):
        raise ValueError(f"x_transform={x_transform!r} applies before 'pca' or no compression; an autoencoder "
                         "or compressor object takes the inputs as they are (x_transform='auto' or 'none')")
    for transform in (layer_transform.values() if isinstance(layer_transform, Mapping) else [layer_transform]):
        check_unit_transform(transform)


def resolution_limit(n: int) -> float:
    """``log N`` nats: above it an estimate from N samples is reported as a lower bound (censored).

    N samples can tell apart at most about N distinct values of one variable given the other, so
    no non-parametric estimate resolves more than ``log N`` nats of dependence; what an estimator
    reads beyond it rests on its bias model, not on the sample.
    """
    return math.log(max(n, 2))


def flag_compression_loss(points: Sequence[PlanePoint]) -> list[PlanePoint]:
    """``points`` (one epoch, layers in chain order) with the data-processing violations flagged.

    For a chain ``X → L1 → L2 → …`` both ``I(X; L_i)`` and ``I(Y; L_i)`` are non-increasing in
    ``i``. A layer's finite, uncensored estimate more than ``DPI_STDERRS`` standard errors (of the
    difference) below a deeper layer's can only come from information lost in compressing it,
    so it is flagged (``*_compression_loss``) as a lower bound.
    """
    flagged = list(points)
    for quantity in QUANTITIES:
        for i, point in enumerate(flagged):
            value, stderr = getattr(point, quantity), getattr(point, f"{quantity}_stderr")
            if not math.isfinite(value) or getattr(point, f"{quantity}_censored"):
                continue
            for deeper in points[i + 1:]:
                gap = getattr(deeper, quantity) - value
                if gap > DPI_STDERRS * math.hypot(stderr, getattr(deeper, f"{quantity}_stderr")):
                    flagged[i] = dataclasses.replace(flagged[i], **{f"{quantity}_compression_loss": True})
                    break
    return flagged


def _device_of(activations: Activations) -> torch.device | None:
    return next((value.device for value in activations.values() if isinstance(value, torch.Tensor)), None)


def prediction_floor(probabilities: Any, labels: Any) -> Estimate:
    """``H(Y) − CE``: the lower bound on ``I(Y; L)`` that a layer's own class probabilities give.

    Any predictor ``q(y | l)`` bounds ``I(Y; L) ≥ H(Y) − E[−log q(Y | L)]`` (Barber & Agakov,
    2003), and a classifier's softmax output ``L`` is one for itself. An estimate of ``I(Y; L)``
    for the output layer that sits below this floor by more than a few standard errors is an
    estimator or compression artefact, not a property of the network.

    Args:
        probabilities: ``(N, C)`` class probabilities (rows on the simplex) or log-probabilities.
        labels: ``(N,)`` integer labels in ``0..C−1``.

    Returns:
        The floor in nats with the standard error of its per-sample terms
        ``log q(y_i | l_i) − log p̂(y_i)`` (independent given the label frequencies).
    """
    values = torch.as_tensor(probabilities).detach().to(torch.float64).flatten(1)
    codes = as_labels(labels, "labels", values.device)  # validated; codes 0..K−1 for the frequencies
    classes = torch.as_tensor(labels).to(values.device).long().reshape(-1)
    check_same_length(values, classes, "probabilities", "labels")
    if is_log_probability(values):
        log_q = values
    elif is_probability(values):
        log_q = values.clamp_min(torch.finfo(torch.float64).tiny).log()
    else:
        raise ValueError("probabilities must be rows of class probabilities or log-probabilities")
    if int(classes.min()) < 0 or int(classes.max()) >= values.shape[1]:
        raise ValueError(f"labels must be class indices in 0..{values.shape[1] - 1}, one per probability column")
    terms = log_q.gather(1, classes[:, None]).squeeze(1) + label_entropy_terms(codes)
    return Estimate.from_terms(terms, "prediction")
