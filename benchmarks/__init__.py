"""Every runnable experiment of ibkit, in one place (installed as ``ibkit.benchmarks``).

The ``ibkit`` command (:mod:`ibkit.benchmarks.cli`) runs them:

- ``ibkit train classifier`` and ``ibkit train dim`` train the bundled models with Lightning's
  command line (``LightningCLI``: ``--config``, ``--print_config``, ``--trainer.*``,
  ``--model.*``, ``--data.*``);
- ``ibkit bench battery|synthetic|speed|callback|dim`` print and save result tables (with
  ``ibkit.report``); the numbers in the README come from them, into ``benchmarks/results``.

Nothing in the library (``ibkit``), the callbacks or the models imports from here.
"""
