"""Downstream quality of an embedding: classification probes and clustering scores (scikit-learn).

Probes are fitted on training embeddings and scored on held-out ones, so they measure how much
label information the embedding keeps in an easily decodable form:

* ``"logistic"``: multinomial logistic regression on standardised embeddings (a linear probe);
* ``"knn"``: k-nearest-neighbour vote (k = 5) on the raw embeddings;
* ``"mlp"``: a one-hidden-layer MLP (100 units, L2 penalty ``alpha = 1``) on standardised embeddings.

Clustering scores compare the embedding's geometry with the label partition: silhouette (higher
is better, in [−1, 1]), Davies–Bouldin (lower is better) and Calinski–Harabasz (higher is better).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ibkit.validation import as_labels, as_samples, check_same_length

PROBES = ("logistic", "knn", "mlp")


def make_probe(name: str, seed: int = 0) -> Any:
    """An unfitted scikit-learn classifier for probe ``name`` (``"logistic"``, ``"knn"``, ``"mlp"``)."""
    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if name == "knn":
        return KNeighborsClassifier(n_neighbors=5)
    if name == "mlp":
        return make_pipeline(StandardScaler(), MLPClassifier(alpha=1.0, max_iter=1000, random_state=seed))
    raise ValueError(f"unknown probe {name!r}; valid probes are {', '.join(PROBES)}")


def _embedding_and_labels(x: Any, y: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    samples = as_samples(x, name, device="cpu")
    labels = as_labels(y, f"{name} labels", device="cpu")
    check_same_length(samples, labels, name, f"{name} labels")
    return samples.numpy(), labels.numpy()


def _label_array(y: Any) -> np.ndarray:
    return y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)


def probe_accuracies(train_x: Any, train_y: Any, test_x: Any, test_y: Any,
                     probes: tuple[str, ...] = PROBES, seed: int = 0) -> dict[str, float]:
    """Test accuracy of classifiers fitted on ``(train_x, train_y)``, scored on ``(test_x, test_y)``.

    Args:
        train_x, test_x: embeddings ``(N, d)``, numpy or torch.
        train_y, test_y: class labels ``(N,)``, the same label values on both sides.
        probes: names from :data:`PROBES`.
        seed: seeds the MLP's initialisation.

    Returns:
        ``{probe name: accuracy in [0, 1]}``.

    Raises:
        ValueError: an unknown probe, mismatched lengths, NaN/inf, or fewer than 2 classes.
    """
    for name in probes:
        make_probe(name)  # validates every name before any fitting
    train_samples = as_samples(train_x, "train_x", device="cpu").numpy()
    test_samples = as_samples(test_x, "test_x", device="cpu").numpy()
    train_labels, test_labels = _label_array(train_y), _label_array(test_y)
    if train_labels.shape != (train_samples.shape[0],) or test_labels.shape != (test_samples.shape[0],):
        raise ValueError(f"labels must have shape (N,) matching the embeddings: train {train_samples.shape} vs "
                         f"{train_labels.shape}, test {test_samples.shape} vs {test_labels.shape}")
    if np.unique(train_labels).size < 2:
        raise ValueError("train_y must contain at least 2 classes to fit a probe")
    return {name: float(make_probe(name, seed).fit(train_samples, train_labels).score(test_samples, test_labels))
            for name in probes}


def clustering_scores(x: Any, labels: Any) -> dict[str, float]:
    """Silhouette, Davies–Bouldin and Calinski–Harabasz scores of the label partition of ``x (N, d)``.

    Raises:
        ValueError: mismatched lengths, NaN/inf, or a number of classes outside ``[2, N − 1]``.
    """
    samples, codes = _embedding_and_labels(x, labels, "x")
    n_classes = np.unique(codes).size
    if not 2 <= n_classes <= samples.shape[0] - 1:
        raise ValueError(f"clustering scores need between 2 and N-1 classes, got {n_classes} for N={samples.shape[0]}")
    return {"silhouette": float(silhouette_score(samples, codes)),
            "davies_bouldin": float(davies_bouldin_score(samples, codes)),
            "calinski_harabasz": float(calinski_harabasz_score(samples, codes))}
