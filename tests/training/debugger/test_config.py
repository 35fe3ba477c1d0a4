"""Hook configuration: SageMaker's debughookconfig.json, the same document as a hyperparameter, defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from smdebug.core.save_config import SaveConfigMode

from training.debugger import config

# What SageMaker writes for a DebugHookConfig with two collections (values are strings in its API).
SAGEMAKER_DOCUMENT = {
    "LocalPath": "/opt/ml/output/tensors",
    "S3OutputPath": "s3://autostop-tensors/sweep-lr-0001/debug-output",
    "HookParameters": {"save_interval": "50"},
    "CollectionConfigurations": [
        {"CollectionName": "gradients", "CollectionParameters": {"save_interval": "20", "end_step": "1000"}},
        {
            "CollectionName": "losses",
            "CollectionParameters": {"train.save_interval": "5", "eval.save_interval": "2"},
        },
        {"CollectionName": "relu_activations", "CollectionParameters": {"include_regex": ".*relu_output"}},
        {"CollectionName": "outputs", "CollectionParameters": {"include_regex": "embedding, decoder_conv_1"}},
    ],
}


def test_without_a_document_every_collection_is_saved_at_the_small_defaults() -> None:
    # WHEN no debughookconfig.json exists and no document is given
    hook = config.load_hook_config(config_dir=Path("/nonexistent"), default_out_dir="/tmp/tensors")

    # THEN everything but layer outputs (which need a regex) is recorded, big tensors rarely
    assert hook.source == "defaults"
    assert hook.out_dir == "/tmp/tensors"
    assert [collection.name for collection in hook.collections] == [
        "losses",
        "metrics",
        "gradients",
        "weights",
        "biases",
        "embeddings",
    ]
    assert hook.saves("losses", "train", 10)
    assert not hook.saves("losses", "train", 15)
    assert hook.saves("losses", "eval", 7)  # every validation
    assert hook.saves("gradients", "train", 200)
    assert not hook.saves("gradients", "train", 100)
    assert not hook.saves("weights", "eval", 1000)  # weights exist for training steps only
    assert hook.warnings == ()


def test_a_sagemaker_document_sets_paths_collections_and_per_mode_schedules() -> None:
    # WHEN SageMaker's document is parsed
    hook = config.parse_debug_hook_config(SAGEMAKER_DOCUMENT, source="debughookconfig.json")

    # THEN the paths are SageMaker's, and only the listed collections this writer produces are saved
    assert hook.out_dir == "/opt/ml/output/tensors"
    assert hook.s3_output_path == "s3://autostop-tensors/sweep-lr-0001/debug-output"
    assert [collection.name for collection in hook.collections] == ["gradients", "losses", "outputs"]
    gradients = hook.collection("gradients")
    assert gradients is not None
    assert gradients.train == config.SaveSchedule(20, 0, 1000)
    assert hook.saves("gradients", "train", 980)
    assert not hook.saves("gradients", "train", 1000)
    losses = hook.collection("losses")
    assert losses is not None
    assert losses.train == config.SaveSchedule(5)
    assert losses.eval == config.SaveSchedule(2)
    outputs = hook.collection("outputs")
    assert outputs is not None
    assert outputs.include_regex == ("embedding", "decoder_conv_1")
    assert outputs.train == config.SaveSchedule(50)  # HookParameters apply to every listed collection
    assert outputs.includes("outputs/embedding")
    assert not outputs.includes("outputs/encoder_conv_1")
    assert hook.warnings == ("collection 'relu_activations' is not produced by the autostop writer; ignored",)


def test_losses_are_always_saved_and_rules_add_the_collections_they_need() -> None:
    # GIVEN a document listing gradients only
    hook = config.parse_debug_hook_config(
        {"LocalPath": "/tmp/t", "CollectionConfigurations": [{"CollectionName": "gradients"}]}, source="test"
    )

    # THEN losses are added; WHEN rules need embeddings THEN they are added with their defaults
    assert [collection.name for collection in hook.collections] == ["gradients", "losses"]
    extended = hook.with_required(["embeddings", "losses"])
    assert [collection.name for collection in extended.collections] == ["gradients", "losses", "embeddings"]
    assert extended.collection("embeddings") == config.default_collection("embeddings")
    assert hook.with_required(["losses"]) is hook


def test_smdebug_parameters_this_writer_lacks_are_reported_not_fatal() -> None:
    # GIVEN parameters a managed-Debugger configuration may carry
    document = {
        "HookParameters": {"reductions": "mean", "save_all": "false", "global.save_interval": "9"},
        "CollectionConfigurations": [
            {
                "CollectionName": "weights",
                "CollectionParameters": {"save_histogram": "false", "eval.save_interval": "3"},
            },
            {"CollectionName": "outputs"},
        ],
    }

    # WHEN it is parsed
    hook = config.parse_debug_hook_config(document, source="test")

    # THEN each ignored item is named once, and outputs without a regex are not recorded
    assert hook.warnings == (
        "HookParameters.reductions: not implemented by the autostop writer; ignored",
        "HookParameters.save_all: not implemented by the autostop writer; ignored",
        "HookParameters.global.save_interval: modes other than train and eval are not recorded; ignored",
        "collection 'weights'.save_histogram: not implemented by the autostop writer; ignored",
        "collection 'weights': has no eval values; eval.* parameters ignored",
        "collection 'outputs' needs include_regex naming the layers to record; not saved",
    )
    assert [collection.name for collection in hook.collections] == ["weights", "losses"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "the debug hook configuration must be a JSON object"),
        ({"LocalPath": ""}, "LocalPath must be a non-empty string"),
        ({"S3OutputPath": "bucket/prefix"}, "S3OutputPath must be an s3:// URI"),
        ({"HookParameters": {"save_interval": "often"}}, "HookParameters.save_interval must be an integer"),
        ({"HookParameters": {"save_intervall": "5"}}, "HookParameters.save_intervall: unknown parameter"),
        ({"HookParameters": {"save_interval": "0"}}, "save_interval must be > 0, got 0"),
        (
            {"HookParameters": {"start_step": "10", "end_step": "5"}},
            "end_step must be > start_step (10), got 5",
        ),
        (
            {"CollectionConfigurations": {"CollectionName": "losses"}},
            "CollectionConfigurations must be a list",
        ),
        (
            {"CollectionConfigurations": [{"CollectionParameters": {}}]},
            "CollectionName must be a non-empty string",
        ),
        (
            {"CollectionConfigurations": [{"CollectionName": "losses"}, {"CollectionName": "losses"}]},
            "collection 'losses' is configured twice",
        ),
        (
            {
                "CollectionConfigurations": [
                    {"CollectionName": "outputs", "CollectionParameters": {"include_regex": "("}}
                ]
            },
            "include_regex '(' is not a regular expression",
        ),
        ({"HookParameters": {"save_steps": True}}, "must be a string or a number, got bool"),
    ],
)
def test_a_bad_document_is_one_clear_error(document: object, message: str) -> None:
    # WHEN a bad document is parsed THEN the error names the field and the problem
    with pytest.raises(config.DebuggerConfigError, match=None) as raised:
        config.parse_debug_hook_config(document, source="test")
    assert message in str(raised.value)


def test_the_hyperparameter_document_wins_over_the_file_which_wins_over_defaults(tmp_path: Path) -> None:
    # GIVEN a debughookconfig.json in the config folder
    (tmp_path / "debughookconfig.json").write_text(json.dumps(SAGEMAKER_DOCUMENT), encoding="utf-8")

    # WHEN loaded with and without a document given as a hyperparameter
    from_file = config.load_hook_config(config_dir=tmp_path, default_out_dir="/opt/ml/output/tensors")
    from_text = config.load_hook_config(
        config_dir=tmp_path,
        default_out_dir="/unused",
        document_text=json.dumps({"HookParameters": {"save_interval": "7"}}),
        out_dir="s3://autostop-tensors/local-run",
    )

    # THEN the file is SageMaker's; the hyperparameter document replaces it, and out_dir replaces LocalPath
    assert from_file.source.endswith("debughookconfig.json")
    assert from_file.out_dir == "/opt/ml/output/tensors"
    assert from_text.source == "hyperparameters"
    assert from_text.out_dir == "s3://autostop-tensors/local-run"
    assert from_text.is_s3
    assert from_text.saves("gradients", "train", 7)


@pytest.mark.parametrize(("text", "message"), [("{not json", "not valid JSON"), ("", None)])
def test_hyperparameter_document_text_errors(tmp_path: Path, text: str, message: str | None) -> None:
    # WHEN the hyperparameter holds invalid JSON THEN a clear error; WHEN empty THEN it is not given
    if message is None:
        assert config.load_hook_config(
            config_dir=tmp_path, default_out_dir="/d", document_text=text
        ).source == ("defaults")
        return
    with pytest.raises(config.DebuggerConfigError, match=message):
        config.load_hook_config(config_dir=tmp_path, default_out_dir="/d", document_text=text)


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "debughookconfig.json").write_text("[1, 2", encoding="utf-8")
    with pytest.raises(config.DebuggerConfigError, match=r"cannot read .*debughookconfig\.json"):
        config.load_hook_config(config_dir=tmp_path, default_out_dir="/d")


@given(
    interval=st.integers(1, 50),
    start=st.integers(0, 100),
    length=st.one_of(st.none(), st.integers(1, 200)),
    steps=st.lists(st.integers(0, 300), max_size=5),
    step=st.integers(0, 400),
)
def test_save_schedules_decide_exactly_as_smdebug(
    interval: int, start: int, length: int | None, steps: list[int], step: int
) -> None:
    # GIVEN the same parameters for our schedule and smdebug's SaveConfigMode
    end = None if length is None else start + length
    ours = config.SaveSchedule(interval, start, end, tuple(steps))
    theirs = SaveConfigMode(save_interval=interval, start_step=start, end_step=end, save_steps=steps)

    # THEN they agree on every step, and ours exports what smdebug exports
    assert ours.should_save(step) == theirs.should_save_step(step)
    assert ours.to_json_dict() == theirs.to_json_dict()


@pytest.mark.parametrize(
    ("local_path", "expected"),
    [
        (None, "{default}"),  # no LocalPath: the default tensor folder
        ("/opt/ml/output/tensors", "{default}"),  # SageMaker's literal default: the default tensor folder
        ("/opt/ml/output/tensors/", "{default}"),
        ("/opt/ml/output/debug", "{root}/output/debug"),  # elsewhere under /opt/ml: moves with the root
        ("/opt/ml", "{root}"),
        ("/opt/mlx/tensors", "/opt/mlx/tensors"),  # not under /opt/ml: as given
        ("/data/tensors", "/data/tensors"),
        ("s3://autostop-tensors/job-1", "s3://autostop-tensors/job-1"),
    ],
)
def test_every_local_path_honours_the_root_override(
    tmp_path: Path, local_path: str | None, expected: str
) -> None:
    """GIVEN a run whose /opt/ml is moved (AUTOSTOP_OPT_ML) and whose default tensor folder is elsewhere
    WHEN SageMaker's debughookconfig.json, with or without LocalPath, is loaded
    THEN no path points into the literal /opt/ml: the default goes to the default folder, the rest moves."""
    root, default = tmp_path / "opt_ml", tmp_path / "tensors-here"
    document: dict[str, object] = {"CollectionConfigurations": [{"CollectionName": "losses"}]}
    if local_path is not None:
        document["LocalPath"] = local_path
    (tmp_path / "debughookconfig.json").write_text(json.dumps(document), encoding="utf-8")

    hook = config.load_hook_config(config_dir=tmp_path, default_out_dir=str(default), opt_ml_root=str(root))

    assert hook.out_dir == expected.format(default=default, root=root)


def test_on_sagemaker_the_documents_local_path_is_kept() -> None:
    """GIVEN SageMaker's own layout (root /opt/ml): SageMaker uploads LocalPath to S3OutputPath, so the
    writer must write exactly there (AWS: DebugHookConfig.LocalPath, "Path to local storage location for
    metrics and tensors. Defaults to /opt/ml/output/tensors/", SageMaker API reference)."""
    document = {"LocalPath": "/opt/ml/output/debug"}

    assert config.parse_debug_hook_config(document, source="t").out_dir == "/opt/ml/output/debug"
    assert config.parse_debug_hook_config({}, source="t").out_dir == "/opt/ml/output/tensors"
