"""Lightning callbacks (installed as ``ibkit.callbacks``).

``InformationPlane`` tracks I(X;L) and I(Y;L) of chosen layers during training and logs the
information plane to TensorBoard, CSV and JSON. The analysis behind it, usable without a
Trainer, is ``ibkit.analysis.InformationPlaneAnalysis``; its history types are re-exported here.
"""

from ibkit.callbacks.information_plane import InformationPlane
from ibkit.history import EpochTiming, InformationPlaneHistory, PlanePoint

__all__ = ["EpochTiming", "InformationPlane", "InformationPlaneHistory", "PlanePoint"]
