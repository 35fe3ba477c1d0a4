"""Family groupings for ``autostop evaluate --groups``: the hard dataset's split, and JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.analysis import groups
from training.render import batches, variation


def test_hard_grouping_is_the_render_datasets_family_split() -> None:
    grouping = groups.load_groups(["hard"])

    assert {family for family, group in grouping.items() if group == "held_out"} == set(
        variation.HELD_OUT_FAMILIES
    )
    assert {family for family, group in grouping.items() if group == "train"} == set(
        variation.TRAINED_FAMILIES
    )


def test_a_render_folder_and_a_plain_mapping_are_read_alike(tmp_path: Path) -> None:
    # GIVEN the families.json a hard render writes, and a plain mapping written by hand
    (tmp_path / "renders").mkdir()
    (tmp_path / "renders" / batches.FAMILIES_FILE).write_bytes(
        batches.family_groups_document({"gear": 2, "bracket": 2}, "hard")
    )
    (tmp_path / "plain.json").write_text(json.dumps({"tube": "seen"}), encoding="utf-8")

    # WHEN both are loaded together (the folder stands for its families.json)
    grouping = groups.load_groups([str(tmp_path / "renders"), str(tmp_path / "plain.json")])

    # THEN the mappings are merged
    assert grouping == {"gear": "held_out", "bracket": "train", "tube": "seen"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "neither 'hard' nor a JSON file"),
        ("{not json", "cannot read groups file"),
        ("{}", "must hold a JSON object mapping family -> group"),
        ('{"families": {"gear": ""}}', "the group of gear must be a non-empty string"),
    ],
    ids=["missing", "not JSON", "empty", "empty group"],
)
def test_unusable_groups_files_are_clear_errors(tmp_path: Path, content: str | None, message: str) -> None:
    file = tmp_path / "groups.json"
    if content is not None:
        file.write_text(content, encoding="utf-8")
    with pytest.raises(groups.GroupError, match=message):
        groups.load_groups([str(file)])
