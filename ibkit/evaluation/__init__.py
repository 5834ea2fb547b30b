"""Evaluation of embeddings: distribution matching against a prior and downstream quality.

Works on any embedding ``(N, d)`` (numpy or torch): normality and uniformity tests averaged over
random subsamples (:mod:`ibkit.evaluation.normality`), linear/kNN/MLP probes and clustering
scores (:mod:`ibkit.evaluation.downstream`), or everything at once with :func:`evaluate_embedding`.
"""

from ibkit.evaluation.downstream import PROBES, clustering_scores, make_probe, probe_accuracies
from ibkit.evaluation.embedding import evaluate_embedding
from ibkit.evaluation.normality import (
    NORMALITY_TESTS,
    HenzeZirklerResult,
    henze_zirkler,
    henze_zirkler_null_moments,
    henze_zirkler_pvalue,
    normality_pvalues,
    uniformity_pvalues,
)

__all__ = [
    "NORMALITY_TESTS",
    "PROBES",
    "HenzeZirklerResult",
    "clustering_scores",
    "evaluate_embedding",
    "henze_zirkler",
    "henze_zirkler_null_moments",
    "henze_zirkler_pvalue",
    "make_probe",
    "normality_pvalues",
    "probe_accuracies",
    "uniformity_pvalues",
]
