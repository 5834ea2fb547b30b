"""Lightning callbacks (installed as ``ibkit.callbacks``).

``InformationPlane`` tracks I(X;L) and I(Y;L) of chosen layers during training and logs the
information plane to TensorBoard, CSV and JSON.
"""

from ibkit.callbacks.history import EpochTiming, InformationPlaneHistory, PlanePoint
from ibkit.callbacks.information_plane import InformationPlane

__all__ = ["EpochTiming", "InformationPlane", "InformationPlaneHistory", "PlanePoint"]
