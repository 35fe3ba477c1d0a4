"""The stop Lambda: stops an opted-in SageMaker training job when one of its rules finds an issue.

``decision`` is the pure core (event + job description + tags + settings -> stop or skip with a reason); the
local sweep runner reuses it. ``app`` is the thin AWS adapter (handler ``stop_training_job.app.handler``).
The Lambda asset ships this folder as the top-level package ``stop_training_job``, so modules here import
each other relatively.
"""
