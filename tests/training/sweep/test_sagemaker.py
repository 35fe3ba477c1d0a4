"""The SageMaker backend: requests built by the real SDK 2.x offline, and launched over HTTP against moto.

No AWS account is reached: the dry run runs with no credentials and every endpoint pointed at a closed port
(any request would fail the test); launches go through real boto3 to the moto server (``moto_endpoint``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdas.stop_training_job import decision, sweep_settings
from tests.support import moto_server
from training.debugger import rung_reports
from training.sweep import cli as sweep_cli
from training.sweep import local, report
from training.sweep import sagemaker as sagemaker_backend
from training.sweep import spec as spec_module
from training.sweep import status as status_module

EXAMPLE_SPEC = Path(spec_module.__file__).parent / "specs" / "sagemaker-example.yaml"
TRAIN_LINE = "step=120 loss=0.1234 ssim=0.8766 l2=0.0101 learning_rate=0.001"
VALIDATION_LINE = "step=120 val_loss=0.1301 val_ssim=0.8699 val_l2=0.0112"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials, and every AWS endpoint a closed port: any request the dry run made would fail."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{moto_server.free_port()}")


def small_spec(**sagemaker: Any) -> spec_module.SweepSpec:
    document = spec_module.read_document(EXAMPLE_SPEC)
    assert isinstance(document, dict)
    document["search"] = {"parameters": {"learning_rate": [0.001, 0.003, 0.01]}}
    document["max_parallel_jobs"] = 2
    document["sagemaker"] = {**document["sagemaker"], **sagemaker}
    return spec_module.parse_spec(document, source="test")


def planned_requests(spec: spec_module.SweepSpec) -> list[sagemaker_backend.PlannedJob]:
    return sagemaker_backend.plan(spec, sagemaker_backend.LaunchSettings.resolve(spec))


@pytest.mark.usefixtures("offline")
def test_dry_run_requests_carry_the_tag_rules_hook_metrics_spot_and_alarms() -> None:
    # GIVEN the example SageMaker spec with managed rules on
    spec = small_spec(managed_rules=True)
    # WHEN planning its jobs offline
    planned = planned_requests(spec)
    # THEN one CreateTrainingJob per job, named <sweep>-NNN
    assert [item.create_training_job["TrainingJobName"] for item in planned] == [
        "vision-lr-001",
        "vision-lr-002",
        "vision-lr-003",
    ]
    request = planned[1].create_training_job
    # AND the opt-in tag the stop Lambda requires, the sweep tag and the spec's tags
    tags = {tag["Key"]: tag["Value"] for tag in request["Tags"]}
    assert tags == {
        "autostop": "enabled",
        "autostop:sweep": "vision-lr",
        "team": "vision",
        "cost-center": "ml-research",
    }
    # AND the hyperparameters as strings, with the in-container evaluator's rule configurations
    hyperparameters = request["HyperParameters"]
    assert hyperparameters["learning_rate"] == "0.003"
    assert hyperparameters["steps"] == "5000"
    assert json.loads(hyperparameters["debugger_rules"]) == spec.rule_configurations()
    assert hyperparameters["debugger_put_events"] == "true"
    # AND the hook configuration names each collection once, with the spec's save intervals
    collections = request["DebugHookConfig"]["CollectionConfigurations"]
    names = [collection["CollectionName"] for collection in collections]
    assert len(names) == len(set(names))
    by_name = {collection["CollectionName"]: collection for collection in collections}
    assert by_name["losses"]["CollectionParameters"] == {"save_interval": "20"}
    assert by_name["gradients"]["CollectionParameters"] == {"save_interval": "100"}
    assert request["DebugHookConfig"]["S3OutputPath"] == "s3://autostop-debug-output-123456789012/sweeps/"
    # AND managed Debugger rules with the spec's parameters
    rules = {rule["RuleConfigurationName"]: rule for rule in request["DebugRuleConfigurations"]}
    assert set(rules) == {"LossNotDecreasing", "VanishingGradient", "ExplodingTensor", "Overfit"}
    for rule in spec.rules:
        expected = {"rule_to_invoke": rule.rule_to_invoke, **rule.parameters}
        assert rules[rule.name]["RuleParameters"] == expected
    # AND metric definitions for the training lines, the step and each rule line
    definitions = {
        item["Name"]: item["Regex"] for item in request["AlgorithmSpecification"]["MetricDefinitions"]
    }
    assert re.search(definitions["train:loss"], TRAIN_LINE)[1] == "0.1234"  # type: ignore[index]
    assert re.search(definitions["train:loss"], VALIDATION_LINE) is None
    assert re.search(definitions["validation:ssim"], VALIDATION_LINE)[1] == "0.8699"  # type: ignore[index]
    assert re.search(definitions["train:step"], TRAIN_LINE)[1] == "120"  # type: ignore[index]
    assert re.search(definitions["train:step"], VALIDATION_LINE) is None
    for rule in spec.rules:
        assert re.search(definitions[f"rule:{rule.name}"], f"rule:{rule.name}=1")[1] == "1"  # type: ignore[index]
    # AND spot training with a per-job checkpoint prefix
    assert request["EnableManagedSpotTraining"] is True
    assert (
        request["CheckpointConfig"]["S3Uri"] == "s3://autostop-checkpoints-123456789012/sweeps/vision-lr-002"
    )
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 21600, "MaxWaitTimeInSeconds": 43200}
    # AND the GPU image, since ml.g5.xlarge is a GPU instance
    assert request["AlgorithmSpecification"]["TrainingImage"] == spec.sagemaker.gpu_image_uri
    # AND one alarm per rule on the rule metric of this job's host
    alarms = {alarm["AlarmName"]: alarm for alarm in planned[1].alarms}
    assert set(alarms) == {f"autostop-vision-lr-002/{rule.name}" for rule in spec.rules}
    alarm = alarms["autostop-vision-lr-002/ExplodingTensor"]
    assert alarm["Namespace"] == "/aws/sagemaker/TrainingJobs"
    assert alarm["MetricName"] == "rule:ExplodingTensor"
    assert alarm["Dimensions"] == [{"Name": "Host", "Value": "vision-lr-002/algo-1"}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1.0)


@pytest.mark.usefixtures("offline")
def test_managed_rules_can_be_switched_off() -> None:
    # GIVEN managed_rules off (the default: managed Debugger is closed to new customers)
    planned = planned_requests(small_spec(managed_rules=False))
    # THEN no DebugRuleConfigurations; the container evaluates the rules (hyperparameter) and the hook stays
    request = planned[0].create_training_job
    assert "DebugRuleConfigurations" not in request
    assert "debugger_rules" in request["HyperParameters"]
    assert request["DebugHookConfig"]["CollectionConfigurations"]


def test_an_alarm_of_the_plan_reaches_the_stop_decision_as_its_job_and_rule() -> None:
    # GIVEN the alarm the launcher creates for a job's rule, in ALARM, as EventBridge delivers it
    spec = small_spec()
    job = spec.jobs()[0]
    alarm = sagemaker_backend.alarm_requests(spec, job, "autostop-")[0]
    event = local.alarm_event(
        job.name, spec.rules[0].name, alarm_prefix="autostop-", moment=datetime.datetime.now(datetime.UTC)
    )
    assert event["detail"]["alarmName"] == alarm["AlarmName"]
    assert event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] == {
        dimension["Name"]: dimension["Value"] for dimension in alarm["Dimensions"]
    }
    # WHEN the decision core reads it
    facts = decision.interpret_event(event, decision.Config())
    # THEN it names this job and this rule
    assert isinstance(facts, decision.EventFacts)
    assert (facts.job_name, facts.issues[0].rule_name) == (job.name, spec.rules[0].name)


def test_the_metric_definitions_are_the_training_containers() -> None:
    # GIVEN the documented metric definitions (tests/training/test_callbacks.py ties them to the code,
    # which imports TensorFlow; the launcher must not)
    text = (Path(__file__).parents[3] / "docs" / "training.md").read_text(encoding="utf-8")
    block = text.split("<!-- metric-definitions:", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    # THEN the launcher sends exactly those
    assert list(sagemaker_backend.TRAINING_METRIC_DEFINITIONS) == json.loads(block)


def test_launching_needs_an_image_a_role_and_s3_data() -> None:
    document = spec_module.read_document(EXAMPLE_SPEC)
    assert isinstance(document, dict)
    document["sagemaker"] = {"region": "us-east-1"}
    document["datasets"] = {"renders": {"train": "data/shards"}}
    spec = spec_module.parse_spec(document)
    with pytest.raises(sagemaker_backend.LaunchError) as raised:
        sagemaker_backend.LaunchSettings.resolve(spec)
    message = str(raised.value)
    for expected in ("training image URI", "execution role", "output_path", "SageMaker reads s3://"):
        assert expected in message


@pytest.mark.usefixtures("offline")
def test_the_dry_run_command_prints_every_request() -> None:
    # GIVEN the CLI; WHEN running the example spec as a SageMaker dry run
    parser = argparse.ArgumentParser()
    sweep_cli.register(parser.add_subparsers())
    arguments = parser.parse_args(["sweep", "run", str(EXAMPLE_SPEC), "--backend", "sagemaker", "--dry-run"])
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = arguments.handler(arguments)
    # THEN it prints 12 CreateTrainingJob and 48 PutMetricAlarm requests and exits 0
    text = output.getvalue()
    assert code == 0
    assert text.count("# CreateTrainingJob vision-lr-") == 12
    assert text.count("# PutMetricAlarm autostop-vision-lr-") == 48
    assert "nothing is sent" in text


class RunningJobs:
    """The real boto3 client (to moto), except that ``describe_training_job`` reports InProgress for the
    first ``polls[job]`` describes of a job: moto completes every job the moment it is created, so without
    this the launcher's queue could never be seen holding jobs back. Every other call goes to moto."""

    def __init__(self, client: Any, polls: dict[str, int], final: dict[str, str] | None = None) -> None:
        self.client = client
        self.polls = polls
        self.final = final or {}
        self.seen: dict[str, int] = {}
        self.in_flight_at_create: list[int] = []
        self.stopped: list[str] = []

    def describe_training_job(self, **arguments: Any) -> dict[str, Any]:
        name = arguments["TrainingJobName"]
        description = self.client.describe_training_job(**arguments)
        self.seen[name] = self.seen.get(name, 0) + 1
        if self.seen[name] <= self.polls.get(name, 1):
            description["TrainingJobStatus"] = "InProgress"
        elif name in self.final:
            description["TrainingJobStatus"] = self.final[name]
        return description

    def create_training_job(self, **arguments: Any) -> dict[str, Any]:
        running = sum(1 for name, count in self.seen.items() if count <= self.polls.get(name, 1))
        self.in_flight_at_create.append(running)
        self.seen.setdefault(arguments["TrainingJobName"], 0)
        return self.client.create_training_job(**arguments)

    def stop_training_job(self, **arguments: Any) -> dict[str, Any]:
        """moto has no StopTrainingJob (HTTP 500): the job is recorded as stopped here instead."""
        name = arguments["TrainingJobName"]
        self.stopped.append(name)
        self.polls[name] = 0
        self.final[name] = "Stopped"
        return {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_launch_keeps_at_most_n_jobs_in_flight_creates_and_deletes_alarms(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN 3 jobs, 2 in flight at most; job 1 runs for 1 poll, job 2 for 4 and is then stopped by the stop
    # Lambda (its tags), job 3 for 1
    import sagemaker

    spec = small_spec()
    launch = sagemaker_backend.LaunchSettings.resolve(spec)
    session = boto3.Session(region_name="us-east-1")
    fake = RunningJobs(
        session.client("sagemaker"), polls={"vision-lr-002": 4}, final={"vision-lr-002": "Stopped"}
    )
    cloudwatch = session.client("cloudwatch")
    clients = sagemaker_backend.AwsClients(
        sagemaker=fake,
        cloudwatch=cloudwatch,
        session=sagemaker.Session(boto_session=session, sagemaker_client=fake),
    )
    alarms_seen: list[str] = []

    def watch(seconds: float) -> None:  # called between polls: record the alarms that exist now
        alarms_seen.extend(alarm["AlarmName"] for alarm in cloudwatch.describe_alarms()["MetricAlarms"])
        if fake.seen.get("vision-lr-002") == 2:
            arn = f"arn:aws:sagemaker:us-east-1:{moto_server.ACCOUNT_ID}:training-job/vision-lr-002"
            fake.client.add_tags(
                ResourceArn=arn,
                Tags=[
                    {"Key": decision.TAG_STOPPED_BY_RULE, "Value": "LossNotDecreasing"},
                    {"Key": decision.TAG_STOPPED_AT, "Value": "2026-11-20T10:15:31Z"},
                    {"Key": decision.TAG_STOP_SOURCE, "Value": "autostop.training"},
                ],
            )

    # WHEN launching
    record = sagemaker_backend.SageMakerSweep(
        spec, launch, clients, poll_seconds=0, sleep=watch, log=lambda _: None
    ).run()
    # THEN job 3 waited until job 1 ended, and was created while job 2 still ran: never more than 2
    assert fake.in_flight_at_create == [0, 1, 1]
    assert fake.seen["vision-lr-001"] == 2
    names = [
        summary["TrainingJobName"] for summary in fake.client.list_training_jobs()["TrainingJobSummaries"]
    ]
    assert sorted(names) == ["vision-lr-001", "vision-lr-002", "vision-lr-003"]
    # AND each job's alarms existed while it ran, and are gone once it ended
    assert {f"autostop-vision-lr-00{index}/LossNotDecreasing" for index in (1, 2, 3)} <= set(alarms_seen)
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []
    # AND the records say who stopped what
    states = {job.name: (job.state, job.stopped_by_rule) for job in record.jobs}
    assert states == {
        "vision-lr-001": ("Completed", None),
        "vision-lr-002": ("Stopped", "LossNotDecreasing"),
        "vision-lr-003": ("Completed", None),
    }
    assert record.jobs[1].stop_source == "autostop.training"


@pytest.mark.usefixtures("moto_endpoint")
def test_status_shows_jobs_rule_statuses_and_who_stopped_what() -> None:
    # GIVEN two jobs of a sweep (and one of another sweep), one tagged by the stop Lambda, one with an
    # alarm in ALARM
    session = boto3.Session(region_name="us-east-1")
    client, cloudwatch = session.client("sagemaker"), session.client("cloudwatch")
    for name in ("vision-lr-001", "vision-lr-002", "vision-lr-0021", "other-001"):
        client.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={
                "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1",
                "TrainingInputMode": "File",
            },
            RoleArn="arn:aws:iam::123456789012:role/r",
            OutputDataConfig={"S3OutputPath": "s3://bucket/out"},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
            Tags=[{"Key": "autostop", "Value": "enabled"}],
        )
    client.add_tags(
        ResourceArn=f"arn:aws:sagemaker:us-east-1:{moto_server.ACCOUNT_ID}:training-job/vision-lr-001",
        Tags=[
            {"Key": decision.TAG_STOPPED_BY_RULE, "Value": "ExplodingTensor"},
            {"Key": decision.TAG_STOPPED_AT, "Value": "2026-11-20T10:15:31Z"},
            {"Key": decision.TAG_STOP_SOURCE, "Value": "aws.cloudwatch"},
        ],
    )
    spec = small_spec()
    for request in sagemaker_backend.alarm_requests(spec, spec.jobs()[1], "autostop-"):
        cloudwatch.put_metric_alarm(**request)
    cloudwatch.set_alarm_state(
        AlarmName="autostop-vision-lr-002/VanishingGradient",
        StateValue="ALARM",
        StateReason="rule:VanishingGradient=1",
    )
    # WHEN asking for the sweep's status
    statuses = status_module.sagemaker_status(
        "vision-lr", sagemaker_client=client, cloudwatch_client=cloudwatch, alarm_prefix="autostop-"
    )
    # THEN only its jobs, with the stop tags and the alarm-derived rule statuses
    assert [item.name for item in statuses] == ["vision-lr-001", "vision-lr-002"]
    first, second = statuses
    assert (first.stopped_by_rule, first.stopped_at, first.stop_source) == (
        "ExplodingTensor",
        "2026-11-20T10:15:31Z",
        "aws.cloudwatch",
    )
    assert second.rules["VanishingGradient"] == "IssuesFound"
    assert second.rules["LossNotDecreasing"] == "InProgress"
    table = status_module.render(statuses)
    assert "ExplodingTensor" in table
    assert "2 job(s); 1 stopped by a rule" in table
    # AND each job's page in the SageMaker console
    assert (
        "  vision-lr-001: https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1"
        "#/jobs/vision-lr-001"
    ) in table.splitlines()


def test_ctrl_c_stops_the_launched_jobs_and_reports_the_rest_as_not_started(moto_endpoint: str) -> None:
    # GIVEN 3 jobs, 2 in flight at most, both still running when Ctrl-C arrives (during the first wait)
    import sagemaker

    spec = small_spec()
    launch = sagemaker_backend.LaunchSettings.resolve(spec)
    session = boto3.Session(region_name="us-east-1")
    fake = RunningJobs(session.client("sagemaker"), polls={"vision-lr-001": 99, "vision-lr-002": 99})
    cloudwatch = session.client("cloudwatch")
    clients = sagemaker_backend.AwsClients(
        sagemaker=fake,
        cloudwatch=cloudwatch,
        session=sagemaker.Session(boto_session=session, sagemaker_client=fake),
    )

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    # WHEN launching
    record = sagemaker_backend.SageMakerSweep(
        spec, launch, clients, poll_seconds=0, sleep=interrupt, log=lambda _: None
    ).run()
    # THEN the two running jobs were stopped, their alarms deleted, the third never created
    assert fake.stopped == ["vision-lr-001", "vision-lr-002"]
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []
    assert record.interrupted
    assert [job.state for job in record.jobs] == [report.INTERRUPTED, report.INTERRUPTED, report.NOT_STARTED]


RULE_EVALUATOR = "759209512951.dkr.ecr.us-west-2.amazonaws.com/sagemaker-debugger-rule-evaluator:latest"


def spec_with_latent_cluster_rule(**sagemaker: Any) -> spec_module.SweepSpec:
    document = spec_module.read_document(EXAMPLE_SPEC)
    assert isinstance(document, dict)
    document["search"] = {"parameters": {"learning_rate": [0.001, 0.003]}}
    latent_cluster = {
        "RuleConfigurationName": "LatentCluster",
        "RuleParameters": {"rule_to_invoke": "LatentClusterRule", "ratio_threshold": "0.85", "patience": "2"},
    }
    document["rules"] = [*document["rules"], latent_cluster]
    document["debugger"]["collections"]["embeddings"] = {"save_interval": "250"}
    document["sagemaker"] = {**document["sagemaker"], **sagemaker}
    return spec_module.parse_spec(document, source="test")


@pytest.mark.usefixtures("offline")
def test_latent_cluster_rule_is_attached_as_a_custom_rule_with_its_source_in_the_output_path() -> None:
    # GIVEN managed rules on and AWS's custom rule evaluator image named
    spec = spec_with_latent_cluster_rule(managed_rules=True, custom_rule_image_uri=RULE_EVALUATOR)
    launch = sagemaker_backend.LaunchSettings.resolve(spec)
    # WHEN planning offline
    planned = sagemaker_backend.plan(spec, launch)
    # THEN every job carries the custom rule: the evaluator image, the content-addressed source the sweep
    # uploads, the class to invoke and the spec's parameters, on the embeddings collection
    uris = set()
    for item in planned:
        request = item.create_training_job
        rules = {rule["RuleConfigurationName"]: rule for rule in request["DebugRuleConfigurations"]}
        custom = rules["LatentCluster"]
        assert custom["RuleEvaluatorImage"] == RULE_EVALUATOR
        assert custom["InstanceType"] == "ml.t3.medium"
        parameters = custom["RuleParameters"]
        assert parameters["rule_to_invoke"] == "LatentClusterRule"
        assert (parameters["ratio_threshold"], parameters["patience"]) == ("0.85", "2")
        assert parameters["source_s3_uri"].startswith(
            "s3://autostop-models-123456789012/sweeps/autostop-rules/"
        )
        assert parameters["source_s3_uri"].endswith("/latent_cluster_rule.py")
        uris.add(parameters["source_s3_uri"])
        assert "LossNotDecreasing" in rules  # the managed built-ins are still there
        collections = request["DebugHookConfig"]["CollectionConfigurations"]
        assert {
            "CollectionName": "embeddings",
            "CollectionParameters": {"save_interval": "250"},
        } in collections
    assert uris == {sagemaker_backend.custom_rule_source_uri(launch)}
    # AND the dry run says it would upload the source once
    lines: list[str] = []
    sagemaker_backend.print_plan(planned, spec, lines.append)
    assert sum(line.startswith("# PutObject s3://autostop-models-") for line in lines) == 1


@pytest.mark.usefixtures("offline")
def test_without_the_evaluator_image_the_latent_cluster_rule_runs_in_the_container_only() -> None:
    spec = spec_with_latent_cluster_rule(managed_rules=True)
    planned = sagemaker_backend.plan(spec, sagemaker_backend.LaunchSettings.resolve(spec))
    request = planned[0].create_training_job
    names = {rule["RuleConfigurationName"] for rule in request["DebugRuleConfigurations"]}
    assert "LatentCluster" not in names
    assert "LatentClusterRule" in request["HyperParameters"]["debugger_rules"]


def test_a_latent_cluster_rule_that_would_run_nowhere_is_refused_before_launch() -> None:
    spec = spec_with_latent_cluster_rule(managed_rules=True, in_container_rules=False)
    with pytest.raises(sagemaker_backend.LaunchError, match="LatentCluster would run nowhere"):
        sagemaker_backend.LaunchSettings.resolve(spec)


def test_bad_custom_rule_parameters_are_refused_before_any_job_is_created() -> None:
    spec = spec_with_latent_cluster_rule(managed_rules=True, custom_rule_image_uri=RULE_EVALUATOR)
    launch = sagemaker_backend.LaunchSettings.resolve(spec)
    with pytest.raises(ValueError, match="unknown parameter"):
        sagemaker_backend.custom_rule_arguments("LatentCluster", {"ratio": "0.9"}, launch)


def test_the_custom_rule_source_is_uploaded_over_http_where_the_jobs_point(moto_endpoint: str) -> None:
    # GIVEN the sweep's model bucket in moto (real botocore over HTTP)
    import sagemaker

    from training.analysis import clustering

    spec = spec_with_latent_cluster_rule(managed_rules=True, custom_rule_image_uri=RULE_EVALUATOR)
    launch = sagemaker_backend.LaunchSettings.resolve(spec)
    session = boto3.Session(region_name="us-east-1")
    s3 = session.client("s3")
    s3.create_bucket(Bucket="autostop-models-123456789012")
    # WHEN the launcher uploads the source
    uri = sagemaker_backend.upload_custom_rule_source(sagemaker.Session(boto_session=session), launch)
    # THEN the object is the standalone clustering module, byte for byte, where the jobs point
    assert uri == sagemaker_backend.custom_rule_source_uri(launch)
    key = uri.removeprefix("s3://autostop-models-123456789012/")
    body = s3.get_object(Bucket="autostop-models-123456789012", Key=key)["Body"].read()
    assert body == Path(clustering.CUSTOM_RULE_SOURCE).read_bytes()


def cross_job_spec(**sagemaker: Any) -> spec_module.SweepSpec:
    """The small example sweep with its jobs compared across the sweep (ASHA from step 500)."""
    document = spec_module.read_document(EXAMPLE_SPEC)
    assert isinstance(document, dict)
    document["search"] = {"parameters": {"learning_rate": [0.001, 0.003, 0.01]}}
    document["sagemaker"] = {**document["sagemaker"], **sagemaker}
    document["cross_job"] = {"policy": "asha", "grace_period": 500, "min_reports": 2}
    return spec_module.parse_spec(document, source="test")


@pytest.mark.usefixtures("offline")
def test_a_cross_job_section_gives_every_job_the_comparison_the_lambda_judges_with() -> None:
    # GIVEN the example spec with its jobs compared across the sweep
    spec = cross_job_spec()
    # WHEN planning its jobs offline
    planned = planned_requests(spec)
    # THEN every job carries the same autostop_cross_job hyperparameter: sweep, objective, settings
    values = {item.create_training_job["HyperParameters"]["autostop_cross_job"] for item in planned}
    assert len(values) == 1
    (value,) = values
    comparison = sweep_settings.decode(value)
    assert (comparison.sweep, comparison.metric) == (spec.name, spec.objective.metric)
    assert comparison.settings == spec.cross_job_settings()
    # AND the rungs the container reports at are written out (the image does not ship the cross-job core)
    assert json.loads(value)["rungs"] == [500, 1000, 2000, 4000]
    # AND the container's own reader accepts it
    reporting = rung_reports.parse_reporting(value, "test")
    assert (reporting.metric, reporting.rungs) == (spec.objective.metric, (500, 1000, 2000, 4000))


@pytest.mark.usefixtures("offline")
def test_a_sweep_without_a_cross_job_section_gets_no_comparison() -> None:
    planned = planned_requests(small_spec())
    assert all("autostop_cross_job" not in item.create_training_job["HyperParameters"] for item in planned)


@pytest.mark.parametrize(
    "sagemaker", [{"put_events": False}, {"network_isolation": True}], ids=["no-put-events", "isolated"]
)
def test_a_cross_job_section_whose_jobs_could_not_report_is_refused(sagemaker: dict[str, Any]) -> None:
    # GIVEN a compared sweep whose jobs could not call events:PutEvents
    spec = cross_job_spec(**sagemaker)
    # WHEN launching it on SageMaker THEN the launcher says so before any job exists
    with pytest.raises(
        sagemaker_backend.LaunchError, match="cross_job needs every job to send its rung reports"
    ):
        sagemaker_backend.LaunchSettings.resolve(spec)
