"""Launching studies: the ``grok`` command line (``cli``) and the Ray Tune grid sweep
(``launch``), built on the param-space surgery of ``space`` and the Ray connection of
``cluster``; a further launcher (the critical-ratio search) shares those two."""
