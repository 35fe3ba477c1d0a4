"""Parameter sweeps whose bad jobs stop themselves: spec, local and SageMaker backends, status, report.

Why a package of its own: a sweep is the product's main job. One spec (``spec``) expands into job
configurations that either backend runs: ``local`` (each job a subprocess with SageMaker's container
contract, stop signals decided by the stop Lambda's own decision core, SIGTERM to stop) or ``sagemaker``
(SDK 2.x estimators with the opt-in tag, rules, metric definitions and per-job alarms; the deployed stop
Lambda stops the bad jobs). Both produce the same job records, from which ``report`` computes what the
stops saved. ``status`` shows a SageMaker sweep's jobs, rule statuses and who stopped what; ``cli`` is
``autostop sweep``.

Modules:

- ``spec``: the YAML/TOML sweep spec, validated up front, expanded into named job configurations (one
  import for ``spec_schema``, ``spec_parsing``, ``spec_validation`` with its ``spec_validation_*`` sections,
  and ``spec_search``).
- ``local``: the local runner (the embedded default; ``make demo``).
- ``sagemaker``: the SageMaker launcher (``--dry-run`` prints every request without credentials).
- ``progress``: the live table (rich) or plain progress lines.
- ``report``: job records -> totals (compute used, saved, regret), markdown, JSON and PNG plots.
- ``status``: ``autostop sweep status``.
- ``cli``: ``autostop sweep run|status|report``.
"""
