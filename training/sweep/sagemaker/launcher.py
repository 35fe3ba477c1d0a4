"""Launch, watch and record a sweep on SageMaker, at most ``max_parallel_jobs`` in flight.

For each job: build the request offline (``sdk.RequestBuilder``), give it its own random signing key
(hyperparameter ``autostop_signing_key``: the job signs its stop events with it and the stop Lambda verifies
them against the key DescribeTrainingJob returns, training/debugger/provenance.py), send
``CreateTrainingJob`` with Ctrl-C deferred (so a job is recorded exactly when it exists), then create its
per-job alarms. Poll
``DescribeTrainingJob`` and launch queued jobs as others end; when a job ends, record it, delete its alarms
and rewrite ``records.json``.

Faults, and what the launcher does about them:

- throttling, 5xx, a dropped connection while polling or creating: wait and try again with exponential
  backoff (``faults.Retrier``); ``ResourceLimitExceeded`` at creation: launch that job when one ends;
- credentials that expire or stop working, or retries that run out: *detach* -- the running jobs go on
  (the stop Lambda still watches them; their alarms stay), they are recorded ``Running``, the queued ones
  ``NotStarted``, and the sweep can be picked up with ``autostop sweep resume``;
- Ctrl-C at any point: the jobs it launched that still run are stopped (``StopTrainingJob``), their alarms
  deleted, the queued ones recorded ``NotStarted``; a second Ctrl-C while stopping is held back;
- ``ResourceInUse`` at creation (the job exists: a resumed sweep, or a retry after a lost answer): the job
  is adopted if it carries this sweep's tag, and refused otherwise.
"""

from __future__ import annotations

import datetime
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from training.debugger import contract, provenance
from training.sweep import report as report_module
from training.sweep import spec as spec_module
from training.sweep.sagemaker import alarms, custom_rules, faults, records, sdk
from training.sweep.sagemaker.settings import SWEEP_TAG_KEY, TERMINAL_STATUSES, LaunchError, LaunchSettings

# CreateTrainingJob errors that clear up once a running job ends (the account's instance quota).
WAIT_FOR_A_SLOT_CODES = frozenset({"ResourceLimitExceeded"})
JOB_EXISTS_CODES = frozenset({"ResourceInUse"})
RECORDS_NOTE = (
    "compute seconds are SageMaker's BillableTimeInSeconds (training time when absent); seconds per step "
    "come from the train:step metric's timestamps"
)


class Detach(Exception):
    """The launcher cannot go on (credentials, or AWS unreachable for minutes); the jobs run on."""


class SageMakerSweep:
    """Launch, watch and record a sweep on SageMaker (see the module docstring)."""

    def __init__(
        self,
        spec: spec_module.SweepSpec,
        launch: LaunchSettings,
        clients: sdk.AwsClients,
        *,
        directory: Path | None = None,
        existing_jobs: Mapping[str, Mapping[str, Any]] | None = None,
        poll_seconds: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] | None = None,
        retrier: faults.Retrier | None = None,
        hyperparameters_for: Callable[[spec_module.JobConfig], Mapping[str, str]] | None = None,
        opt_in_tags: Mapping[str, str] | None = None,
    ) -> None:
        """``existing_jobs``: job name -> ``DescribeTrainingJob`` of jobs already created (``resume``).

        ``hyperparameters_for``: extra hyperparameters per job, added to its request before it is sent.
        ``opt_in_tags``: the tag the deployed stop stack acts on (``scope.opt_in_tags``), set on every job.
        """
        self.spec = spec
        self.launch = launch
        self.clients = clients
        self.directory = directory
        self.existing_jobs = dict(existing_jobs or {})
        self.poll_seconds = launch.settings.poll_seconds if poll_seconds is None else poll_seconds
        self.sleep = sleep
        self.clock = clock
        self.log = log or (lambda line: print(line, flush=True))
        self.retrier = retrier or faults.Retrier(sleep=sleep, log=self.log)
        self.hyperparameters_for = hyperparameters_for
        self.opt_in_tags = dict(opt_in_tags or {})
        self.prefix = launch.settings.alarm_prefix
        self.in_flight: dict[str, spec_module.JobConfig] = {}
        self.most_in_flight = 0
        self.records: dict[str, report_module.JobRecord] = {}
        self.detached: str | None = None
        self.interrupted = False
        self._started_at = ""
        self._started = 0.0
        self._builder: sdk.RequestBuilder | None = None

    # --- the loop ---

    def run(self) -> report_module.SweepRecord:
        self._started_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._started = self.clock()
        jobs = self.spec.jobs()
        pending: deque[spec_module.JobConfig] = deque()
        try:
            for job in jobs:
                if job.name in self.existing_jobs:
                    self._adopt(job, self.existing_jobs[job.name])
                else:
                    pending.append(job)
            self._save()
            if pending and custom_rules.uses_custom_rules(self.spec, self.launch):
                uri = self.retrier.call(
                    "uploading the custom rule source",
                    lambda: custom_rules.upload_custom_rule_source(self.clients.session, self.launch),
                )
                self.log(f"custom rule source uploaded to {uri}")
            while pending or self.in_flight:
                while pending and len(self.in_flight) < self.spec.max_parallel_jobs:
                    if not self._launch(pending[0]):
                        break  # a quota: try again after the next poll
                    pending.popleft()
                self.most_in_flight = max(self.most_in_flight, len(self.in_flight))
                self._poll()
                if self.in_flight or pending:
                    self.sleep(self.poll_seconds)
        except KeyboardInterrupt:
            self.interrupted = True
            self.log(
                f"interrupted: stopping {len(self.in_flight)} running job(s); {len(pending)} not launched"
            )
            self._stop_in_flight()
        except Exception as error:
            if not faults.is_aws_error(error) and not isinstance(error, Detach | LaunchError):
                # A bug, not a fault: keep the record of what runs, then let the traceback show.
                self._record_running()
                self._save()
                raise
            self.detached = faults.describe(error)
            self.log(
                f"cannot go on: {self.detached}; {len(self.in_flight)} job(s) keep running (the stop Lambda "
                f"still watches them), {len(pending)} not launched; pick the sweep up again with "
                "`autostop sweep resume`"
            )
            self._record_running()
        record = self.sweep_record()
        self._save(record)
        return record

    def sweep_record(self) -> report_module.SweepRecord:
        """The sweep as known now: ended jobs as recorded, running ones ``Running``, the rest not started."""
        jobs = []
        for job in self.spec.jobs():
            record = self.records.get(job.name)
            if record is None:
                state = report_module.RUNNING if job.name in self.in_flight else report_module.NOT_STARTED
                record = report_module.JobRecord(
                    name=job.name, params=dict(job.params), budget_steps=job.steps, state=state
                )
            jobs.append(record)
        notes = [RECORDS_NOTE]
        if self.detached:
            notes.append(f"the launcher detached: {self.detached}")
        return report_module.SweepRecord(
            name=self.spec.name,
            backend="sagemaker",
            objective_metric=self.spec.objective.metric,
            objective_goal=self.spec.objective.goal,
            jobs=jobs,
            wall_seconds=self.clock() - self._started,
            started_at=self._started_at,
            interrupted=self.interrupted,
            notes=notes,
        )

    def _save(self, record: report_module.SweepRecord | None = None) -> None:
        if self.directory is not None:
            (record or self.sweep_record()).save(self.directory)

    # --- launching ---

    def request(self, job: spec_module.JobConfig) -> dict[str, Any]:
        """The job's ``CreateTrainingJob`` request exactly as it is sent (``detach`` stores it as is)."""
        if self._builder is None:
            self._builder = sdk.RequestBuilder(self.spec, self.launch)
        request = self._builder.create_training_job(job)
        # A fresh key per job and per request: never in the spec, the records or the dry run's output.
        request["HyperParameters"] = {
            **request.get("HyperParameters", {}),
            contract.SIGNING_KEY_HYPERPARAMETER: provenance.new_signing_key(),
        }
        if self.opt_in_tags:
            tags = {tag["Key"]: tag["Value"] for tag in request.get("Tags", [])}
            tags.update(self.opt_in_tags)
            request["Tags"] = [{"Key": key, "Value": value} for key, value in tags.items()]
        if self.hyperparameters_for is not None:
            request["HyperParameters"] = {
                **request.get("HyperParameters", {}),
                **self.hyperparameters_for(job),
            }
        return request

    def _launch(self, job: spec_module.JobConfig) -> bool:
        """Create the job and its alarms; ``False``: not now (a quota), try again after the next poll."""
        request = self.request(job)
        try:
            with sdk.deferred_interrupts():
                # Recorded in the same uninterruptible block: a job that exists is always in flight here.
                self.retrier.call(
                    f"{job.name}: CreateTrainingJob",
                    lambda: self.clients.sagemaker.create_training_job(**request),
                )
                self.in_flight[job.name] = job
        except KeyboardInterrupt:
            raise
        except Exception as error:
            code = faults.error_code(error)
            if code in JOB_EXISTS_CODES:
                return self._adopt_existing(job)
            if code in WAIT_FOR_A_SLOT_CODES and self.in_flight:
                self.log(f"{job.name}: {code}; launching it when a running job ends")
                return False
            if faults.is_credential_problem(error) or faults.is_transient(error):
                raise Detach(f"{job.name}: CreateTrainingJob failed: {faults.describe(error)}") from error
            self.log(f"{job.name}: could not be created: {faults.describe(error)}")
            self.records[job.name] = report_module.JobRecord(
                name=job.name,
                params=dict(job.params),
                budget_steps=job.steps,
                state=report_module.FAILED,
                failure_reason=f"CreateTrainingJob failed: {faults.describe(error)}"[:500],
            )
            self._save()
            return True
        self.log(f"{job.name}: created ({job.label()})")
        self._save()  # the job exists: records.json says so before anything else can go wrong
        for alarm in alarms.alarm_requests(self.spec, job, self.prefix):
            try:
                self.retrier.call(
                    f"{job.name}: PutMetricAlarm",
                    lambda alarm=alarm: self.clients.cloudwatch.put_metric_alarm(**alarm),
                )
            except KeyboardInterrupt:
                raise
            except Exception as error:  # the in-container PutEvents path still works without the alarm
                self.log(f"{job.name}: alarm {alarm['AlarmName']} not created: {faults.describe(error)}")
        return True

    def _adopt_existing(self, job: spec_module.JobConfig) -> bool:
        description = self._describe(job.name)
        tags = records.training_job_tags(self.clients.sagemaker, str(description.get("TrainingJobArn", "")))
        if tags.get(SWEEP_TAG_KEY) != self.spec.name:
            raise Detach(
                f"{job.name}: a training job of that name exists and is not part of sweep {self.spec.name} "
                f"(its {SWEEP_TAG_KEY} tag is {tags.get(SWEEP_TAG_KEY)!r}); run the sweep under another name "
                "(--name)"
            )
        self.log(f"{job.name}: already exists; following it")
        self._adopt(job, description)
        return True

    def _adopt(self, job: spec_module.JobConfig, description: Mapping[str, Any]) -> None:
        """Follow a job created earlier (by this run after a lost answer, or by the run being resumed)."""
        if description.get("TrainingJobStatus") in TERMINAL_STATUSES:
            self.records[job.name] = self._record(job, description)
            self.log(f"{job.name}: {description.get('TrainingJobStatus')} (ended before this run)")
        else:
            self.in_flight[job.name] = job

    # --- watching ---

    def _describe(self, name: str) -> dict[str, Any]:
        description: dict[str, Any] = self.retrier.call(
            f"{name}: DescribeTrainingJob",
            lambda: self.clients.sagemaker.describe_training_job(TrainingJobName=name),
        )
        return description

    def _record(
        self,
        job: spec_module.JobConfig,
        description: Mapping[str, Any],
        unfinished_state: str = report_module.INTERRUPTED,
    ) -> report_module.JobRecord:
        return self.retrier.call(
            f"{job.name}: its record",
            lambda: records.job_record(self.clients, job, description, unfinished_state=unfinished_state),
        )

    def _poll(self) -> None:
        for name in list(self.in_flight):
            description = self._describe(name)
            status = description.get("TrainingJobStatus")
            if status in TERMINAL_STATUSES:
                job = self.in_flight[name]
                self.records[name] = self._record(job, description)
                self.in_flight.pop(name)
                alarms.delete_job_alarms(self.clients.cloudwatch, name, self.prefix)
                record = self.records[name]
                stopped = f" by {record.stopped_by_rule}" if record.stopped_by_rule else ""
                self.log(f"{name}: {status}{stopped}")
                self._save()

    # --- ending early ---

    def _stop_in_flight(self) -> None:
        try:
            with sdk.deferred_interrupts():  # a second Ctrl-C must not leave jobs running unrecorded
                for name, job in list(self.in_flight.items()):
                    try:
                        self.clients.sagemaker.stop_training_job(TrainingJobName=name)
                    except Exception as error:
                        self.log(f"{name}: could not be stopped: {faults.describe(error)}")
                    try:
                        description = self.clients.sagemaker.describe_training_job(TrainingJobName=name)
                        self.records[name] = records.job_record(self.clients, job, description)
                    except Exception as error:
                        self.log(f"{name}: could not be described: {faults.describe(error)}")
                    alarms.delete_job_alarms(self.clients.cloudwatch, name, self.prefix)
                    self.in_flight.pop(name)
        except KeyboardInterrupt:
            self.log("interrupted again while stopping; the jobs above were handled first")

    def _record_running(self) -> None:
        """Detaching: record what is known of the running jobs, best effort (AWS may be what failed)."""
        for name, job in list(self.in_flight.items()):
            try:
                description = self.clients.sagemaker.describe_training_job(TrainingJobName=name)
                self.records[name] = records.job_record(
                    self.clients, job, description, unfinished_state=report_module.RUNNING
                )
            except Exception as error:
                self.log(f"{name}: left running; not described: {faults.describe(error)}")
