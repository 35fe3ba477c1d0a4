"""The training images, read as text (no Docker here): pinned base, the lock, non-root, CUDA pins.

What a build would only reveal on a deploy machine is checked here instead: both images start from the same
base pinned by digest, install training/requirements.txt with the repository's constraints.txt (so every
transitive version is the one the tests run with), run as an unprivileged user, and the GPU image adds
exactly the CUDA wheels TensorFlow's ``and-cuda`` extra pins (read from the installed TensorFlow's metadata).
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {"cpu": ROOT / "training" / "Dockerfile", "gpu": ROOT / "training" / "Dockerfile.gpu"}
DIGEST_PATTERN = re.compile(r"FROM (?P<image>[\w./:-]+)@sha256:(?P<digest>[0-9a-f]{64})")
PIN_PATTERN = re.compile(r"(?P<name>[A-Za-z0-9_.\-\[\]]+)==(?P<version>[^\s;#]+)")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("#")
        ),
    )
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), " ".join(rest.split())))
    return pairs


def pins(path: Path) -> dict[str, str]:
    """name -> version of every ``name==version`` line (names normalised as pip does)."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = PIN_PATTERN.fullmatch(text)
        assert match, f"{path.name}: {text!r} is not pinned with =="
        found[normalise(match["name"])] = match["version"]
    return found


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_installs(path: Path) -> list[list[str]]:
    commands = []
    for keyword, arguments in instructions(path):
        if keyword == "RUN":
            for command in arguments.split("&&"):
                words = shlex.split(command)
                if words[:2] == ["pip", "install"]:
                    commands.append(words[2:])
    return commands


@pytest.mark.parametrize("hardware", sorted(DOCKERFILES))
def test_the_base_is_pinned_by_digest_and_the_same_for_both(hardware: str) -> None:
    (base,) = [arguments for keyword, arguments in instructions(DOCKERFILES[hardware]) if keyword == "FROM"]
    assert DIGEST_PATTERN.fullmatch(f"FROM {base}"), base
    (cpu_base,) = [arguments for keyword, arguments in instructions(DOCKERFILES["cpu"]) if keyword == "FROM"]
    assert base == cpu_base


@pytest.mark.parametrize("hardware", sorted(DOCKERFILES))
def test_requirements_install_with_the_constraints_lock(hardware: str) -> None:
    installs = pip_installs(DOCKERFILES[hardware])
    # pip itself pinned, then one install of the requirement files with the lock
    assert installs[0] == ["pip==25.3"]
    (packages,) = [words for words in installs if "-r" in words]
    requirement_files = [packages[index + 1] for index, word in enumerate(packages) if word == "-r"]
    constraint_files = [packages[index + 1] for index, word in enumerate(packages) if word == "-c"]
    assert constraint_files == ["/opt/autostop/locks/constraints.txt"]
    expected = ["/opt/autostop/locks/requirements.txt"]
    if hardware == "gpu":
        expected.append("/opt/autostop/locks/requirements-gpu.txt")
    assert requirement_files == expected
    # AND those files are copied from the repository into that folder
    copies = [arguments for keyword, arguments in instructions(DOCKERFILES[hardware]) if keyword == "COPY"]
    sources = [Path(name).name for name in copies[0].split()[:-1]]
    assert copies[0].split()[-1] == "/opt/autostop/locks/"
    assert sources == ["constraints.txt", *[Path(name).name for name in expected]]


def test_every_training_requirement_is_pinned_as_in_the_lock() -> None:
    lock = pins(ROOT / "constraints.txt")
    requirements = pins(ROOT / "training" / "requirements.txt")
    assert requirements
    mismatched = {
        name: (version, lock.get(name)) for name, version in requirements.items() if lock.get(name) != version
    }
    assert mismatched == {}


@pytest.mark.parametrize("hardware", sorted(DOCKERFILES))
def test_the_job_runs_as_an_unprivileged_user(hardware: str) -> None:
    users = [arguments for keyword, arguments in instructions(DOCKERFILES[hardware]) if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # AND `train` is on PATH for SageMaker's `docker run <image> train`
    runs = " ".join(
        arguments for keyword, arguments in instructions(DOCKERFILES[hardware]) if keyword == "RUN"
    )
    assert "/usr/local/bin/train" in runs


def test_the_gpu_image_adds_exactly_tensorflows_cuda_pins() -> None:
    # GIVEN the installed TensorFlow's own metadata (the lock's version)
    lock = pins(ROOT / "constraints.txt")
    assert importlib.metadata.version("tensorflow") == lock["tensorflow"]
    requires = importlib.metadata.requires("tensorflow") or []
    and_cuda = {}
    for requirement in requires:
        if "extra == 'and-cuda'" in requirement or 'extra == "and-cuda"' in requirement:
            name, _, version = requirement.split(";")[0].replace(" ", "").partition("==")
            and_cuda[normalise(name)] = version
    assert and_cuda, "tensorflow declares no and-cuda extra"
    # THEN the GPU requirements are those pins, no more, no less
    assert pins(ROOT / "training" / "requirements-gpu.txt") == and_cuda
    # AND none of them is in the CPU lock (they would be installed on CPU images too)
    assert not set(and_cuda) & set(lock)


def test_the_build_context_is_narrowed_to_the_training_code_and_the_lock() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {"!constraints.txt", "!training"} <= set(lines)
