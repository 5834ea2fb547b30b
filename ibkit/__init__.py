"""ibkit: Information Bottleneck analysis for PyTorch Lightning.

Entropy and mutual-information estimators (nats, with standard errors), compressors, synthetic
data with known MI and the information-plane callback (``ibkit.callbacks``).
"""

from ibkit.estimators import entropy, mutual_information
from ibkit.result import Estimate

__version__ = "0.1.0"

__all__ = ["Estimate", "entropy", "mutual_information", "__version__"]
