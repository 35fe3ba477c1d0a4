"""The SageMaker launcher under faults: Ctrl-C mid-request, throttling, expired credentials, a lost machine.

Every test runs the real launcher with real botocore over HTTP: SageMaker is the local fake
(tests/support/sagemaker_fake.py, AWS JSON 1.1 like the service), CloudWatch, STS and S3 are moto. The
clients make one attempt per call (``max_attempts=1``), so the launcher's own retry is what is tested, and
its sleeper is injected: no test waits.

AWS behaviours encoded here, with where AWS documents them:

- ``CreateTrainingJob`` for a name that exists answers ``ResourceInUse`` (SageMaker API reference,
  CreateTrainingJob, Errors);
- ``Search`` filters training jobs by tag with the property name ``Tags.<key>`` (SageMaker API reference,
  Search and Filter: a tag is a property named Tags.<key>);
- ``sts:GetCallerIdentity`` needs no permission (AWS STS API reference, GetCallerIdentity);
- throttling and 5xx errors are the ones to retry with backoff (AWS SDKs and Tools reference guide,
  "Retry behavior").
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from lambdas.stop_training_job import decision
from tests.support.sagemaker_fake import FakeSageMaker, Fault
from training import cli
from training.sweep import report
from training.sweep import sagemaker as sagemaker_backend
from training.sweep import spec as spec_module
from training.sweep.sagemaker import faults, preflight

# Real training (or many TensorFlow processes): a slow module, handed out first (tests/conftest.py).
pytestmark = pytest.mark.slow

EXAMPLE_SPEC = Path(spec_module.__file__).parent / "specs" / "sagemaker-example.yaml"
JOBS = ["vision-lr-001", "vision-lr-002", "vision-lr-003"]


@pytest.fixture
def fake_sagemaker(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSageMaker]:
    """SageMaker is the fake (AWS_ENDPOINT_URL_SAGEMAKER beats AWS_ENDPOINT_URL); the rest is moto."""
    with FakeSageMaker() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", fake.url)
        yield fake


def three_job_document(**sagemaker: Any) -> dict[str, Any]:
    document = spec_module.read_document(EXAMPLE_SPEC)
    assert isinstance(document, dict)
    document["search"] = {"parameters": {"learning_rate": [0.001, 0.003, 0.01]}}
    document["max_parallel_jobs"] = 2
    document["sagemaker"] = {**document["sagemaker"], **sagemaker}
    return document


def three_jobs() -> tuple[spec_module.SweepSpec, sagemaker_backend.LaunchSettings]:
    spec = spec_module.parse_spec(three_job_document(), source="test")
    return spec, sagemaker_backend.LaunchSettings.resolve(spec)


def single_attempt_clients() -> sagemaker_backend.AwsClients:
    return sagemaker_backend.aws_clients("us-east-1", max_attempts=1)


def launcher(
    directory: Path | None, sleep: Callable[[float], None], **options: Any
) -> sagemaker_backend.SageMakerSweep:
    spec, launch = three_jobs()
    return sagemaker_backend.SageMakerSweep(
        spec,
        launch,
        single_attempt_clients(),
        directory=directory,
        poll_seconds=0,
        sleep=sleep,
        log=lambda _: None,
        **options,
    )


def created(fake: FakeSageMaker) -> list[str]:
    return [
        call.params["TrainingJobName"] for call in fake.calls_to("CreateTrainingJob") if call.status == 200
    ]


def end_running_jobs(fake: FakeSageMaker, status: str = "Completed") -> None:
    for job in fake.jobs.values():
        if job.status == "InProgress":
            job.status = job.secondary_status = status


def saved_states(directory: Path) -> list[str]:
    return [job.state for job in report.SweepRecord.load(directory).jobs]


def test_ctrl_c_during_create_training_job_records_and_stops_the_job_it_created(
    fake_sagemaker: FakeSageMaker, tmp_path: Path
) -> None:
    # GIVEN a Ctrl-C (SIGINT to this process) that arrives while SageMaker is creating the first job
    fake_sagemaker.inject_action("CreateTrainingJob", lambda _: os.kill(os.getpid(), signal.SIGINT))
    # WHEN launching
    record = launcher(tmp_path, sleep=lambda _: None).run()
    # THEN the job SageMaker created is known, stopped and recorded; no other job was created
    assert created(fake_sagemaker) == ["vision-lr-001"]
    assert [call.params["TrainingJobName"] for call in fake_sagemaker.calls_to("StopTrainingJob")] == [
        "vision-lr-001"
    ]
    assert fake_sagemaker.job("vision-lr-001").status == "Stopping"
    assert record.interrupted
    expected = [report.INTERRUPTED, report.NOT_STARTED, report.NOT_STARTED]
    assert [job.state for job in record.jobs] == expected
    # AND records.json says the same
    assert saved_states(tmp_path) == expected


def test_throttling_and_5xx_while_polling_are_waited_out_with_backoff(
    fake_sagemaker: FakeSageMaker,
) -> None:
    # GIVEN DescribeTrainingJob throttled twice, then unavailable once; jobs end at the first wait
    fake_sagemaker.inject_fault("DescribeTrainingJob", Fault.THROTTLING, times=2)
    fake_sagemaker.inject_fault("DescribeTrainingJob", Fault.SERVICE_UNAVAILABLE)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        end_running_jobs(fake_sagemaker)

    # WHEN launching
    sweep = launcher(None, sleep=sleep)
    record = sweep.run()
    # THEN it waited 2, 4 and 8 seconds (doubling), and every job ran to the end
    assert waits[:3] == [2.0, 4.0, 8.0]
    assert [job.state for job in record.jobs] == [report.COMPLETED] * 3
    assert sweep.detached is None
    assert created(fake_sagemaker) == JOBS


def test_expired_credentials_while_polling_detach_with_the_jobs_recorded_running(
    fake_sagemaker: FakeSageMaker, tmp_path: Path
) -> None:
    # GIVEN credentials that expire once two jobs run
    fake_sagemaker.inject_fault("DescribeTrainingJob", Fault.EXPIRED_TOKEN, times=10)
    # WHEN launching
    sweep = launcher(tmp_path, sleep=lambda _: None)
    record = sweep.run()
    # THEN the launcher detaches: it says why, stops nothing, and records what runs and what never started
    assert sweep.detached is not None
    assert "ExpiredTokenException" in sweep.detached
    assert fake_sagemaker.calls_to("StopTrainingJob") == []
    expected = [report.RUNNING, report.RUNNING, report.NOT_STARTED]
    assert [job.state for job in record.jobs] == expected
    assert saved_states(tmp_path) == expected
    assert any("detached" in note for note in record.notes)
    # AND the running jobs keep their alarms (the stop path that still watches them)
    alarms = boto3.client("cloudwatch", region_name="us-east-1").describe_alarms()["MetricAlarms"]
    assert {alarm["AlarmName"].split("/")[0] for alarm in alarms} == {
        "autostop-vision-lr-001",
        "autostop-vision-lr-002",
    }


def test_records_json_is_rewritten_as_each_job_ends(fake_sagemaker: FakeSageMaker, tmp_path: Path) -> None:
    # GIVEN job 1 ends at the first wait, the others at the second
    snapshots: list[list[str]] = []

    def sleep(seconds: float) -> None:
        snapshots.append(saved_states(tmp_path))
        if len(snapshots) == 1:
            fake_sagemaker.job("vision-lr-001").status = "Completed"
        else:
            end_running_jobs(fake_sagemaker)

    # WHEN launching
    launcher(tmp_path, sleep=sleep).run()
    # THEN records.json showed job 1 ended while job 2 still ran and job 3 waited for a slot
    assert snapshots[0] == [report.RUNNING, report.RUNNING, report.NOT_STARTED]
    assert snapshots[1] == [report.COMPLETED, report.RUNNING, report.NOT_STARTED]
    assert saved_states(tmp_path) == [report.COMPLETED] * 3


def test_each_job_gets_its_own_signing_key_which_the_stop_lambda_reads_back(
    fake_sagemaker: FakeSageMaker,
) -> None:
    from lambdas.stop_training_job import provenance as lambda_provenance

    # WHEN launching
    launcher(None, sleep=lambda _: end_running_jobs(fake_sagemaker)).run()
    # THEN every CreateTrainingJob carried a well-formed key, a different one per job
    keys = [
        call.params["HyperParameters"]["autostop_signing_key"]
        for call in fake_sagemaker.calls_to("CreateTrainingJob")
    ]
    assert len(keys) == 3
    assert len(set(keys)) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32,256}", key) for key in keys)
    # AND the stop Lambda finds each job's key in its DescribeTrainingJob, as it verifies events with it
    sagemaker_client = boto3.client("sagemaker", region_name="us-east-1")
    for name, key in zip(JOBS, keys, strict=True):
        description = sagemaker_client.describe_training_job(TrainingJobName=name)
        assert lambda_provenance.signing_key(description) == key


def test_a_jobs_record_carries_its_billable_seconds(fake_sagemaker: FakeSageMaker) -> None:
    # GIVEN jobs that end at the first wait, SageMaker reporting 420 billable seconds for each
    def sleep(seconds: float) -> None:
        for job in fake_sagemaker.jobs.values():
            job.billable_seconds = 420
        end_running_jobs(fake_sagemaker)

    # WHEN launching; THEN each record has DescribeTrainingJob's BillableTimeInSeconds
    record = launcher(None, sleep=sleep).run()
    assert [job.billable_seconds for job in record.jobs] == [420.0] * 3


def test_a_job_that_already_exists_with_the_sweeps_tag_is_followed_not_duplicated(
    fake_sagemaker: FakeSageMaker,
) -> None:
    # GIVEN job 1 created earlier (an answer lost, a resumed sweep) and already completed
    fake_sagemaker.add_job("vision-lr-001", status="Completed", tags={"autostop:sweep": "vision-lr"})

    def sleep(seconds: float) -> None:
        end_running_jobs(fake_sagemaker)

    # WHEN launching; THEN SageMaker's ResourceInUse makes the launcher adopt it
    record = launcher(None, sleep=sleep).run()
    assert created(fake_sagemaker) == ["vision-lr-002", "vision-lr-003"]
    assert [job.state for job in record.jobs] == [report.COMPLETED] * 3


def test_a_job_of_the_same_name_from_another_sweep_is_never_adopted(fake_sagemaker: FakeSageMaker) -> None:
    fake_sagemaker.add_job("vision-lr-001", status="InProgress", tags={"autostop:sweep": "other"})
    sweep = launcher(None, sleep=lambda _: None)
    record = sweep.run()
    assert sweep.detached is not None
    assert "not part of sweep vision-lr" in sweep.detached
    assert fake_sagemaker.calls_to("StopTrainingJob") == []
    assert record.jobs[0].state == report.NOT_STARTED


@pytest.mark.usefixtures("moto_endpoint")
def test_preflight_refuses_credentials_of_another_account_than_the_roles() -> None:
    document = three_job_document(role_arn="arn:aws:iam::210987654321:role/autostop-training")
    spec = spec_module.parse_spec(document)
    launch = sagemaker_backend.LaunchSettings.resolve(spec)
    with pytest.raises(sagemaker_backend.LaunchError, match="in account 210987654321"):
        preflight.check_credentials(boto3.Session(region_name="us-east-1"), launch)


def test_the_backoff_doubles_up_to_its_cap() -> None:
    retrier = faults.Retrier(sleep=lambda _: None, log=lambda _: None, max_attempts=8)
    assert retrier.delays() == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


# --- through the command ---


SCOPE_PARAMETER = "CFN-AutoStopScopeParameter-Test"


def publish_scope(**changes: Any) -> None:
    """The stop stack's scope parameter in moto's SSM, as infra/auto_stop.py publishes it."""
    document = {
        "version": 1,
        "tagKey": "autostop",
        "tagValue": "enabled",
        "jobPrefix": "vision-",
        "stoppingRules": "*",
        "dryRun": False,
        **changes,
    }
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=SCOPE_PARAMETER, Value=json.dumps(document), Type="String", Overwrite=True
    )


def write_spec(directory: Path, *, scope_parameter: str | None = SCOPE_PARAMETER) -> Path:
    path = directory / "sweep.yaml"
    settings: dict[str, Any] = {"poll_seconds": 0.001}
    if scope_parameter:
        settings["scope_parameter"] = scope_parameter
        publish_scope()
    path.write_text(yaml.safe_dump(three_job_document(**settings)), encoding="utf-8")
    return path


def run_sweep(spec_path: Path, out: Path) -> int:
    return cli.main(["sweep", "run", str(spec_path), "--backend", "sagemaker", "--out", str(out)])


def test_a_sweep_outside_the_deployed_scope_is_refused_before_any_job(
    fake_sagemaker: FakeSageMaker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a stack deployed for jobs named team-* that only stops on ExplodingTensor
    spec_path = write_spec(tmp_path)
    publish_scope(jobPrefix="team-", stoppingRules=["ExplodingTensor"])
    # WHEN launching the vision-lr sweep (every rule stops)
    code = run_sweep(spec_path, tmp_path / "out")
    # THEN one error naming both problems, and nothing sent to SageMaker
    error = one_line_error(
        capsys, "autostop sweep run: error: the sweep is outside the deployed autostop scope"
    )
    assert "deployed job prefix 'team-'" in error
    assert "stopping.rules" in error
    assert code == 2
    assert fake_sagemaker.calls == []


def test_a_launch_without_the_scope_parameter_is_refused(
    fake_sagemaker: FakeSageMaker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_sweep(write_spec(tmp_path, scope_parameter=None), tmp_path / "out")
    assert code == 2
    one_line_error(capsys, "autostop sweep run: error: sagemaker.scope_parameter is missing")
    assert fake_sagemaker.calls == []


def test_jobs_carry_the_deployed_opt_in_tag(fake_sagemaker: FakeSageMaker, tmp_path: Path) -> None:
    # GIVEN a stack that acts on jobs tagged autostop=watched
    spec_path = write_spec(tmp_path)
    publish_scope(tagValue="watched")
    fake_sagemaker.status_on_create = "Completed"
    # WHEN launching; THEN every job carries that tag
    assert run_sweep(spec_path, tmp_path / "out") == 0
    for call in fake_sagemaker.calls_to("CreateTrainingJob"):
        tags = {tag["Key"]: tag["Value"] for tag in call.params["Tags"]}
        assert tags["autostop"] == "watched"
        assert tags["autostop:sweep"] == "vision-lr"


def one_line_error(capsys: pytest.CaptureFixture[str], prefix: str) -> str:
    error = capsys.readouterr().err
    assert error.startswith(prefix), error
    assert error.count("\n") == 1, error
    return error


def test_without_credentials_nothing_is_created_and_the_command_says_so_in_one_line(
    fake_sagemaker: FakeSageMaker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN no AWS credentials at all
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # WHEN launching
    code = cli.main(
        ["sweep", "run", str(write_spec(tmp_path)), "--backend", "sagemaker", "--out", str(tmp_path / "out")]
    )
    # THEN exit 1, one error line, and no request reached SageMaker
    error = capsys.readouterr().err
    assert code == 1
    assert error.startswith("autostop sweep run: error: no usable AWS credentials")
    assert error.count("\n") == 1
    assert fake_sagemaker.calls == []


def test_failed_jobs_make_the_command_exit_nonzero_with_their_report(
    fake_sagemaker: FakeSageMaker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN jobs that fail as soon as they are created
    fake_sagemaker.status_on_create = "Failed"
    out = tmp_path / "out"
    # WHEN launching
    code = cli.main(["sweep", "run", str(write_spec(tmp_path)), "--backend", "sagemaker", "--out", str(out)])
    # THEN exit 1, with the report of what ran
    assert code == 1
    assert saved_states(out) == [report.FAILED] * 3
    assert (out / report.REPORT_MARKDOWN).is_file()
    capsys.readouterr()


def test_resume_reattaches_by_tag_and_launches_only_the_jobs_never_created(
    fake_sagemaker: FakeSageMaker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a sweep whose launcher detached (credentials expired) with two jobs running
    out = tmp_path / "out"
    fake_sagemaker.inject_fault("DescribeTrainingJob", Fault.EXPIRED_TOKEN, times=10)
    spec_path = write_spec(tmp_path)
    assert cli.main(["sweep", "run", str(spec_path), "--backend", "sagemaker", "--out", str(out)]) == 1
    assert saved_states(out) == [report.RUNNING, report.RUNNING, report.NOT_STARTED]
    # AND meanwhile job 1 completed and the stop Lambda stopped job 2
    fake_sagemaker.clear_faults()
    fake_sagemaker.job("vision-lr-001").status = "Completed"
    stopped = fake_sagemaker.job("vision-lr-002")
    stopped.status = "Stopped"
    stopped.tags.update(
        {
            decision.TAG_STOPPED_BY_RULE: "LossNotDecreasing",
            decision.TAG_STOPPED_AT: "2026-11-20T10:15:31Z",
            decision.TAG_STOP_SOURCE: "autostop.training",
        }
    )
    fake_sagemaker.status_on_create = "Completed"
    spec_path.unlink()  # resume needs only the sweep's folder
    # WHEN resuming from another machine's point of view: the folder alone
    code = cli.main(["sweep", "resume", str(out)])
    # THEN it found both jobs by tag, launched only job 3, and the report has all three
    assert code == 0
    assert created(fake_sagemaker) == JOBS
    searches = fake_sagemaker.calls_to("Search")
    assert searches[0].params["SearchExpression"]["Filters"] == [
        {"Name": "Tags.autostop:sweep", "Operator": "Equals", "Value": "vision-lr"}
    ]
    records = report.SweepRecord.load(out)
    assert [(job.state, job.stopped_by_rule) for job in records.jobs] == [
        (report.COMPLETED, None),
        (report.STOPPED, "LossNotDecreasing"),
        (report.COMPLETED, None),
    ]
    assert "report:" in capsys.readouterr().out
    launch_file = json.loads((out / "launch.json").read_text(encoding="utf-8"))
    assert launch_file["region"] == "us-east-1"


def test_resume_of_a_folder_without_a_launch_record_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["sweep", "resume", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("autostop sweep resume: error: ")
    assert "launch.json" in error


def test_a_bug_is_not_taken_for_a_fault_but_the_records_are_kept(
    fake_sagemaker: FakeSageMaker, tmp_path: Path
) -> None:
    # GIVEN a launcher whose own code fails once a job is running (here: the per-job hyperparameters)
    calls: list[str] = []

    def hyperparameters_for(job: spec_module.JobConfig) -> dict[str, str]:
        calls.append(job.name)
        if len(calls) > 1:
            raise TypeError("a bug")
        return {}

    # WHEN launching; THEN the bug's own exception comes out (a traceback, not "cannot go on")
    with pytest.raises(TypeError, match="a bug"):
        launcher(tmp_path, sleep=lambda _: None, hyperparameters_for=hyperparameters_for).run()
    # AND records.json still says what runs
    assert saved_states(tmp_path) == [report.RUNNING, report.NOT_STARTED, report.NOT_STARTED]
