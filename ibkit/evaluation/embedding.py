"""One call that scores an embedding against its prior and on its labels."""

from __future__ import annotations

from typing import Any

from ibkit.evaluation.downstream import PROBES, clustering_scores, probe_accuracies
from ibkit.evaluation.normality import normality_pvalues, uniformity_pvalues

PRIOR_TESTS = {"gaussian": normality_pvalues, "uniform": uniformity_pvalues}


def evaluate_embedding(train_x: Any, train_y: Any, test_x: Any, test_y: Any, prior: str = "gaussian",
                       n_subsamples: int = 1024, subsample_size: int = 64, probes: tuple[str, ...] = PROBES,
                       seed: int = 0) -> dict[str, float]:
    """Distribution-matching p-values, probe accuracies and clustering scores of an embedding.

    The prior tests and clustering scores use the held-out embedding ``test_x``; probes are fitted
    on ``train_x`` and scored on ``test_x``.

    Args:
        train_x, test_x: embeddings ``(N, d)``; train_y, test_y: class labels ``(N,)``.
        prior: ``"gaussian"`` (:func:`normality_pvalues`: keys ``pvalue_henze_zirkler``,
            ``pvalue_shapiro_wilk``, ``pvalue_dagostino_pearson``) or ``"uniform"``
            (:func:`uniformity_pvalues`: key ``pvalue_kolmogorov_smirnov``).
        n_subsamples, subsample_size: the subsampling of the prior tests.
        probes: probe names (keys ``accuracy_<probe>``).
        seed: seeds the subsamples and the probes.

    Returns:
        A flat ``{name: value}`` dict, also with ``silhouette``, ``davies_bouldin`` and
        ``calinski_harabasz``.
    """
    if prior not in PRIOR_TESTS:
        raise ValueError(f"unknown prior {prior!r}; valid priors are {', '.join(PRIOR_TESTS)}")
    pvalues = PRIOR_TESTS[prior](test_x, n_subsamples=n_subsamples, subsample_size=subsample_size, seed=seed)
    results = {f"pvalue_{name}": value for name, value in pvalues.items()}
    results.update({f"accuracy_{name}": value
                    for name, value in probe_accuracies(train_x, train_y, test_x, test_y, probes, seed).items()})
    results.update(clustering_scores(test_x, test_y))
    return results
