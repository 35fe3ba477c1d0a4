"""The sweep spec: every problem found up front with its key path; deterministic expansion into named jobs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from lambdas.stop_training_job import decision
from training.sweep import spec as spec_module

SPECS = Path(spec_module.__file__).parent / "specs"


def valid_document() -> dict[str, Any]:
    return {
        "name": "lr-sweep",
        "seed": 3,
        "max_parallel_jobs": 2,
        "steps_per_job": 120,
        "search": {
            "parameters": {"learning_rate": [0.0, 0.003, 5.0], "loss": ["ssim", "l2"]},
            "include": [{"learning_rate": 0.001, "decay": "exponential"}],
        },
        "hyperparameters": {"image_size": 32, "num_views": 6, "base_filters": 4},
        "datasets": {"shapes": {"train": "data/shards"}},
        "rules": [
            {
                "RuleConfigurationName": "LossNotDecreasing",
                "RuleParameters": {"num_steps": 20, "diff_percent": 1},
            },
            "ExplodingTensor",
        ],
        "tags": {"team": "vision"},
    }


def problems_of(document: object) -> tuple[str, ...]:
    with pytest.raises(spec_module.SpecError) as raised:
        spec_module.parse_spec(document, source="test.yaml")
    return raised.value.problems


def changed(**changes: Any) -> dict[str, Any]:
    document = valid_document()
    for dotted, value in changes.items():
        target = document
        *parents, last = dotted.split("__")
        for key in parents:
            target = target[key]
        target[last] = value
    return document


def test_a_grid_expands_in_the_written_order_with_stable_sagemaker_job_names() -> None:
    # GIVEN a grid of 3 learning rates x 2 losses and one extra configuration
    spec = spec_module.parse_spec(valid_document())
    # WHEN expanding it (twice)
    jobs, again = spec.jobs(), spec.jobs()
    # THEN 7 jobs, the last parameter varying fastest, then the include, named <sweep>-NNN
    assert [job.params for job in jobs] == [
        {"learning_rate": 0.0, "loss": "ssim"},
        {"learning_rate": 0.0, "loss": "l2"},
        {"learning_rate": 0.003, "loss": "ssim"},
        {"learning_rate": 0.003, "loss": "l2"},
        {"learning_rate": 5.0, "loss": "ssim"},
        {"learning_rate": 5.0, "loss": "l2"},
        {"learning_rate": 0.001, "decay": "exponential"},
    ]
    assert [job.name for job in jobs] == [f"lr-sweep-{index:03d}" for index in range(1, 8)]
    assert all(decision.JOB_NAME_PATTERN.fullmatch(job.name) for job in jobs)
    assert jobs == again
    # AND each job's hyperparameters.json holds strings: fixed values, the swept ones, the budget and seed
    assert dict(jobs[6].hyperparameters) == {
        "seed": "3",
        "image_size": "32",
        "num_views": "6",
        "base_filters": "4",
        "learning_rate": "0.001",
        "decay": "exponential",
        "steps": "120",
    }


def test_random_sampling_is_reproducible_from_the_seed_and_stays_in_range() -> None:
    # GIVEN random search over a log-uniform learning rate and a choice of batch sizes
    document = changed(
        search={
            "strategy": "random",
            "samples": 6,
            "parameters": {
                "learning_rate": {"distribution": "log_uniform", "min": 1e-4, "max": 1e-1},
                "batch_size": [8, 16],
            },
        }
    )
    # WHEN expanding it twice, and once with another seed
    first = spec_module.parse_spec(document).jobs()
    second = spec_module.parse_spec(copy.deepcopy(document)).jobs()
    other = spec_module.parse_spec({**document, "seed": 4}).jobs()
    # THEN the same seed gives the same jobs; another seed other values; all within the bounds
    assert [job.params for job in first] == [job.params for job in second]
    assert [job.params for job in first] != [job.params for job in other]
    assert all(1e-4 <= float(job.params["learning_rate"]) <= 1e-1 for job in first)
    assert {job.params["batch_size"] for job in first} <= {8, 16}


def test_variants_and_datasets_are_chosen_per_job() -> None:
    # GIVEN two named variants and two datasets, both swept
    document = changed(
        search={"parameters": {"variant": ["standard", "wide"], "dataset": ["small", "large"]}},
        variants={"standard": {}, "wide": {"bottleneck_width": 64}},
        datasets={
            "small": {"train": "data/small"},
            "large": {"train": "data/large", "validation": "data/val"},
        },
    )
    # WHEN expanding
    jobs = spec_module.parse_spec(document).jobs()
    # THEN each job carries its variant's hyperparameters and its dataset's channels
    wide_large = jobs[3]
    assert wide_large.params == {"variant": "wide", "dataset": "large"}
    assert wide_large.hyperparameters["bottleneck_width"] == "64"
    assert dict(wide_large.dataset.channels) == {"train": "data/large", "validation": "data/val"}
    assert "bottleneck_width" not in jobs[0].hyperparameters


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (changed(bogus=1), "bogus: unknown key"),
        (
            changed(search__parameters={"learning_rate": [0.1, "fast"]}),
            "search.parameters.learning_rate[1]: ",
        ),
        (changed(search__parameters={"learning_rate": [0.1, -1]}), "learning_rate must be >= 0"),
        (changed(search__parameters={"lr": [0.1]}), "search.parameters.lr: unknown parameter"),
        (changed(search__parameters={"loss": ["ssim", "mse"]}), "unknown loss 'mse'"),
        (changed(search__parameters={"learning_rate": [0.1, 0.1]}), "lists a value twice"),
        (changed(search__parameters={"steps": [10, 20]}), "search.parameters.steps: the step budget"),
        (changed(steps_per_job=0), "steps_per_job: must be >= 1, got 0"),
        (changed(steps_per_job="many"), "steps_per_job: expected an integer, got 'many'"),
        (changed(max_parallel_jobs=0), "max_parallel_jobs: must be between 1 and 100, got 0"),
        (changed(name="my_sweep"), "name: 'my_sweep' is not a sweep name"),
        (changed(name="x" * 60), "name: at most 59 characters"),
        (
            changed(rules=[{"RuleConfigurationName": "LossNotDecreasin"}]),
            "rules[0].RuleConfigurationName: unknown rule",
        ),
        (
            changed(rules=[{"RuleConfigurationName": "Overfit", "RuleParameters": {"patience": "soon"}}]),
            "rules[0].RuleParameters.patience: ",
        ),
        (
            changed(rules=[{"RuleConfigurationName": "Overfit", "RuleParameters": {"paitence": "2"}}]),
            "rules[0].RuleParameters.paitence: unknown parameter of Overfit",
        ),
        (
            changed(rules=["ExplodingTensor", "ExplodingTensor"]),
            "rules[1].RuleConfigurationName: 'ExplodingTensor' is configured twice",
        ),
        (changed(rules=[]), "rules: expected a non-empty list"),
        (changed(hyperparameters={"epochs": 3}), "hyperparameters.epochs: set the step budget"),
        (
            changed(hyperparameters={"image_size": "big"}),
            "hyperparameters.image_size: image_size must be an integer",
        ),
        (
            changed(tags={"aws:team": "x"}),
            "tags.aws:team: keys starting with 'aws:' or 'autostop' are reserved",
        ),
        (changed(datasets={"shapes": {"validation": "data/v"}}), "datasets.shapes.train: required"),
        (changed(datasets={"a": {"train": "data/a"}, "b": {"train": "data/b"}}), "choose per job with"),
        (changed(search__parameters={"variant": ["deep"]}), "unknown variant 'deep'"),
        (
            changed(
                search={
                    "strategy": "grid",
                    "parameters": {"learning_rate": {"distribution": "uniform", "min": 0, "max": 1}},
                }
            ),
            "a grid takes a list of values",
        ),
        (
            changed(
                search={
                    "strategy": "random",
                    "samples": 2,
                    "parameters": {"learning_rate": {"distribution": "log_uniform", "min": 0, "max": 1}},
                }
            ),
            "search.parameters.learning_rate.min: log_uniform needs min > 0",
        ),
        (
            changed(search={"parameters": {"learning_rate": [0.001]}, "include": [{"learning_rate": 0.001}]}),
            "trains exactly like job 1",
        ),
        (changed(hyperparameters={"image_size": 40}), "image_size must be a multiple of 16"),
        (changed(stopping={"rules": ["Overfit"]}), "stopping.rules[0]: 'Overfit' is not a configured rule"),
        (changed(debugger={"collections": {"losses": {"save_interval": "0"}}}), "save_interval must be > 0"),
        (changed(sagemaker={"role_arn": "admin"}), "sagemaker.role_arn: 'admin' is not an IAM role ARN"),
        (
            changed(sagemaker={"spot": {"max_wait_seconds": 60, "checkpoint_s3_uri": "s3://bucket/ckpt"}}),
            "sagemaker.spot.max_wait_seconds: must be >= max_run_seconds",
        ),
    ],
)
def test_each_problem_is_reported_with_its_key_path(document: dict[str, Any], expected: str) -> None:
    # GIVEN a spec with one mistake; WHEN validating it
    problems = problems_of(document)
    # THEN one of the problems names the key and says what is wrong
    assert any(expected in problem for problem in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    # GIVEN a spec with several unrelated mistakes
    document = changed(bogus=1, steps_per_job=-5, tags={"aws:x": "y"})
    del document["rules"]
    # WHEN validating it
    problems = problems_of(document)
    # THEN all of them are listed, not only the first
    assert {problem.split(":")[0] for problem in problems} >= {"bogus", "steps_per_job", "rules", "tags.aws"}


def test_a_spec_file_is_read_as_yaml_or_toml(tmp_path: Path) -> None:
    # GIVEN the same spec written as TOML
    toml = tmp_path / "sweep.toml"
    toml.write_text(
        'name = "t"\nsteps_per_job = 10\nrules = ["ExplodingTensor"]\n'
        "[search.parameters]\nlearning_rate = [0.001, 0.01]\n"
        '[datasets.shapes]\ntrain = "data/shards"\n',
        encoding="utf-8",
    )
    # WHEN loading it
    spec = spec_module.load_spec(toml)
    # THEN it expands like its YAML twin
    assert [job.params for job in spec.jobs()] == [{"learning_rate": 0.001}, {"learning_rate": 0.01}]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.yaml", "name: [unclosed\n", "not valid YAML"),
        ("bad.toml", "name = \n", "not valid TOML"),
        ("sweep.json", "{}", "must be a .yaml, .yml, .toml file"),
        ("list.yaml", "- 1\n", "expected a mapping, got a list"),
    ],
)
def test_an_unreadable_file_is_one_clear_error(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(spec_module.SpecError, match=expected.replace(".", r"\.").replace("(", r"\(")):
        spec_module.load_spec(path)


def test_the_shipped_specs_are_valid() -> None:
    # GIVEN the demo and the SageMaker example specs; WHEN loading them; THEN they validate and expand
    demo = spec_module.load_spec(SPECS / "demo.yaml")
    assert len(demo.jobs()) >= 8
    example = spec_module.load_spec(SPECS / "sagemaker-example.yaml")
    assert spec_module.image_for_instance(example.sagemaker) == example.sagemaker.gpu_image_uri
    assert example.sagemaker.role_arn
    assert all(job.dataset.is_s3 for job in example.jobs())


def test_the_decision_settings_scope_the_sweep_by_its_job_prefix() -> None:
    spec = spec_module.parse_spec(changed(stopping={"rules": ["ExplodingTensor"], "dry_run": True}))
    config = spec.decision_config()
    assert config.job_prefix == "lr-sweep-"
    assert config.stopping_rules == frozenset({"ExplodingTensor"})
    assert config.dry_run is True


def test_a_yaml_boolean_hyperparameter_is_passed_on_as_sagemaker_stores_it() -> None:
    # GIVEN a spec whose fixed hyperparameters hold a YAML boolean for a switch
    spec = spec_module.parse_spec(changed(hyperparameters__deterministic=True))

    # THEN every job gets the string SageMaker would store, "true"
    assert {job.hyperparameters["deterministic"] for job in spec.jobs()} == {"true"}


def test_a_boolean_for_a_parameter_that_is_not_a_switch_is_refused_with_its_name() -> None:
    # GIVEN a boolean where a number belongs
    # THEN the container's own parser names the parameter
    with pytest.raises(spec_module.SpecError, match=r"hyperparameters\.learning_rate: learning_rate"):
        spec_module.parse_spec(changed(hyperparameters__learning_rate=True))
