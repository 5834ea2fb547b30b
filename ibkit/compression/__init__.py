"""Compressors: learned maps from high-dimensional samples to low-dimensional codes.

Mutual information between high-dimensional variables is estimated by compressing each to a
few dimensions first (Butakov et al., ICLR 2024). Compressors are applied explicitly,
scikit-learn style::

    from ibkit.compression import PCA, AutoencoderCompressor
    codes = PCA(4).fit_transform(layer_outputs)            # (N, 4) on the input's device
    x_codes = AutoencoderCompressor(4, max_epochs=100).fit_transform(images)
    ibkit.mutual_information(x_codes, codes)

All share the :class:`Compressor` interface: ``fit(x) -> self``, ``transform(x)``,
``fit_transform(x)``, ``n_components`` (requested) and ``n_components_`` (produced).
"""

from ibkit.compression.autoencoder import AutoencoderCompressor, AutoencoderModule
from ibkit.compression.base import Compressor
from ibkit.compression.networks import conv_autoencoder, mlp_autoencoder
from ibkit.compression.pca import PCA

__all__ = [
    "PCA",
    "AutoencoderCompressor",
    "AutoencoderModule",
    "Compressor",
    "conv_autoencoder",
    "mlp_autoencoder",
]
