"""``autostop render`` end to end: the installed console script writes batches and a contact sheet."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import tarfile

import pytest
from PIL import Image

from training import cli

AUTOSTOP = pathlib.Path(sys.executable).parent / "autostop"


def test_render_command_writes_batches_and_a_contact_sheet(tmp_path: pathlib.Path) -> None:
    # GIVEN the installed `autostop` console script
    out_dir = tmp_path / "renders"
    sheet = tmp_path / "sheets" / "contact.png"

    # WHEN it renders a tiny dataset
    options = {
        "--designs": "5",
        "--designs-per-batch": "2",
        "--families": "spring,plate",
        "--views": "3",
        "--size": "32",
        "--seed": "1",
        "--format": "tar",
        "--workers": "1",
        "--contact-sheet": str(sheet),
        "--contact-designs": "2",
    }
    completed = subprocess.run(
        [str(AUTOSTOP), "render", str(out_dir), *(part for option in options.items() for part in option)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    # THEN it succeeds, writes 3 archives, summarises with timing, and draws 2 designs per family x 3 views
    assert completed.returncode == 0, completed.stderr
    assert sorted(path.name for path in out_dir.iterdir()) == [
        "renders-s1-b00000.tar",
        "renders-s1-b00001.tar",
        "renders-s1-b00002.tar",
    ]
    assert "rendered 5 designs x 3 views (32x32) into 3 tar batches" in completed.stdout
    assert "designs/s" in completed.stdout
    assert "families: spring 3, plate 2" in completed.stdout
    image = Image.open(sheet)
    assert image.mode == "L"
    assert image.size == (150 + 3 * (32 + 2) + 2, 4 * (32 + 2) + 2)


def test_unknown_family_fails_with_a_clear_error_and_writes_nothing(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "renders"

    exit_code = cli.main(["render", str(out_dir), "--designs", "2", "--families", "bracket,blob"])

    assert exit_code == 2
    error = capsys.readouterr().err
    assert "autostop render: error: unknown design family 'blob'" in error
    assert not out_dir.exists()


def test_missing_out_dir_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["render", "--designs", "1"]) == 2
    assert "autostop render: error: OUT_DIR is required" in capsys.readouterr().err


def test_list_families_names_every_family(capsys: pytest.CaptureFixture[str]) -> None:
    from training.render import shapes

    assert cli.main(["render", "--list-families"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(shapes.all_family_names())


def test_render_command_writes_the_hard_dataset_of_one_split(tmp_path: pathlib.Path) -> None:
    from training.render import variation

    out_dir = tmp_path / "renders"
    exit_code = cli.main(
        [
            "render",
            str(out_dir),
            "--designs",
            "6",
            "--views",
            "2",
            "--size",
            "16",
            "--difficulty",
            "hard",
            "--split",
            "held_out",
            "--supersample",
            "1",
        ]
    )

    assert exit_code == 0
    with tarfile.open(next(out_dir.glob("*.tar.gz"))) as archive:
        families = {
            json.loads(archive.extractfile(member).read())["family"]  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.name.endswith("meta.json")
        }
    assert families == set(variation.HELD_OUT_FAMILIES)


def test_split_without_the_hard_dataset_is_a_clear_error(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = cli.main(["render", str(tmp_path / "renders"), "--designs", "2", "--split", "train"])

    assert exit_code == 2
    assert "autostop render: error: family splits belong to the hard dataset" in capsys.readouterr().err
