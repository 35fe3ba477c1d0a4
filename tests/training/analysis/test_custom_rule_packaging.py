"""LatentClusterRule packaged as a SageMaker custom rule: one standalone source file plus ``Rule.custom``.

A custom rule container (AWS's rule evaluator image) gets exactly one Python file and has numpy and smdebug;
it loads the file and instantiates ``rule_to_invoke`` with the trial and the string parameters. These tests
do what it does with a copy of the file outside the project, and build the job request with the SageMaker
Python SDK the sweep launcher uses (no AWS call: ``Rule.custom`` only builds the configuration).
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from smdebug.exceptions import RuleEvaluationConditionMet
from smdebug.rules.rule_invoker import invoke_rule
from smdebug.trials import create_trial

from tests.training.analysis import trials
from training.analysis import clustering

# What AWS's custom rule evaluator image provides besides the standard library.
RULE_CONTAINER_PACKAGES = {"numpy", "smdebug"}
IMAGE = "759209512951.dkr.ecr.us-west-2.amazonaws.com/sagemaker-debugger-rule-evaluator:latest"


def test_the_source_file_imports_only_what_a_rule_container_has() -> None:
    tree = ast.parse(Path(clustering.CUSTOM_RULE_SOURCE).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported - sys.stdlib_module_names - {"__future__"} <= RULE_CONTAINER_PACKAGES


def test_a_copy_of_the_source_runs_as_the_rule_container_runs_it(tmp_path: Path) -> None:
    # GIVEN the source copied out of the project and loaded by path under another name
    copy = shutil.copy(clustering.CUSTOM_RULE_SOURCE, tmp_path / "latent_cluster_rule.py")
    spec = importlib.util.spec_from_file_location("custom_rule_source", copy)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_rule_source"] = module
    try:
        spec.loader.exec_module(module)
        # AND a trial whose probe embeddings are random (no family structure)
        families = np.arange(24) % 3
        vectors = np.random.default_rng(0).normal(size=(24, 6)).astype(np.float32)
        trial_path = trials.write_trial(
            tmp_path / "trial",
            {
                step: {"embeddings": {"embeddings/probe": vectors, "embeddings/family_index": families}}
                for step in (100, 200)
            },
        )
        arguments = clustering.custom_rule_arguments(
            name="latent-cluster",
            image_uri=IMAGE,
            rule_parameters={"ratio_threshold": "0.9", "patience": "2"},
        )

        # WHEN the class named by rule_to_invoke is built from the string parameters and invoked by smdebug
        rule_class = getattr(module, arguments["rule_to_invoke"])
        rule = rule_class(create_trial(str(trial_path)), **arguments["rule_parameters"])

        # THEN it fires at the second saved step
        with pytest.raises(RuleEvaluationConditionMet) as met:
            invoke_rule(rule, start_step=0, end_step=401, raise_eval_cond=True)
        assert met.value.step == 400
    finally:
        del sys.modules["custom_rule_source"]


def test_rule_custom_builds_the_debug_rule_configuration() -> None:
    from sagemaker.debugger import CollectionConfig, Rule

    # GIVEN the sweep spec's parameters for the rule (strings, with rule_to_invoke as specs carry it)
    arguments = clustering.custom_rule_arguments(
        name="LatentClusterRule",
        image_uri=IMAGE,
        source="s3://bucket/rules/latent_cluster_rule.py",
        rule_parameters={
            "rule_to_invoke": "LatentClusterRule",
            "ratio_threshold": "0.5",
            "start_step": "500",
        },
    )

    # WHEN the SDK builds the rule with the collection it needs
    rule = Rule.custom(
        **arguments, collections_to_save=[CollectionConfig("embeddings", parameters={"save_interval": "100"})]
    )
    configuration = rule.to_debugger_rule_config_dict()

    # THEN the DebugRuleConfigurations entry names the source, the class and the parameters as strings
    assert configuration["RuleConfigurationName"] == "LatentClusterRule"
    assert configuration["RuleEvaluatorImage"] == IMAGE
    assert configuration["InstanceType"] == "ml.t3.medium"
    assert configuration["RuleParameters"] == {
        "source_s3_uri": "s3://bucket/rules/latent_cluster_rule.py",
        "rule_to_invoke": "LatentClusterRule",
        "ratio_threshold": "0.5",
        "start_step": "500",
    }
    assert [collection.name for collection in rule.collection_configs] == ["embeddings"]


def test_bad_parameters_are_rejected_before_a_job_is_created() -> None:
    with pytest.raises(ValueError, match="unknown parameter\\(s\\) threshold"):
        clustering.custom_rule_arguments(name="r", image_uri=IMAGE, rule_parameters={"threshold": "0.5"})
    with pytest.raises(ValueError, match="patience must be >= 1"):
        clustering.custom_rule_arguments(name="r", image_uri=IMAGE, rule_parameters={"patience": "0"})


def test_tensor_names_are_the_in_container_writers() -> None:
    """The source file repeats the writer's tensor names (it cannot import them): they must stay equal."""
    from training.debugger import layout

    assert (clustering.EMBEDDING_TENSOR, clustering.FAMILY_INDEX_TENSOR) == (
        layout.EMBEDDING_TENSOR,
        layout.FAMILY_INDEX_TENSOR,
    )
