"""The SageMaker backend: launch a sweep's jobs with the SageMaker Python SDK 2.x, at most N in flight.

Why SDK 2.x: 3.x has no ``Estimator`` and no Debugger rules API (shared/reference/dependencies.md). Each job
is an ``Estimator`` of the project's training image with:

- the job's hyperparameters (strings), plus the in-container evaluator's settings (its rule configurations in
  SageMaker's ``DebugRuleConfigurations`` shape, ``PutEvents`` on);
- ``DebuggerHookConfig`` with the spec's collections (and those the rules need), so the container records
  Debugger-format tensors where SageMaker and managed rules expect them;
- ``Rule.sagemaker(rule_configs.<rule>(), rule_parameters=..., collections_to_save=...)`` for every rule that
  is a managed built-in, when ``sagemaker.managed_rules`` is on (accounts that still have managed Debugger);
  ``collections_to_save`` repeats the hook's own collection configurations so the request carries each
  collection once (a rule_configs default would add its own at save_interval 500);
- ``LatentClusterRule`` as a SageMaker custom rule (``Rule.custom``) when ``managed_rules`` is on and
  ``sagemaker.custom_rule_image_uri`` names AWS's custom rule evaluator image: its source is the standalone
  ``training/analysis/clustering.py``, uploaded once per sweep under ``<output_path>/autostop-rules/<sha>/``
  (a content hash, so a changed rule never overwrites one a running job reads);
- the opt-in tag ``autostop=enabled`` (the stop Lambda stops nothing without it), ``autostop:sweep`` and the
  spec's tags;
- metric definitions for the training metric lines (docs/training.md), the step, and the rule lines
  ``rule:<Name>=1`` (docs/debugger.md), which feed the per-job alarms;
- optional managed spot training (``use_spot_instances``, ``max_wait``, ``checkpoint_s3_uri``).

After ``CreateTrainingJob`` the launcher creates the job's CloudWatch alarms ``<prefix><job>/<rule>`` on the
metric ``rule:<Rule>`` (namespace ``/aws/sagemaker/TrainingJobs``, dimension ``Host=<job>/algo-1``,
CONTRACTS.md): the stop path that works with network isolation. It polls ``DescribeTrainingJob`` and keeps at
most ``max_parallel_jobs`` in flight, launching queued jobs as others end; when a job ends it deletes that
job's alarms (the stop Lambda does too on the terminal event; deleting twice is harmless). Ctrl-C stops the
jobs it launched that are still running (``StopTrainingJob``) and writes the report of what ran.

``--dry-run`` builds every request the same way, offline: fake credentials, a ``Session`` whose
``sagemaker_client`` only records ``create_training_job`` calls, SDK telemetry off, no CloudWatch client:
it prints each ``CreateTrainingJob`` request and each ``PutMetricAlarm`` request and sends nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from lambdas.stop_training_job import decision
from training.sweep import report as report_module
from training.sweep import spec as spec_module

METRIC_NAMESPACE = "/aws/sagemaker/TrainingJobs"
HOST_SUFFIX = "/algo-1"  # one instance per job: SageMaker's first host
TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Stopped"})
SWEEP_TAG_KEY = "autostop:sweep"
# The training metric lines (training/callbacks.py METRIC_DEFINITIONS, docs/training.md), repeated here so the
# launcher needs no TensorFlow; tests/training/sweep compare both. The leading space keeps " loss=" from
# matching inside "val_loss=".
TRAINING_METRIC_DEFINITIONS: tuple[dict[str, str], ...] = (
    {"Name": "train:loss", "Regex": " loss=(\\S+)"},
    {"Name": "train:ssim", "Regex": " ssim=(\\S+)"},
    {"Name": "train:l2", "Regex": " l2=(\\S+)"},
    {"Name": "train:learning_rate", "Regex": " learning_rate=(\\S+)"},
    {"Name": "validation:loss", "Regex": " val_loss=(\\S+)"},
    {"Name": "validation:ssim", "Regex": " val_ssim=(\\S+)"},
    {"Name": "validation:l2", "Regex": " val_l2=(\\S+)"},
)
# The global step of each training metric line ("step=120 loss=..."; validation lines have " val_loss=").
STEP_METRIC_DEFINITION = {"Name": "train:step", "Regex": "step=([0-9]+) loss="}
# Debugger rules that managed Debugger offers as built-ins (sagemaker.debugger.rule_configs functions).
MANAGED_RULE_FUNCTIONS = {
    "LossNotDecreasing": "loss_not_decreasing",
    "VanishingGradient": "vanishing_gradient",
    "ExplodingTensor": "exploding_tensor",
    "Overfit": "overfit",
}
# Collections each in-container rule reads (training/debugger/rules.py REQUIRED_COLLECTIONS), used when that
# module cannot be imported.
FALLBACK_REQUIRED_COLLECTIONS = {
    "LossNotDecreasing": ("losses",),
    "VanishingGradient": ("gradients",),
    "ExplodingTensor": ("losses", "gradients"),
    "Overfit": ("losses",),
    "LatentClusterRule": ("embeddings",),
}
# Rules that run as SageMaker custom rules (Rule.custom) when managed rules are on; the rest of a spec's
# rules that are not managed built-ins run in the container only.
CUSTOM_RULES = frozenset({"LatentClusterRule"})
CUSTOM_RULE_FOLDER = "autostop-rules"
# The in-container evaluator's hyperparameters (docs/debugger.md).
RULES_HYPERPARAMETER = "debugger_rules"
PUT_EVENTS_HYPERPARAMETER = "debugger_put_events"
DRY_RUN_ACCOUNT = "123456789012"
DRY_RUN_BUCKET = "autostop-dry-run-bucket"


class LaunchError(ValueError):
    """The sweep cannot be launched on SageMaker as configured; the message says what is missing."""


@dataclasses.dataclass(frozen=True)
class LaunchSettings:
    """The spec's ``sagemaker`` section with the CLI's overrides applied and the required values checked."""

    image_uri: str
    role_arn: str
    region: str
    settings: spec_module.SageMakerSettings

    @classmethod
    def resolve(
        cls,
        spec: spec_module.SweepSpec,
        *,
        image_uri: str | None = None,
        role_arn: str | None = None,
        region: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> LaunchSettings:
        environment = os.environ if environ is None else environ
        settings = spec.sagemaker
        image = image_uri or settings.image_uri
        role = role_arn or settings.role_arn
        chosen_region = (
            region
            or settings.region
            or environment.get("AWS_REGION")
            or environment.get("AWS_DEFAULT_REGION")
        )
        problems = []
        if not image or not spec_module.IMAGE_URI_PATTERN.fullmatch(image):
            problems.append(
                "the training image URI (sagemaker.image_uri or --image-uri) is missing or not an ECR URI"
            )
        if not role or not spec_module.ROLE_ARN_PATTERN.fullmatch(role):
            problems.append(
                "the execution role (sagemaker.role_arn or --role-arn) is missing or not a role ARN"
            )
        if not chosen_region or not spec_module.REGION_PATTERN.fullmatch(chosen_region):
            problems.append("the region (sagemaker.region, --region or AWS_REGION) is missing")
        if not settings.output_path:
            problems.append("sagemaker.output_path (s3:// where model artifacts go) is missing")
        custom = sorted({rule.name for rule in spec.rules if rule.rule_to_invoke in CUSTOM_RULES})
        if custom and not settings.in_container_rules and not settings.custom_rule_image_uri:
            problems.append(
                f"rule(s) {', '.join(custom)} would run nowhere: in_container_rules is off and "
                "sagemaker.custom_rule_image_uri (AWS's custom rule evaluator image) is not set"
            )
        for job in spec.jobs():
            local = [
                channel
                for channel, location in job.dataset.channels.items()
                if not location.startswith("s3://")
            ]
            if local:
                problems.append(
                    f"dataset {job.dataset.name!r}: channel(s) {', '.join(local)} are local folders; "
                    "SageMaker reads s3:// prefixes"
                )
                break
        if problems:
            raise LaunchError("cannot launch on SageMaker: " + "; ".join(problems))
        return cls(image_uri=str(image), role_arn=str(role), region=str(chosen_region), settings=settings)


def required_collections(rules: Iterable[spec_module.RuleSpec]) -> list[str]:
    try:
        from training.debugger import rules as rules_module

        table = {name: rule.REQUIRED_COLLECTIONS for name, rule in rules_module.RULES.items()}
    except ImportError:
        table = dict(FALLBACK_REQUIRED_COLLECTIONS)
    needed: list[str] = []
    for rule in rules:
        needed.extend(table.get(rule.rule_to_invoke, ()))
    return list(dict.fromkeys(needed))


def metric_definitions(spec: spec_module.SweepSpec) -> list[dict[str, str]]:
    """Training metrics, the step, and one ``rule:<Name>`` metric per configured rule."""
    from training.debugger import signals

    rule_metrics = signals.metric_definitions(rule.name for rule in spec.rules)
    return [*TRAINING_METRIC_DEFINITIONS, STEP_METRIC_DEFINITION, *rule_metrics]


def alarm_name(prefix: str, job_name: str, rule_name: str) -> str:
    return f"{prefix}{job_name}/{rule_name}"


def alarm_requests(
    spec: spec_module.SweepSpec, job: spec_module.JobConfig, prefix: str
) -> list[dict[str, Any]]:
    """``PutMetricAlarm`` requests: one per rule, ALARM when the job prints ``rule:<Name>=1``."""
    requests = []
    for rule in spec.rules:
        requests.append(
            {
                "AlarmName": alarm_name(prefix, job.name, rule.name),
                "AlarmDescription": (
                    f"autostop: rule {rule.name} found issues in training job {job.name} "
                    f"(sweep {spec.name}); the stop Lambda stops the job on this alarm's state change"
                ),
                "Namespace": METRIC_NAMESPACE,
                "MetricName": f"rule:{rule.name}",
                "Dimensions": [{"Name": "Host", "Value": job.name + HOST_SUFFIX}],
                "Statistic": "Maximum",
                "Period": 60,
                "EvaluationPeriods": 1,
                "DatapointsToAlarm": 1,
                "Threshold": 1.0,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "ActionsEnabled": False,
                "Tags": [
                    {"Key": decision.DEFAULT_TAG_KEY, "Value": decision.DEFAULT_TAG_VALUE},
                    {"Key": SWEEP_TAG_KEY, "Value": spec.name},
                ],
            }
        )
    return requests


def job_tags(spec: spec_module.SweepSpec, job: spec_module.JobConfig) -> list[dict[str, str]]:
    tags = [
        {"Key": decision.DEFAULT_TAG_KEY, "Value": decision.DEFAULT_TAG_VALUE},
        {"Key": SWEEP_TAG_KEY, "Value": spec.name},
    ]
    tags += [{"Key": key, "Value": value} for key, value in spec.tags.items()]
    return tags


def container_hyperparameters(
    spec: spec_module.SweepSpec, job: spec_module.JobConfig, launch: LaunchSettings
) -> dict[str, str]:
    """The job's hyperparameters plus the in-container evaluator's (rules; PutEvents unless isolated)."""
    hyperparameters = dict(job.hyperparameters)
    if launch.settings.in_container_rules:
        hyperparameters[RULES_HYPERPARAMETER] = json.dumps(spec.rule_configurations(), separators=(",", ":"))
        put_events = launch.settings.put_events and not launch.settings.network_isolation
        hyperparameters[PUT_EVENTS_HYPERPARAMETER] = "true" if put_events else "false"
    return hyperparameters


def build_estimator(
    spec: spec_module.SweepSpec, job: spec_module.JobConfig, launch: LaunchSettings, session: Any
) -> Any:
    """The job's ``sagemaker.estimator.Estimator`` (nothing is sent until ``fit``)."""
    from sagemaker.debugger import CollectionConfig, DebuggerHookConfig, Rule, rule_configs
    from sagemaker.estimator import Estimator

    settings = launch.settings
    collection_names = list(dict.fromkeys([*spec.debugger_collections, *required_collections(spec.rules)]))
    collections = {
        name: CollectionConfig(name, parameters=dict(spec.debugger_collections.get(name, {})) or None)
        for name in collection_names
    }
    output_path = (settings.output_path or "").rstrip("/")  # required by LaunchSettings.resolve
    hook = DebuggerHookConfig(
        s3_output_path=settings.debugger_output_path or f"{output_path}/debug-output",
        collection_configs=list(collections.values()),
    )
    managed_rules = []
    if settings.managed_rules:
        for rule in spec.rules:
            parameters = {key: value for key, value in rule.parameters.items() if key != "rule_to_invoke"}
            rule_collections = [
                collections[name] for name in required_collections([rule]) if name in collections
            ]
            if rule.rule_to_invoke in CUSTOM_RULES:
                if settings.custom_rule_image_uri:
                    managed_rules.append(
                        Rule.custom(
                            **custom_rule_arguments(rule.name, parameters, launch),
                            collections_to_save=rule_collections,
                        )
                    )
                continue  # without the evaluator image: evaluated in the container only
            function_name = MANAGED_RULE_FUNCTIONS.get(rule.rule_to_invoke)
            if function_name is None:
                continue  # an in-container rule only
            managed_rules.append(
                Rule.sagemaker(
                    getattr(rule_configs, function_name)(),
                    name=rule.name,
                    rule_parameters=parameters,
                    collections_to_save=rule_collections,
                )
            )
    spot: dict[str, Any] = {}
    if settings.spot is not None:
        spot = {
            "use_spot_instances": True,
            "max_wait": settings.spot.max_wait_seconds,
            "checkpoint_s3_uri": f"{settings.spot.checkpoint_s3_uri.rstrip('/')}/{job.name}",
        }
    return Estimator(
        image_uri=launch.image_uri,
        role=launch.role_arn,
        instance_count=1,
        instance_type=settings.instance_type,
        volume_size=settings.volume_size_gb,
        max_run=settings.max_run_seconds,
        output_path=settings.output_path,
        hyperparameters=container_hyperparameters(spec, job, launch),
        metric_definitions=metric_definitions(spec),
        tags=job_tags(spec, job),
        debugger_hook_config=hook,
        rules=managed_rules or None,
        disable_profiler=True,
        enable_network_isolation=settings.network_isolation,
        sagemaker_session=session,
        **spot,
    )


def custom_rule_source() -> tuple[str, bytes]:
    """The custom rule's file name and contents (the standalone clustering module)."""
    from training.analysis import clustering

    with open(clustering.CUSTOM_RULE_SOURCE, "rb") as source:
        return "latent_cluster_rule.py", source.read()


def custom_rule_source_uri(launch: LaunchSettings) -> str:
    """Where the sweep keeps the custom rule's source: ``<output_path>/autostop-rules/<sha[:16]>/<file>``."""
    name, body = custom_rule_source()
    digest = hashlib.sha256(body).hexdigest()[:16]
    return f"{(launch.settings.output_path or '').rstrip('/')}/{CUSTOM_RULE_FOLDER}/{digest}/{name}"


def uses_custom_rules(spec: spec_module.SweepSpec, launch: LaunchSettings) -> bool:
    return bool(
        launch.settings.managed_rules
        and launch.settings.custom_rule_image_uri
        and any(rule.rule_to_invoke in CUSTOM_RULES for rule in spec.rules)
    )


def custom_rule_arguments(name: str, parameters: Mapping[str, str], launch: LaunchSettings) -> dict[str, Any]:
    """``Rule.custom`` keyword arguments of a LatentClusterRule (its parameters checked before any launch)."""
    from training.analysis import clustering

    return clustering.custom_rule_arguments(
        name=name,
        image_uri=str(launch.settings.custom_rule_image_uri),
        source=custom_rule_source_uri(launch),
        rule_parameters=dict(parameters),
    )


def upload_custom_rule_source(session: Any, launch: LaunchSettings) -> str:
    """Put the custom rule's source where the jobs' rule configurations point (once per sweep)."""
    uri = custom_rule_source_uri(launch)
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    _, body = custom_rule_source()
    session.upload_string_as_file_body(body.decode("utf-8"), bucket, key)
    return uri


def training_inputs(job: spec_module.JobConfig) -> dict[str, Any]:
    from sagemaker.inputs import TrainingInput

    return {channel: TrainingInput(location) for channel, location in job.dataset.channels.items()}


# --- Sessions ---


class RecordingSageMakerClient:
    """The boto3 SageMaker client of a dry run: records ``create_training_job`` requests, sends nothing."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.requests: list[dict[str, Any]] = []

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        name = request["TrainingJobName"]
        return {"TrainingJobArn": f"arn:aws:sagemaker:{self.region}:{DRY_RUN_ACCOUNT}:training-job/{name}"}

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        def refuse(**_: Any) -> Any:
            raise RuntimeError(f"dry run: the SageMaker SDK tried to call {operation}; nothing is sent")

        return refuse


def _quiet_sdk_logs() -> None:
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    for name in ("sagemaker", "sagemaker.config", "sagemaker.telemetry.telemetry_logging", "botocore"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def no_sdk_telemetry() -> Iterator[None]:
    """Send no SageMaker SDK telemetry (an HTTPS request to an AWS bucket, after an STS call) while inside.

    Why not the SDK's documented opt-out (``TelemetryOptOut`` in its defaults config): in 2.257.7 any
    non-empty SDK config is re-validated against its JSON schema on every lookup, ~0.5 s each, ~5 s per job;
    and a dry run must reach no network at all. The SDK version is pinned, so the function replaced here
    is known; the replacement is undone on exit.
    """
    from sagemaker.telemetry import telemetry_logging

    original = telemetry_logging._send_telemetry_request
    telemetry_logging._send_telemetry_request = _no_telemetry
    try:
        yield
    finally:
        telemetry_logging._send_telemetry_request = original


def _no_telemetry(*_: Any, **__: Any) -> None:
    return None


def offline_session(region: str) -> tuple[Any, RecordingSageMakerClient]:
    """A ``sagemaker.Session`` that needs no credentials and reaches no network (dry runs)."""
    _quiet_sdk_logs()
    import boto3
    import sagemaker

    boto_session = boto3.Session(
        # Placeholders, not secrets: nothing is signed for a real endpoint in a dry run.
        aws_access_key_id="dry-run",
        aws_secret_access_key="dry-run",  # noqa: S106
        aws_session_token="dry-run",  # noqa: S106
        region_name=region,
    )
    client = RecordingSageMakerClient(region)
    session = sagemaker.Session(
        boto_session=boto_session,
        sagemaker_client=client,
        default_bucket=DRY_RUN_BUCKET,
    )
    return session, client


@dataclasses.dataclass
class AwsClients:
    sagemaker: Any
    cloudwatch: Any
    session: Any  # sagemaker.Session


def aws_clients(region: str) -> AwsClients:
    """Real clients (endpoints from the usual AWS settings, e.g. ``AWS_ENDPOINT_URL`` in tests)."""
    _quiet_sdk_logs()
    import boto3
    import sagemaker
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
    boto_session = boto3.Session(region_name=region)
    sagemaker_client = boto_session.client("sagemaker", config=config)
    session = sagemaker.Session(boto_session=boto_session, sagemaker_client=sagemaker_client)
    return AwsClients(sagemaker_client, boto_session.client("cloudwatch", config=config), session)


# --- Dry run ---


@dataclasses.dataclass(frozen=True)
class PlannedJob:
    job: spec_module.JobConfig
    create_training_job: dict[str, Any]
    alarms: list[dict[str, Any]]


def plan(spec: spec_module.SweepSpec, launch: LaunchSettings) -> list[PlannedJob]:
    """Every request the sweep would send, built by the SDK offline (``--dry-run``)."""
    session, client = offline_session(launch.region)
    planned = []
    for job in spec.jobs():
        estimator = build_estimator(spec, job, launch, session)
        with no_sdk_telemetry():
            estimator.fit(inputs=training_inputs(job), wait=False, logs=False, job_name=job.name)
        planned.append(
            PlannedJob(job, client.requests[-1], alarm_requests(spec, job, launch.settings.alarm_prefix))
        )
    return planned


def print_plan(
    planned: Sequence[PlannedJob], spec: spec_module.SweepSpec, write: Callable[[str], None]
) -> None:
    write(
        f"dry run: sweep {spec.name}: {len(planned)} training jobs, at most {spec.max_parallel_jobs} in "
        "flight; nothing is sent"
    )
    sources = {
        rule["RuleParameters"]["source_s3_uri"]
        for item in planned
        for rule in item.create_training_job.get("DebugRuleConfigurations", [])
        if "source_s3_uri" in rule.get("RuleParameters", {})
    }
    for uri in sorted(sources):
        write(f"# PutObject {uri} (the custom rule's source, before the first job)")
    for item in planned:
        write(f"\n# CreateTrainingJob {item.job.name} ({item.job.label()})")
        write(json.dumps(item.create_training_job, indent=2, sort_keys=True, default=str))
        for alarm in item.alarms:
            write(f"# PutMetricAlarm {alarm['AlarmName']} (after the job is created)")
            write(json.dumps(alarm, indent=2, sort_keys=True))


# --- Launching ---


def _client_error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


RETRY_LATER_CODES = frozenset({"ResourceLimitExceeded", "ThrottlingException", "Throttling"})


class SageMakerSweep:
    """Launch, watch and report a sweep on SageMaker (see the module docstring)."""

    def __init__(
        self,
        spec: spec_module.SweepSpec,
        launch: LaunchSettings,
        clients: AwsClients,
        *,
        poll_seconds: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.launch = launch
        self.clients = clients
        self.poll_seconds = launch.settings.poll_seconds if poll_seconds is None else poll_seconds
        self.sleep = sleep
        self.clock = clock
        self.log = log or (lambda line: print(line, flush=True))
        self.prefix = launch.settings.alarm_prefix
        self.in_flight: dict[str, spec_module.JobConfig] = {}
        self.most_in_flight = 0
        self.records: dict[str, report_module.JobRecord] = {}

    def run(self) -> report_module.SweepRecord:
        started_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        started = self.clock()
        jobs = self.spec.jobs()
        pending = deque(jobs)
        interrupted = False
        if uses_custom_rules(self.spec, self.launch):
            uri = upload_custom_rule_source(self.clients.session, self.launch)
            self.log(f"custom rule source uploaded to {uri}")
        try:
            while pending or self.in_flight:
                while pending and len(self.in_flight) < self.spec.max_parallel_jobs:
                    job = pending[0]
                    if not self._launch(job):
                        break  # a quota or throttle: try again after the next poll
                    pending.popleft()
                self.most_in_flight = max(self.most_in_flight, len(self.in_flight))
                self._poll()
                if self.in_flight or pending:
                    self.sleep(self.poll_seconds)
        except KeyboardInterrupt:
            interrupted = True
            self.log(
                f"interrupted: stopping {len(self.in_flight)} running job(s); {len(pending)} not launched"
            )
            self._stop_in_flight()
        for job in jobs:
            if job.name not in self.records:
                self.records[job.name] = report_module.JobRecord(
                    name=job.name,
                    params=dict(job.params),
                    budget_steps=job.steps,
                    state=report_module.NOT_STARTED,
                )
        return report_module.SweepRecord(
            name=self.spec.name,
            backend="sagemaker",
            objective_metric=self.spec.objective.metric,
            objective_goal=self.spec.objective.goal,
            jobs=[self.records[job.name] for job in jobs],
            wall_seconds=self.clock() - started,
            started_at=started_at,
            interrupted=interrupted,
            notes=[
                "compute seconds are SageMaker's BillableTimeInSeconds (training time when absent); seconds "
                "per step come from the train:step metric's timestamps"
            ],
        )

    def _launch(self, job: spec_module.JobConfig) -> bool:
        estimator = build_estimator(self.spec, job, self.launch, self.clients.session)
        try:
            with no_sdk_telemetry():
                estimator.fit(inputs=training_inputs(job), wait=False, logs=False, job_name=job.name)
        except Exception as error:
            code = _client_error_code(error)
            if code in RETRY_LATER_CODES and self.in_flight:
                self.log(f"{job.name}: {code}; launching it when a running job ends")
                return False
            self.log(f"{job.name}: could not be created: {error}")
            self.records[job.name] = report_module.JobRecord(
                name=job.name,
                params=dict(job.params),
                budget_steps=job.steps,
                state=report_module.FAILED,
                failure_reason=f"CreateTrainingJob failed: {code or type(error).__name__}: {error}"[:500],
            )
            return True
        self.in_flight[job.name] = job
        self.log(f"{job.name}: created ({job.label()})")
        for request in alarm_requests(self.spec, job, self.prefix):
            try:
                self.clients.cloudwatch.put_metric_alarm(**request)
            except Exception as error:  # the in-container PutEvents path still works without the alarm
                self.log(f"{job.name}: alarm {request['AlarmName']} not created: {error}")
        return True

    def _poll(self) -> None:
        for name in list(self.in_flight):
            description = self.clients.sagemaker.describe_training_job(TrainingJobName=name)
            status = description.get("TrainingJobStatus")
            if status in TERMINAL_STATUSES:
                job = self.in_flight.pop(name)
                self.records[name] = job_record(self.clients, job, description)
                delete_job_alarms(self.clients.cloudwatch, name, self.prefix)
                record = self.records[name]
                stopped = f" by {record.stopped_by_rule}" if record.stopped_by_rule else ""
                self.log(f"{name}: {status}{stopped}")

    def _stop_in_flight(self) -> None:
        for name, job in list(self.in_flight.items()):
            try:
                self.clients.sagemaker.stop_training_job(TrainingJobName=name)
            except Exception as error:
                self.log(f"{name}: could not be stopped: {error}")
            try:
                description = self.clients.sagemaker.describe_training_job(TrainingJobName=name)
                self.records[name] = job_record(self.clients, job, description)
            except Exception as error:
                self.log(f"{name}: could not be described: {error}")
            delete_job_alarms(self.clients.cloudwatch, name, self.prefix)
            self.in_flight.pop(name)


def delete_job_alarms(cloudwatch: Any, job_name: str, prefix: str) -> list[str]:
    """Delete the alarms named ``<prefix><job>/...`` (the trailing slash keeps job-1 apart from job-10)."""
    job_prefix = f"{prefix}{job_name}/"
    names: list[str] = []
    try:
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=job_prefix):
            names += [
                alarm["AlarmName"]
                for alarm in page.get("MetricAlarms", [])
                if alarm["AlarmName"].startswith(job_prefix)
            ]
        for start in range(0, len(names), 100):
            cloudwatch.delete_alarms(AlarmNames=names[start : start + 100])
    except Exception as error:
        print(f"{job_name}: could not delete its alarms: {error}", file=sys.stderr, flush=True)
    return names


# --- Job records from SageMaker ---


def _seconds_between(start: object, end: object) -> float | None:
    if isinstance(start, datetime.datetime) and isinstance(end, datetime.datetime):
        return max(0.0, (end - start).total_seconds())
    return None


def training_job_tags(sagemaker_client: Any, arn: str) -> dict[str, str]:
    """A training job's tags as a dict, every ``ListTags`` page read (the stop Lambda's tags among them)."""
    items: list[dict[str, str]] = []
    token = None
    while True:
        response = sagemaker_client.list_tags(ResourceArn=arn, **({"NextToken": token} if token else {}))
        items += response.get("Tags", [])
        token = response.get("NextToken")
        if not token:
            return decision.tags_from_list(items)


def metric_series(
    cloudwatch: Any,
    job_name: str,
    metric_names: Sequence[str],
    start: datetime.datetime,
    end: datetime.datetime,
) -> dict[str, list[tuple[datetime.datetime, float]]]:
    """The job's metrics from CloudWatch (``Host=<job>/algo-1``), each as (timestamp, value), oldest first."""
    queries = [
        {
            "Id": f"m{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": METRIC_NAMESPACE,
                    "MetricName": name,
                    "Dimensions": [{"Name": "Host", "Value": job_name + HOST_SUFFIX}],
                },
                "Period": 1,
                "Stat": "Maximum",
            },
            "ReturnData": True,
        }
        for index, name in enumerate(metric_names)
    ]
    series: dict[str, list[tuple[datetime.datetime, float]]] = {name: [] for name in metric_names}
    token = None
    while True:
        arguments: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        if token:
            arguments["NextToken"] = token
        response = cloudwatch.get_metric_data(**arguments)
        for result in response.get("MetricDataResults", []):
            name = metric_names[int(result["Id"][1:])]
            series[name] += list(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
        token = response.get("NextToken")
        if not token:
            break
    return {name: sorted(points) for name, points in series.items()}


def job_record(
    clients: AwsClients, job: spec_module.JobConfig, description: Mapping[str, Any]
) -> report_module.JobRecord:
    """A report record from ``DescribeTrainingJob``, ``ListTags`` and the job's CloudWatch metrics."""
    status = str(description.get("TrainingJobStatus", ""))
    tags = training_job_tags(clients.sagemaker, str(description.get("TrainingJobArn", "")))
    final = {
        item["MetricName"]: float(item["Value"]) for item in description.get("FinalMetricDataList", []) or []
    }
    start = description.get("TrainingStartTime") or description.get("CreationTime")
    end = description.get("TrainingEndTime") or description.get("LastModifiedTime")
    billable = description.get("BillableTimeInSeconds")
    compute = float(billable) if billable is not None else (_seconds_between(start, end) or 0.0)

    train_curve: list[tuple[int, float]] = []
    validation_curve: list[tuple[int, dict[str, float]]] = []
    seconds_per_step = None
    if isinstance(start, datetime.datetime) and isinstance(end, datetime.datetime):
        names = ["train:step", "train:loss", "validation:loss", "validation:ssim", "validation:l2"]
        try:
            series = metric_series(
                clients.cloudwatch,
                job.name,
                names,
                start - datetime.timedelta(minutes=1),
                end + datetime.timedelta(minutes=1),
            )
        except Exception:  # curves are a nicety; the numbers below do not depend on them
            series = {name: [] for name in names}
        steps_by_time = dict(series["train:step"])
        train_curve = [
            (int(steps_by_time[moment]), value)
            for moment, value in series["train:loss"]
            if moment in steps_by_time
        ]
        validation_by_time: dict[datetime.datetime, dict[str, float]] = {}
        for name in names[2:]:
            for moment, value in series[name]:
                validation_by_time.setdefault(moment, {})[name] = value
        ordered_steps = sorted(steps_by_time.items())
        for moment, values in sorted(validation_by_time.items()):
            earlier = [step for when, step in ordered_steps if when <= moment]
            if earlier:
                validation_curve.append((int(earlier[-1]), values))
        if len(ordered_steps) >= 2 and ordered_steps[-1][1] > ordered_steps[0][1]:
            elapsed = (ordered_steps[-1][0] - ordered_steps[0][0]).total_seconds()
            seconds_per_step = elapsed / (ordered_steps[-1][1] - ordered_steps[0][1]) or None

    if "train:step" in final:
        steps = int(final["train:step"])
    elif train_curve:
        steps = train_curve[-1][0]
    else:  # no step metric at all (e.g. an emulator): a completed job ran its budget, others are unknown
        steps = job.steps if status == "Completed" else 0
    rule = tags.get(decision.TAG_STOPPED_BY_RULE)
    if status == "Completed":
        state = report_module.COMPLETED
    elif status == "Failed":
        state = report_module.FAILED
    elif status == "Stopped" and rule is not None:
        state = report_module.STOPPED
    else:
        state = report_module.INTERRUPTED
    rule_statuses = {
        item["RuleConfigurationName"]: item.get("RuleEvaluationStatus", "")
        for item in description.get("DebugRuleEvaluationStatuses", []) or []
    }
    for name, value in final.items():
        if name.startswith("rule:"):
            in_container = (
                "IssuesFound"
                if value >= 1
                else ("NoIssuesFound" if status in TERMINAL_STATUSES else "InProgress")
            )
            rule_statuses.setdefault(name.removeprefix("rule:"), in_container)
    rule_step = None
    for item in description.get("DebugRuleEvaluationStatuses", []) or []:
        if item.get("RuleConfigurationName") == rule:
            match = decision.STEP_IN_DETAILS_PATTERN.search(str(item.get("StatusDetails", "")))
            rule_step = int(match.group("step")) if match else None
    return report_module.JobRecord(
        name=job.name,
        params=dict(job.params),
        budget_steps=job.steps,
        state=state,
        steps=min(steps, job.steps),
        compute_seconds=compute,
        seconds_per_step=seconds_per_step,
        stopped_by_rule=rule,
        rule_step=rule_step,
        stop_source=tags.get(decision.TAG_STOP_SOURCE),
        rule_statuses=rule_statuses,
        train_curve=train_curve,
        validation_curve=validation_curve,
        final_validation={name: value for name, value in final.items() if name.startswith("validation:")},
        failure_reason=str(description.get("FailureReason")) if description.get("FailureReason") else None,
    )
