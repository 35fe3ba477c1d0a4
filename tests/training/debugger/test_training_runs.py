"""Real training runs, recorded and judged while they run: bad runs fire the right rule, good runs none.

One rule configuration (``RULES``) judges every run, as one sweep spec would judge every job of a sweep. The
runs are tiny but real: the training helper's trainer and loop on rendered 6-view 32x32 designs (the
``rendered_shards`` fixture), a few dozen steps, tensors saved every 5 steps (gradients every step). Each
run happens once per module; the tests read what it left: the smdebug trial, the rule statuses, the signals.

Every bad run is bad by construction, whatever CPU runs it (the suite runs on x86-64 Intel and AMD and on
arm64): a learning rate of exactly 0 leaves every weight as initialized; NaN in the input views makes the
loss NaN at the first step; a ReLU layer whose bias starts at -100 outputs 0 for every input, so no
gradient reaches any layer before it. No assertion depends on how one CPU rounds a float.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import boto3
import keras
import numpy as np
import pytest
import tensorflow as tf
from smdebug.core.modes import ModeKeys
from smdebug.exceptions import NoMoreData, RuleEvaluationConditionMet
from smdebug.rules import invoke_rule
from smdebug.trials import create_trial

from infra import event_patterns
from infra.config import AutostopSettings
from lambdas.stop_training_job import decision
from tests.support import event_pattern_matcher, moto_server
from tests.training.conftest import RenderedShards
from tests.training.debugger import support
from training import data, hparams, trainer
from training.debugger import config, evaluator, layout, rules, signals, writer

# Real training (or many TensorFlow processes): a slow module, handed out first (tests/conftest.py).
pytestmark = pytest.mark.slow

HYPERPARAMETERS: dict[str, Any] = {
    "image_size": 32,
    "num_views": 6,
    "base_filters": 4,
    "bottleneck_width": 64,
    "embedding_size": 12,
    "batch_size": 8,
    "learning_rate": 0.01,
    "loss": "ssim",
    "seed": 3,
}
VALIDATION_FRACTION = 0.25
HOOK_DOCUMENT = {
    "HookParameters": {"save_interval": "5"},
    "CollectionConfigurations": [
        *({"CollectionName": name} for name in ("losses", "metrics", "weights", "biases", "embeddings")),
        # Every step: the trainer then compiles only its gradient-recording step (one trace, not two).
        {"CollectionName": "gradients", "CollectionParameters": {"save_interval": "1"}},
        {"CollectionName": "outputs", "CollectionParameters": {"include_regex": "^outputs/embedding$"}},
    ],
}
# The sweep's rules, every one at its defaults.
RULES = [
    {"RuleConfigurationName": "LossNotDecreasing", "RuleParameters": {"rule_to_invoke": "LossNotDecreasing"}},
    {"RuleConfigurationName": "VanishingGradient", "RuleParameters": {"rule_to_invoke": "VanishingGradient"}},
    {"RuleConfigurationName": "ExplodingTensor", "RuleParameters": {"rule_to_invoke": "ExplodingTensor"}},
    {"RuleConfigurationName": "Overfit", "RuleParameters": {"rule_to_invoke": "Overfit"}},
    {"RuleConfigurationName": "LatentClusterRule", "RuleParameters": {"rule_to_invoke": "LatentClusterRule"}},
]
RULE_NAMES = [rule["RuleConfigurationName"] for rule in RULES]


class CrashingRule(rules.AutostopRule):
    """A rule with a bug (it raises from step 10 on): it must end in Error and leave training alone."""

    PARAMETERS: ClassVar[dict[str, Any]] = {}

    def invoke_at_step(self, step: int) -> bool:
        if layout.training_step_of(step) >= 10:
            raise ZeroDivisionError("division by zero")
        return False


@dataclasses.dataclass
class Run:
    trained: trainer.AutoencoderTrainer
    result: trainer.FitResult
    trial_dir: str
    statuses: dict[str, str]
    states: dict[str, evaluator.RuleState]
    recorder: support.Recorder
    lines: list[str]
    events_file: Path
    probe: writer.Probe | None

    def trial(self) -> Any:
        return create_trial(self.trial_dir)

    def local_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.events_file.read_text(encoding="utf-8").splitlines()]


_DATASETS: dict[Path, tuple[tf.data.Dataset, tf.data.Dataset, writer.Probe]] = {}


def _datasets(shards: RenderedShards) -> tuple[tf.data.Dataset, tf.data.Dataset, writer.Probe]:
    """Training and validation batches and the probe, made once per module (every run reads the same)."""
    if shards.path in _DATASETS:
        return _DATASETS[shards.path]
    common = {"image_size": shards.image_size, "num_views": shards.num_views}
    train = data.load_dataset(
        shards.path,
        split="train",
        validation_fraction=VALIDATION_FRACTION,
        shuffle=True,
        seed=HYPERPARAMETERS["seed"],
        repeat=True,
        drop_remainder=True,
        batch_size=HYPERPARAMETERS["batch_size"],
        **common,
    )
    validation = data.load_dataset(
        shards.path, split="validation", validation_fraction=VALIDATION_FRACTION, batch_size=8, **common
    )
    probe = writer.probe_from_dataset(data.load_examples(shards.path, **common), size=24)
    _DATASETS[shards.path] = (train, validation, probe)
    return train, validation, probe


def _run(
    root: Path,
    trained: trainer.AutoencoderTrainer,
    shards: RenderedShards,
    *,
    steps: int,
    validate: bool,
    rules_json: list[dict[str, Any]] = RULES,
    extra_sinks: tuple[signals.Sink, ...] = (),
    validation_interval: int = 20,
    train_batches: tf.data.Dataset | None = None,
) -> Run:
    """Train with the writer and the evaluator attached, as the training entry point does."""
    train, validation, probe = _datasets(shards)
    train = train if train_batches is None else train_batches
    configurations = config.parse_rule_configurations(json.dumps(rules_json))
    hook = config.parse_debug_hook_config(HOOK_DOCUMENT, source="test", out_dir=str(root / "tensors"))
    hook = hook.with_required(evaluator.required_collections(configurations))
    lines: list[str] = []
    recorder = support.Recorder()
    events_file = root / "rule-events.jsonl"
    sinks = [
        signals.MetricLogLineSink(write=lines.append),
        signals.JsonLinesSink(events_file, support.JOB),
        recorder.sink,
        *extra_sinks,
    ]
    rule_evaluator = evaluator.RuleEvaluator(
        configurations,
        dispatcher=signals.SignalDispatcher(sinks, log=lines.append),
        registry={**rules.RULES, "CrashingRule": CrashingRule},
        clock=support.fixed_clock,
        log=lines.append,
    )
    tensor_writer = writer.DebuggerTensorWriter(
        hook, probe=probe, listeners=[rule_evaluator], log=lines.append
    )
    result = trainer.fit(
        trained,
        train,
        total_steps=steps,
        validation_batches=validation if validate else None,
        validation_interval=validation_interval if validate else 0,
        callbacks=[tensor_writer],
    )
    states = {state.configuration.name: state for state in rule_evaluator.snapshot()}
    return Run(
        trained=trained,
        result=result,
        trial_dir=hook.out_dir,
        statuses=rule_evaluator.statuses(),
        states=states,
        recorder=recorder,
        lines=lines,
        events_file=events_file,
        probe=probe,
    )


def _trainer(**overrides: Any) -> trainer.AutoencoderTrainer:
    return trainer.build_trainer(hparams.HyperParameters(**{**HYPERPARAMETERS, **overrides}))


@pytest.fixture(scope="module")
def normal_run(rendered_shards: RenderedShards, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("normal"), _trainer(), rendered_shards, steps=40, validate=True)


@contextlib.contextmanager
def _aws_on(url: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in moto_server.FAKE_CREDENTIALS.items():
            patch.setenv(name, value)
        patch.setenv("AWS_ENDPOINT_URL", url)
        yield


@pytest.fixture(scope="module")
def zero_learning_rate_run(
    rendered_shards: RenderedShards, tmp_path_factory: pytest.TempPathFactory, moto_server_url: str
) -> tuple[Run, list[dict[str, Any]]]:
    """Learning rate 0 (validation every 10 steps), plus a crashing rule; PutEvents goes over HTTP to moto,
    which routes to a queue."""
    with _aws_on(moto_server_url):
        sqs = boto3.client("sqs", region_name=moto_server.REGION)
        events = boto3.client("events", region_name=moto_server.REGION)
        queue_url = sqs.create_queue(QueueName="zero-learning-rate-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name="zero-learning-rate",
            EventPattern=json.dumps(
                {"source": ["autostop.training"], "detail": {"TrainingJobName": ["sweep-lr-0001"]}}
            ),
        )
        events.put_targets(Rule="zero-learning-rate", Targets=[{"Id": "queue", "Arn": queue_arn}])
        rules_json = [
            *RULES,
            {"RuleConfigurationName": "Buggy", "RuleParameters": {"rule_to_invoke": "CrashingRule"}},
        ]
        run = _run(
            tmp_path_factory.mktemp("zero_lr"),
            _trainer(learning_rate=0.0),
            rendered_shards,
            steps=41,
            validate=True,
            validation_interval=10,
            rules_json=rules_json,
            extra_sinks=(signals.EventBridgeSink(support.JOB, log=lambda _: None),),
        )
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return run, [json.loads(message["Body"]) for message in received.get("Messages", [])]


def _nan_batches() -> tf.data.Dataset:
    """Batches whose views hold one NaN pixel: the reconstruction loss compares the views themselves, so the
    loss is NaN from the first step on, whatever the weights (a corrupt record, by construction)."""
    views = np.random.default_rng(0).random((8, 32, 32, 6), np.float32)
    views[0, 0, 0, 0] = np.nan
    return tf.data.Dataset.from_tensor_slices(views).batch(8).repeat()


@pytest.fixture(scope="module")
def exploding_run(rendered_shards: RenderedShards, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(
        tmp_path_factory.mktemp("exploding"),
        _trainer(),
        rendered_shards,
        steps=8,
        validate=False,
        train_batches=_nan_batches(),
    )


DEAD_BIAS = -100.0


def _dead_bottleneck_trainer(shards: RenderedShards) -> trainer.AutoencoderTrainer:
    """A ReLU bottleneck layer whose bias starts at -100: its pre-activations (inputs in [0, 1], small
    weights) are all negative, so it outputs exactly 0 and passes exactly 0 gradient back."""
    keras.utils.set_random_seed(5)
    shape = (shards.image_size, shards.image_size, shards.num_views)
    views = keras.Input(shape, name="views")
    hidden = keras.layers.Flatten(name="flatten")(views)
    hidden = keras.layers.Dense(16, activation="relu", name="encoder_dense")(hidden)
    hidden = keras.layers.Dense(
        16,
        activation="relu",
        bias_initializer=keras.initializers.Constant(DEAD_BIAS),
        name="dead_bottleneck",
    )(hidden)
    embedding = keras.layers.Dense(4, name="embedding")(hidden)
    pixels = keras.layers.Dense(int(np.prod(shape)), activation="sigmoid", name="pixels")(embedding)
    reconstruction = keras.layers.Reshape(shape, name="reconstruction")(pixels)
    dead = trainer.AutoencoderTrainer(
        keras.Model(views, reconstruction), keras.Model(views, embedding), loss="l2"
    )
    dead.compile(optimizer=keras.optimizers.Adam(1e-3))
    dead.optimizer.build(dead.autoencoder.trainable_variables)
    return dead


@pytest.fixture(scope="module")
def vanishing_run(rendered_shards: RenderedShards, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(
        tmp_path_factory.mktemp("vanishing"),
        _dead_bottleneck_trainer(rendered_shards),
        rendered_shards,
        steps=8,
        validate=False,
    )


# --- the four runs ---


def test_normal_training_fires_nothing_and_ends_no_issues_found(normal_run: Run) -> None:
    # GIVEN a healthy run (its loss falls; validation every 20 steps)
    trial = normal_run.trial()
    loss = trial.tensor(layout.LOSS_TENSOR)
    validation = [float(loss.value(step, mode=ModeKeys.EVAL)) for step in loss.steps(mode=ModeKeys.EVAL)]

    # THEN it ran to the end, learned, and every rule ended NoIssuesFound with no IssuesFound signal
    assert normal_run.result.step == 40
    assert validation[-1] < validation[0]
    assert normal_run.statuses == dict.fromkeys(RULE_NAMES, "NoIssuesFound")
    assert not [
        signal for signal in normal_run.recorder.signals if signal.status is signals.RuleStatus.ISSUES_FOUND
    ]
    assert [line for line in normal_run.lines if line.startswith("rule:")] == [
        f"rule:{name}=0" for name in RULE_NAMES
    ]


def test_a_zero_learning_rate_makes_loss_not_decreasing_fire(
    zero_learning_rate_run: tuple[Run, list[dict[str, Any]]],
) -> None:
    run, _ = zero_learning_rate_run

    # THEN the validation loss is the same at 10, 20, 30 and 40 (no weight moved): not decreasing at the
    # comparisons at 20, 30 and 40, so IssuesFound at 40 (patience 3), signalled once
    assert run.statuses["LossNotDecreasing"] == "IssuesFound"
    assert run.states["LossNotDecreasing"].step == 40
    assert run.states["LossNotDecreasing"].finding.startswith("loss (EVAL): validation loss ")
    assert run.recorder.statuses("LossNotDecreasing") == ["InProgress", "IssuesFound"]
    assert run.lines.count("rule:LossNotDecreasing=1") == 1
    # ... the gradients keep their initial scale (not vanishing: VanishingGradient judges each tensor
    # against its own scale); nothing else fired, the crashing rule is Error, and training ran on
    assert {name: status for name, status in run.statuses.items() if name != "LossNotDecreasing"} == {
        "VanishingGradient": "NoIssuesFound",
        "ExplodingTensor": "NoIssuesFound",
        "Overfit": "NoIssuesFound",
        "LatentClusterRule": "NoIssuesFound",
        "Buggy": "Error",
    }
    assert run.states["Buggy"].status_details == "InternalError: ZeroDivisionError: division by zero"
    assert run.result.step == 41
    assert not run.result.stopped


def test_the_emitted_event_is_the_documented_sample_and_stops_the_job(
    zero_learning_rate_run: tuple[Run, list[dict[str, Any]]],
) -> None:
    run, delivered = zero_learning_rate_run
    sample = support.sample_event()

    # GIVEN the IssuesFound event the run wrote locally, and the one PutEvents delivered through moto
    def loss_not_decreasing(event: dict[str, Any]) -> bool:
        status = event["detail"]["DebugRuleEvaluationStatuses"][0]
        return (
            status["RuleConfigurationName"] == "LossNotDecreasing"
            and status["RuleEvaluationStatus"] == "IssuesFound"
        )

    local = [event for event in run.local_events() if loss_not_decreasing(event)]
    delivered = [event for event in delivered if loss_not_decreasing(event)]
    assert len(local) == 1
    assert len(delivered) == 1

    # THEN both are the documented sample (same job, rule, step 40, time), byte for byte
    assert json.dumps({**local[0], "id": sample["id"]}) == json.dumps(sample)
    assert json.dumps(delivered[0]["detail"]) == json.dumps(sample["detail"])
    assert (delivered[0]["source"], delivered[0]["detail-type"]) == (sample["source"], sample["detail-type"])
    assert delivered[0]["resources"] == sample["resources"]

    # ... the stop stack's EventBridge pattern matches it, and the decision core stops the job
    assert event_pattern_matcher.matches(
        event_patterns.in_container_rule_evaluation(AutostopSettings()), delivered[0]
    )
    config_ = decision.config_from_environment({})
    facts = decision.interpret_event(delivered[0], config_)
    assert isinstance(facts, decision.EventFacts)
    description = {
        "TrainingJobName": "sweep-lr-0001",
        "TrainingJobArn": support.JOB_ARN,
        "TrainingJobStatus": "InProgress",
        "HyperParameters": {"autostop_signing_key": support.SAMPLE_SIGNING_KEY},
    }
    verdict = decision.decide(facts, description, {"autostop": "enabled"}, config_, now=support.SAMPLE_TIME)
    assert (verdict.action, verdict.rule_name) == (decision.Action.STOP, "LossNotDecreasing")


def test_nan_producing_data_makes_exploding_tensor_fire(exploding_run: Run) -> None:
    # THEN the NaN tensors are found at the first step (gradients are saved every step); the NaN loss does
    # not trip the loss rule
    assert exploding_run.statuses["ExplodingTensor"] == "IssuesFound"
    first_bad = _first_non_finite_step(exploding_run.trial())
    assert first_bad == 1
    assert exploding_run.states["ExplodingTensor"].step == first_bad
    assert f"NaN or infinite values at step {first_bad}" in exploding_run.states["ExplodingTensor"].finding
    assert exploding_run.statuses["LossNotDecreasing"] == "NoIssuesFound"
    assert np.isnan(exploding_run.result.last_logs["loss"])


def test_a_dead_relu_bottleneck_makes_vanishing_gradient_fire(vanishing_run: Run) -> None:
    # THEN a layer at or before the dead one has exactly zero gradient at steps 1, 2, 3: IssuesFound at 3
    assert vanishing_run.statuses["VanishingGradient"] == "IssuesFound"
    assert vanishing_run.states["VanishingGradient"].step == 3
    finding = vanishing_run.states["VanishingGradient"].finding
    assert finding.startswith(("gradients/dead_bottleneck/", "gradients/encoder_dense/"))
    assert "100% of its values are exactly 0, 3 saved step(s) in a row" in finding
    assert vanishing_run.statuses["ExplodingTensor"] == "NoIssuesFound"


def _first_non_finite_step(trial: Any) -> int:
    """The first training step at which the trial holds a NaN or infinite value (read independently)."""
    for step in trial.steps(mode=ModeKeys.TRAIN):
        for name in trial.tensor_names(step=layout.global_step(layout.TRAIN, step)):
            value = np.asarray(trial.tensor(name).value(step, mode=ModeKeys.TRAIN))
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                return int(step)
    raise AssertionError("no NaN or infinite value in the trial")


# --- the same trials under smdebug's own invoke_rule ---


def _invoke(rule: rules.AutostopRule, start_step: int = 0) -> int | None:
    try:
        invoke_rule(rule, start_step=layout.global_step(layout.TRAIN, start_step), raise_eval_cond=True)
    except RuleEvaluationConditionMet as met:
        return layout.training_step_of(met.step)
    except NoMoreData:
        return None
    raise AssertionError("invoke_rule ended without RuleEvaluationConditionMet or NoMoreData")


def test_the_rules_agree_under_smdebugs_invoke_rule(
    normal_run: Run,
    zero_learning_rate_run: tuple[Run, list[dict[str, Any]]],
    exploding_run: Run,
    vanishing_run: Run,
) -> None:
    # WHEN each rule runs under smdebug's invoke_rule on the runs' trials
    normal = normal_run.trial()
    outcomes_on_normal = {
        "LossNotDecreasing": _invoke(rules.LossNotDecreasing(normal)),
        "VanishingGradient": _invoke(rules.VanishingGradient(normal)),
        "ExplodingTensor": _invoke(rules.ExplodingTensor(normal)),
        "Overfit": _invoke(rules.Overfit(normal)),
        "LatentClusterRule": _invoke(rules.LatentClusterRule(normal)),
    }

    # THEN the good trial ends cleanly (NoMoreData) and each bad one raises at the step the evaluator found
    assert outcomes_on_normal == dict.fromkeys(RULE_NAMES)
    assert _invoke(rules.LossNotDecreasing(zero_learning_rate_run[0].trial())) == 40
    assert _invoke(rules.ExplodingTensor(exploding_run.trial())) == _first_non_finite_step(
        exploding_run.trial()
    )
    assert _invoke(rules.VanishingGradient(vanishing_run.trial())) == 3


# --- what the trial holds ---


def test_the_trial_holds_every_collection_in_both_modes(normal_run: Run) -> None:
    trial = normal_run.trial()

    # THEN every training step (gradients) and validations at 20, 40 are there, as global steps 2s and 2s + 1;
    # the other collections every 5 steps
    assert trial.steps(mode=ModeKeys.TRAIN) == list(range(1, 41))
    assert trial.steps(mode=ModeKeys.EVAL) == [20, 40]
    assert trial.tensor("loss").steps(mode=ModeKeys.TRAIN) == list(range(5, 41, 5))
    assert trial.tensor("weights/encoder_conv_1/kernel").steps(mode=ModeKeys.TRAIN) == list(range(5, 41, 5))
    assert trial.steps()[:3] == [2, 4, 6]
    assert trial.mode(41) is ModeKeys.EVAL
    assert trial.mode_step(41) == 20
    weights = trial.tensor_names(collection="weights")
    assert "weights/encoder_conv_1/kernel" in weights
    assert all(not name.endswith("/bias") for name in weights)
    assert "biases/encoder_conv_1/bias" in trial.tensor_names(collection="biases")
    gradients = trial.tensor_names(collection="gradients")
    assert len(gradients) == len(normal_run.trained.autoencoder.trainable_variables)
    assert trial.tensor_names(collection="losses") == ["loss"]
    assert trial.tensor_names(collection="metrics") == ["l2", "learning_rate", "ssim"]
    assert trial.tensor_names(collection="outputs") == ["outputs/embedding"]
    # the saved weights of the last step are the model's weights after it
    final = dict(
        zip(
            [v.path for v in normal_run.trained.autoencoder.trainable_variables],
            normal_run.trained.autoencoder.get_weights(),
            strict=True,
        )
    )
    np.testing.assert_array_equal(
        trial.tensor("weights/encoder_conv_1/kernel").value(40, mode=ModeKeys.TRAIN),
        final["encoder_conv_1/kernel"],
    )


def test_the_probe_embeddings_carry_their_families(normal_run: Run) -> None:
    trial = normal_run.trial()
    probe = normal_run.probe
    assert probe is not None
    sidecar = json.loads(Path(normal_run.trial_dir, layout.PROBE_FILE_NAME).read_text(encoding="utf-8"))

    embeddings = trial.tensor(layout.EMBEDDING_TENSOR).value(40, mode=ModeKeys.TRAIN)
    family_index = trial.tensor(layout.FAMILY_INDEX_TENSOR).value(40, mode=ModeKeys.TRAIN)

    # THEN 24 probe designs (3 of each of the 8 families) with 12-wide embeddings, families named beside
    assert embeddings.shape == (24, 12)
    assert len(set(probe.families)) == 8
    assert sidecar["families"] == list(probe.families)
    assert [sidecar["family_names"][index] for index in family_index] == list(probe.families)
    # the embeddings are the encoder's output, the same as the recorded output of the embedding layer
    np.testing.assert_allclose(
        embeddings, normal_run.trained.encoder(probe.views).numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(
        embeddings, trial.tensor("outputs/embedding").value(40, mode=ModeKeys.TRAIN)
    )
    # ... and the healthy run grouped the families (the latent-cluster ratio fell)
    ratios = rules.LatentClusterRule(trial)
    with contextlib.suppress(NoMoreData):
        invoke_rule(ratios)
    assert ratios.ratios[40] < ratios.ratios[5]


# --- the writer in other places and conditions ---


def test_a_resumed_job_continues_the_same_trial(normal_run: Run) -> None:
    # GIVEN the ended trial of the normal run, and its trainer (step 40+) training on into the same folder
    start = int(normal_run.trained.optimizer.iterations)
    hook = config.parse_debug_hook_config(HOOK_DOCUMENT, source="test", out_dir=normal_run.trial_dir)
    lines: list[str] = []
    views = next(iter(_fixed_batches()))
    trainer.fit(
        normal_run.trained,
        tf.data.Dataset.from_tensors(views).repeat(),
        total_steps=start + 10,
        callbacks=[writer.DebuggerTensorWriter(hook, log=lines.append)],
    )

    # THEN the end marker was lifted while writing, and the trial reads on with the same step numbering
    assert f"debugger: {normal_run.trial_dir} held an ended trial; resuming it (end marker removed)" in lines
    trial = create_trial(normal_run.trial_dir)
    assert trial.tensor("loss").steps(mode=ModeKeys.TRAIN)[-3:] == [start, start + 5, start + 10]
    assert trial.steps(mode=ModeKeys.TRAIN)[-1] == start + 10


def _fixed_batches() -> tf.data.Dataset:
    views = np.random.default_rng(0).random((8, 32, 32, 6), np.float32)
    return tf.data.Dataset.from_tensor_slices(views).batch(8)


def test_tensors_go_to_s3_and_create_trial_reads_them(normal_run: Run, moto_endpoint: str) -> None:
    from smdebug.core.access_layer.s3handler import S3Handler

    # GIVEN a bucket on moto (smdebug's boto3 clients honour AWS_ENDPOINT_URL; its cached client is reset)
    S3Handler.client.cache_clear()
    boto3.client("s3", region_name=moto_server.REGION).create_bucket(Bucket="autostop-tensors")
    out_dir = "s3://autostop-tensors/sweep-lr-0001/tensors"
    hook = config.parse_debug_hook_config(HOOK_DOCUMENT, source="test", out_dir=out_dir)
    start = int(normal_run.trained.optimizer.iterations)
    recorder = support.Recorder()
    rule_evaluator = evaluator.RuleEvaluator(
        config.parse_rule_configurations("ExplodingTensor"),
        dispatcher=signals.SignalDispatcher([recorder.sink]),
        log=lambda _: None,
    )

    # WHEN training writes there (the probe too) and the evaluator reads from there
    try:
        trainer.fit(
            normal_run.trained,
            _fixed_batches().repeat(),
            total_steps=start + 5,
            callbacks=[
                writer.DebuggerTensorWriter(
                    hook, probe=normal_run.probe, listeners=[rule_evaluator], log=lambda _: None
                )
            ],
        )
        trial = create_trial(out_dir)
        steps = trial.tensor("loss").steps(mode=ModeKeys.TRAIN)
        embeddings = trial.tensor(layout.EMBEDDING_TENSOR).value(steps[-1], mode=ModeKeys.TRAIN)
        keys = [
            item["Key"]
            for item in boto3.client("s3", region_name=moto_server.REGION).list_objects_v2(
                Bucket="autostop-tensors", Prefix="sweep-lr-0001/tensors/"
            )["Contents"]
        ]
    finally:
        S3Handler.client.cache_clear()

    # THEN the trial on S3 holds the steps, the probe sidecar and the end marker; the rule read it too
    assert steps == [start + 5]
    assert embeddings.shape == (24, 12)
    assert "sweep-lr-0001/tensors/autostop-probe.json" in keys
    assert "sweep-lr-0001/tensors/training_job_end.ts" in keys
    assert rule_evaluator.statuses() == {"ExplodingTensor": "NoIssuesFound"}


def test_a_tensor_folder_that_cannot_be_written_never_fails_training(normal_run: Run, tmp_path: Path) -> None:
    # GIVEN a tensor path that is a file, so no folder can be made there
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    hook = config.default_hook_config(str(blocker / "tensors"))
    lines: list[str] = []
    rule_evaluator = evaluator.RuleEvaluator(
        config.parse_rule_configurations("LossNotDecreasing"),
        dispatcher=signals.SignalDispatcher([]),
        log=lambda _: None,
    )
    start = int(normal_run.trained.optimizer.iterations)

    # WHEN training runs with the writer
    result = trainer.fit(
        normal_run.trained,
        _fixed_batches().repeat(),
        total_steps=start + 2,
        callbacks=[writer.DebuggerTensorWriter(hook, listeners=[rule_evaluator], log=lines.append)],
    )

    # THEN training finished, the problem is one clear line, and the rule says Error (nothing was checked)
    assert result.step == start + 2
    failure = [line for line in lines if line.startswith("debugger: cannot record tensors to ")]
    assert len(failure) == 1
    assert failure[0].startswith(f"debugger: cannot record tensors to {blocker / 'tensors'}: ")
    assert failure[0].endswith("training continues without them")
    assert rule_evaluator.statuses() == {"LossNotDecreasing": "Error"}
    assert not os.path.exists(blocker / "tensors")
