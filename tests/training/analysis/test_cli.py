"""The analysis subcommands end to end, through the parser the ``autostop`` CLI builds from ``register``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.training import support
from tests.training.analysis import trials
from tests.training.analysis.conftest import TrainedModel, design_folder
from training.analysis import cli

# Real training (or many TensorFlow processes): a slow module, handed out first (tests/conftest.py).
pytestmark = pytest.mark.slow


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="autostop")
    cli.register(parser.add_subparsers(dest="command"))
    arguments = parser.parse_args(list(argv))
    return int(arguments.handler(arguments))


def test_embed_tsne_similar_evaluate(
    trained_model: TrainedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shards = trained_model.shards
    index = tmp_path / "index"

    # GIVEN a trained model's directory; WHEN its signatures are written
    assert run("embed", str(trained_model.model_dir), str(shards.path), "-o", str(index)) == 0
    assert f"embedded {len(shards.design_ids)} designs ({trained_model.embedding_size}-d, 8 families)" in (
        capsys.readouterr().out
    )

    # THEN t-SNE and projector files can be made from the folder alone
    assert run("tsne", str(index), "-o", str(tmp_path / "tsne")) == 0
    assert (tmp_path / "tsne" / "tsne.png").is_file()
    assert (tmp_path / "tsne" / "projector" / "projector_config.pbtxt").is_file()
    capsys.readouterr()

    # AND a design id finds k other designs, nearest first
    design_id = shards.design_ids[5]
    assert run("similar", str(index), design_id, "-k", "3", "--json") == 0
    results = json.loads(capsys.readouterr().out)
    assert [result["rank"] for result in results] == [1, 2, 3]
    assert design_id not in [result["design_id"] for result in results]
    distances = [result["distance"] for result in results]
    assert distances == sorted(distances)

    # AND a folder of that design's views finds the design itself first (the model comes from the index)
    folder = design_folder(shards, design_id, tmp_path / "query")
    assert run("similar", str(index), str(folder), "-k", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"2 designs most similar to views in {folder}")
    assert lines[2].split()[0] == "1"
    assert lines[2].split()[-1] == design_id

    # AND evaluation prints precision@k and mAP by family and writes them as JSON
    assert run("evaluate", str(index), "-k", "2", "--json", str(tmp_path / "report.json")) == 0
    output = capsys.readouterr().out
    assert "24 designs as leave-one-out queries (0 skipped), euclidean distance: precision@2" in output
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert len(report["families"]) == 8
    assert 0 < report["family_distance_ratio"] < 2
    assert 0 <= report["precision_at_k"] <= 1
    assert 0 < report["mean_average_precision"] <= 1


def test_similar_and_evaluate_with_a_model_and_shards(
    trained_model: TrainedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    shards = trained_model.shards
    model = str(trained_model.model_dir)
    assert run("similar", model, shards.design_ids[0], "--shards", str(shards.path), "-k", "1") == 0
    assert "1 designs most similar to design" in capsys.readouterr().out
    assert run("evaluate", model, str(shards.path), "-k", "2") == 0
    assert "| **all** | 24 |" in capsys.readouterr().out


def test_analyze_prints_the_diagnosis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps = {
        step: {
            "gradients": {
                "gradients/dense_1/kernel": np.full(4, 1e-9),
                "gradients/dense_2/kernel": np.ones(4),
            }
        }
        for step in (0, 5)
    }
    trial = trials.write_trial(tmp_path / "trial", steps)

    assert run("analyze", str(trial), "-o", str(tmp_path / "out")) == 0

    output = capsys.readouterr().out
    assert "vanishing gradients in 1 layers from step 0 (dense_1)" in output
    assert (tmp_path / "out" / "summary.md").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("analyze", "{tmp}/nowhere"), "autostop analyze: error: no Debugger trial at {tmp}/nowhere"),
        (
            ("analyze", "{tmp}", "--threshold", "-1"),
            "autostop analyze: error: threshold must be a number >= 0",
        ),
        (("embed", "{tmp}/model", "{tmp}"), "autostop embed: error: model {tmp}/model does not exist"),
        (("tsne", "{tmp}"), "autostop tsne: error: {tmp} is not an embeddings folder"),
        (("similar", "{tmp}", "d1"), "autostop similar: error: {tmp} is not an index folder"),
        (("evaluate", "{tmp}"), "autostop evaluate: error: {tmp} is not an embeddings folder"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(
    argv: tuple[str, ...], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(*(part.format(tmp=tmp_path) for part in argv)) == 2
    error = capsys.readouterr().err
    assert error.startswith(message.format(tmp=tmp_path))
    assert error.count("\n") == 1


def test_registering_the_commands_imports_nothing_heavy() -> None:
    """``autostop --help`` imports every command module: it must not pull in TensorFlow and friends."""
    probe = (
        "import argparse, sys\n"
        "from training.analysis import cli\n"
        "cli.register(argparse.ArgumentParser().add_subparsers())\n"
        "print(','.join(m for m in ('tensorflow', 'keras', 'sklearn', 'matplotlib', 'smdebug', 'boto3') "
        "if m in sys.modules))\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == ""


def test_evaluate_reports_each_group_of_families_among_itself(
    trained_model: TrainedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN signatures of the 8 standard families: 5 on the hard dataset's trained side, 3 held out
    index = tmp_path / "index"
    assert run("embed", str(trained_model.model_dir), str(trained_model.shards.path), "-o", str(index)) == 0
    capsys.readouterr()

    # WHEN they are evaluated with the hard dataset's family split as groups
    report_file = tmp_path / "report.json"
    assert run("evaluate", str(index), "-k", "2", "--groups", "hard", "--json", str(report_file)) == 0

    # THEN the overall figures come first, then one row per group, each group among itself
    output = capsys.readouterr().out
    assert output.index("| **all** | 24 |") < output.index("By group")
    assert "| held_out | 9 | 3 | 9 |" in output
    assert "| train | 15 | 5 | 15 |" in output
    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert report["groups"]["held_out"]["designs"] == 9
    assert {scores["family"] for scores in report["groups"]["held_out"]["families"]} == {
        "gear",
        "ribbed_block",
        "spring",
    }


def test_evaluate_reads_groups_from_a_render_folders_families_file(
    trained_model: TrainedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN two groups files as `autostop render --difficulty hard` writes them, one per render folder
    for folder, group, families in (
        ("train", "train", ("bracket", "tube", "plate", "lattice", "torus")),
        ("new", "held_out", ("gear", "spring", "ribbed_block")),
    ):
        (tmp_path / folder).mkdir()
        document = {"difficulty": "hard", "families": dict.fromkeys(families, group)}
        (tmp_path / folder / "families.json").write_text(json.dumps(document), encoding="utf-8")

    # WHEN a model and its shards are evaluated with both folders as groups
    model, shards = str(trained_model.model_dir), str(trained_model.shards.path)
    argv = ("evaluate", model, shards, "-k", "2", "--groups", str(tmp_path / "train"))
    assert run(*argv, "--groups", str(tmp_path / "new" / "families.json")) == 0

    # THEN both groups are reported
    output = capsys.readouterr().out
    assert "| held_out | 9 | 3 | 9 |" in output
    assert "| train | 15 | 5 | 15 |" in output


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({"bracket": "seen"}, "no group given for families: 'gear', 'lattice'"),
        ({"gear": "train"}, "family 'gear' is in group 'held_out' in hard but 'train' in {file}"),
        ([1, 2], "groups file {file} must hold a JSON object mapping family -> group"),
        ({"gear": 3}, "groups file {file}: the group of gear must be a non-empty string"),
    ],
    ids=["family without a group", "conflicting groups", "not an object", "group not a string"],
)
def test_bad_groups_are_one_error_line(
    trained_model: TrainedModel,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    groups: object,
    message: str,
) -> None:
    file = tmp_path / "groups.json"
    file.write_text(json.dumps(groups), encoding="utf-8")
    model, shards = str(trained_model.model_dir), str(trained_model.shards.path)
    sources = ("--groups", "hard", "--groups", str(file)) if "hard" in message else ("--groups", str(file))

    assert run("evaluate", model, shards, *sources) == 2

    error = capsys.readouterr().err
    assert error.startswith("autostop evaluate: error: " + message.format(file=file))
    assert error.count("\n") == 1


def _bad_shard_set(kind: str, folder: Path, *, image_size: int) -> None:
    """A shard folder that cannot be embedded by a model over 6 views of ``image_size``."""
    folder.mkdir(parents=True)
    six, four = (support.blob_views(1, num_views=views, image_size=image_size) for views in (6, 4))
    if kind == "zero-byte shard":
        (folder / "a.tfrecord").write_bytes(b"")
    elif kind == "not a TFRecord file":
        (folder / "a.tfrecord").write_bytes(b"garbage\n")
    elif kind == "another view count":
        support.write_shard(folder / "a.tfrecord", [("d1", "tube", four)])
    elif kind == "shards of two shapes":
        support.write_shard(folder / "a.tfrecord", [("d1", "tube", six)])
        support.write_shard(folder / "b.tfrecord", [("d2", "tube", four)])
    elif kind == "a shard of two shapes":
        support.write_shard(folder / "a.tfrecord", [("d1", "tube", six), ("d2", "tube", four)])


@pytest.mark.parametrize("command", ["embed", "evaluate"])
@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("no shards", "the dataset is empty: no *.tfrecord shards under {shards}"),
        ("zero-byte shard", "the dataset is empty: the 1 shard(s) under {shards} hold no records"),
        (
            "not a TFRecord file",
            "the dataset is empty: the 1 shard(s) under {shards} hold no readable record (empty, truncated, "
            "or not TFRecord files)",
        ),
        (
            "another view count",
            "shard {shards}/a.tfrecord: design 'd1' has 4 views of 32x32 pixels, but the model expects "
            "num_views=6 image_size=32",
        ),
        (
            "shards of two shapes",
            "shard {shards}/b.tfrecord: design 'd2' has 4 views of 32x32 pixels, but the model expects "
            "num_views=6 image_size=32",
        ),
        (
            "a shard of two shapes",
            "design 'd2' in {shards} has 4 views of 32x32 pixels, but the model expects num_views=6 "
            "image_size=32 (a shard mixes designs of different shapes)",
        ),
    ],
)
def test_shards_that_do_not_fit_the_model_are_one_error_line(
    trained_model: TrainedModel,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    kind: str,
    message: str,
) -> None:
    # GIVEN a model over 6 views of 32x32 and a shard folder it cannot embed
    shards = tmp_path / "shards"
    _bad_shard_set(kind, shards, image_size=trained_model.shards.image_size)
    extra = ("-o", str(tmp_path / "out")) if command == "embed" else ()

    # WHEN it is embedded or evaluated; THEN one line says what is wrong, and nothing is written
    assert run(command, str(trained_model.model_dir), str(shards), *extra) == 2
    captured = capsys.readouterr()
    assert captured.err == f"autostop {command}: error: {message.format(shards=shards)}\n"
    assert not (tmp_path / "out").exists()
