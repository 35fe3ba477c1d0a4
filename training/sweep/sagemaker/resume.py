"""Pick a SageMaker sweep up again after the launcher went away (a laptop closed, credentials expired).

Why it works: the jobs run on SageMaker whatever happens to the launcher, each tagged ``autostop:sweep``
with the sweep's name; and the sweep's folder keeps what the launcher was started with (``launch.json``:
the spec as read, the command line's overrides, the image, role and region). ``resume`` finds the jobs by
that tag (SageMaker ``Search``, ``Tags.<key>`` filter; AWS SageMaker API reference, ``SearchExpression``),
follows those still running, records those that ended, and launches the ones never created. A job created
so recently that ``Search`` does not list it yet is found when its ``CreateTrainingJob`` answers
``ResourceInUse`` (the launcher adopts it then).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from training.sweep.sagemaker import faults
from training.sweep.sagemaker.settings import SWEEP_TAG_KEY, LaunchError

LAUNCH_FILE = "launch.json"
FORMAT_VERSION = 1


def save_launch(
    directory: Path,
    *,
    spec_document: object,
    spec_source: str,
    overrides: Mapping[str, Any],
    image_uri: str,
    role_arn: str,
    region: str,
) -> Path:
    """Write ``launch.json``: everything ``resume`` needs to rebuild the same jobs."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LAUNCH_FILE
    document = {
        "format_version": FORMAT_VERSION,
        "spec_source": spec_source,
        "spec": spec_document,
        "overrides": dict(overrides),
        "image_uri": image_uri,
        "role_arn": role_arn,
        "region": region,
    }
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


def load_launch(directory: Path) -> dict[str, Any]:
    path = directory / LAUNCH_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LaunchError(
            f"{directory} holds no {LAUNCH_FILE}: it is not the folder of a SageMaker sweep launched by "
            "`autostop sweep run --backend sagemaker`"
        ) from None
    except (OSError, json.JSONDecodeError) as error:
        raise LaunchError(f"cannot read {path}: {error}") from None
    if not isinstance(document, dict) or document.get("format_version") != FORMAT_VERSION:
        raise LaunchError(f"{path} is not a launch record of this version of autostop")
    return document


def sweep_folder(target: str, runs_directory: Path) -> Path:
    """``resume``'s argument: a sweep folder, or a sweep's name (its folder under ``runs/``)."""
    path = Path(target)
    if path.is_dir():
        return path
    candidate = runs_directory / target
    if candidate.is_dir():
        return candidate
    raise LaunchError(
        f"no sweep folder {target} (nor {candidate}); give the folder the sweep was launched with (--out)"
    )


def jobs_by_tag(sagemaker_client: Any, sweep_name: str, retrier: faults.Retrier) -> dict[str, dict[str, Any]]:
    """job name -> ``DescribeTrainingJob`` of every training job tagged ``autostop:sweep=<sweep_name>``."""
    names: list[str] = []
    token = None
    while True:
        arguments: dict[str, Any] = {
            "Resource": "TrainingJob",
            "SearchExpression": {
                "Filters": [{"Name": f"Tags.{SWEEP_TAG_KEY}", "Operator": "Equals", "Value": sweep_name}]
            },
            "MaxResults": 100,
        }
        if token:
            arguments["NextToken"] = token
        page = retrier.call(
            f"Search {SWEEP_TAG_KEY}={sweep_name}",
            lambda arguments=arguments: sagemaker_client.search(**arguments),
        )
        names += [
            str(result["TrainingJob"]["TrainingJobName"])
            for result in page.get("Results", [])
            if "TrainingJob" in result
        ]
        token = page.get("NextToken")
        if not token:
            break
    return {
        name: retrier.call(
            f"{name}: DescribeTrainingJob",
            lambda name=name: sagemaker_client.describe_training_job(TrainingJobName=name),
        )
        for name in sorted(set(names))
    }
