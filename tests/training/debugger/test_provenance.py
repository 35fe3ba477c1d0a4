"""The container signs its events with the job's key, wherever the key comes from, and names its job in any
case SageMaker spells it; the stop Lambda's decision core verifies what the container signed."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from lambdas.stop_training_job import decision
from training.debugger import provenance, signals

KEY = "key-of-sweep-lr-0001-for-these-tests-0123456789"
MIXED_CASE_JOB = "Sweep-LR-0001"
# SageMaker spells the name inside a training job's ARN in lower case in places.
LOWERCASED_ARN = "arn:aws:sagemaker:us-east-1:123456789012:training-job/sweep-lr-0001"
SIGNED_AT = datetime.datetime(2026, 11, 20, 10, 15, 31, tzinfo=datetime.UTC)


def issues_found() -> signals.RuleSignal:
    return signals.RuleSignal(
        "LossNotDecreasing", signals.RuleStatus.ISSUES_FOUND, step=40, time=SIGNED_AT, status_details="x"
    )


def test_a_mixed_case_job_with_a_lowercased_arn_is_one_job_and_its_event_verifies() -> None:
    # GIVEN SageMaker's environment for job Sweep-LR-0001 with the ARN lowercased, and the job's key
    environment = {
        "TRAINING_JOB_NAME": MIXED_CASE_JOB,
        "TRAINING_JOB_ARN": LOWERCASED_ARN,
        "AUTOSTOP_SIGNING_KEY": KEY,
    }
    # WHEN the container reads its identity (it used to raise ValueError here) and sends its event
    job = signals.JobIdentity.from_environment(environment)
    event = signals.event_envelope(job, issues_found())
    # THEN the event is signed, and the stop Lambda's decision core verifies it and stops the job
    assert event["detail"]["Provenance"]["Algorithm"] == "HMAC-SHA256"
    config = decision.Config()
    facts = decision.interpret_event(event, config)
    assert isinstance(facts, decision.EventFacts)
    description = {
        "TrainingJobName": MIXED_CASE_JOB,
        "TrainingJobArn": LOWERCASED_ARN,
        "TrainingJobStatus": "InProgress",
        "HyperParameters": {"autostop_signing_key": KEY},
    }
    verdict = decision.decide(
        facts, description, {"autostop": "enabled"}, config, now=SIGNED_AT + datetime.timedelta(seconds=5)
    )
    assert (verdict.action, verdict.job_name) == (decision.Action.STOP, MIXED_CASE_JOB)


def test_the_key_comes_from_sagemakers_hyperparameters_file(tmp_path: Path) -> None:
    # GIVEN SageMaker's hyperparameters file (values JSON-quoted by the SageMaker Python SDK)
    config_dir = tmp_path / "input" / "config"
    config_dir.mkdir(parents=True)
    (config_dir / "hyperparameters.json").write_text(
        json.dumps({"steps": "10", "autostop_signing_key": json.dumps(KEY)}), encoding="utf-8"
    )
    # WHEN the container reads its identity with the root moved there
    job = signals.JobIdentity.from_environment(
        {"TRAINING_JOB_NAME": MIXED_CASE_JOB, "AUTOSTOP_OPT_ML": str(tmp_path)}
    )
    # THEN the key is the hyperparameter's, and never shown in the identity's repr
    assert job.signing_key == KEY
    assert KEY not in repr(job)


def test_without_a_key_events_are_unsigned_and_the_lambda_refuses_them(tmp_path: Path) -> None:
    # GIVEN a job with no key anywhere
    job = signals.JobIdentity.from_environment(
        {"TRAINING_JOB_NAME": "local-job", "AUTOSTOP_OPT_ML": str(tmp_path)}
    )
    # THEN its events carry no Provenance
    assert job.signing_key is None
    assert "Provenance" not in signals.event_detail(job, issues_found())


@pytest.mark.parametrize("key", ["short", "x" * 31, "has space" * 5, "é" * 40])
def test_an_unusable_key_is_one_clear_error(key: str) -> None:
    with pytest.raises(provenance.SigningKeyError, match="AUTOSTOP_SIGNING_KEY: the signing key must be"):
        signals.JobIdentity.from_environment({"TRAINING_JOB_NAME": "job", "AUTOSTOP_SIGNING_KEY": key})


def test_new_keys_are_valid_and_distinct() -> None:
    keys = {provenance.new_signing_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(provenance.checked_key(key, "new") == key for key in keys)
