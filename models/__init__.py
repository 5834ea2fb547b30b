"""Bundled LightningModules and training entry points (installed as ``ibkit.models``)."""
