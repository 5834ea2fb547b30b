"""Lightning callbacks (installed as ``ibkit.callbacks``)."""
