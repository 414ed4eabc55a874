"""Launching experiments: the ``grok`` command line (and, later, Ray Tune sweeps)."""
