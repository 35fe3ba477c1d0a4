"""The sweep controller of detached sweeps: when a job of a detached sweep ends, launch the next queued one.

A detached sweep (``autostop sweep run --backend sagemaker --detach``) lives in the sweep-state DynamoDB
table: one sweep item (parallel limit, counts) and one item per job (its stored ``CreateTrainingJob``
request). The pure parts: ``items`` (the table's layout), ``events`` (which events end a job of a sweep),
``outcomes`` (what an answer of ``CreateTrainingJob`` means). ``queue`` makes every state change with a
conditional write; ``controller`` ends a job, launches what was claimed and claims the free slots. ``app``
is the thin handler (``launch_queued_jobs.app.handler``). The asset ships this folder alone as the package
``launch_queued_jobs``, so modules here import each other relatively; the ``autostop`` command imports
them as ``lambdas.launch_queued_jobs`` to detach a sweep with the same conditional writes.
"""
