"""Which group each family belongs to, for ``autostop evaluate --groups`` (``search.evaluate_by_group``).

Shards record a design's family, not which side of a family split it is on, so the grouping comes from one
of two places:

- ``hard``: the hard render dataset's fixed split (``training.render.variation``): the ten families models
  train on are group ``train``, the six no model trains on are group ``held_out``;
- a JSON file: the ``families.json`` that ``autostop render --difficulty hard`` writes next to its render
  batches (``{"difficulty": "hard", "families": {"gear": "held_out", ...}}``), or any JSON object mapping
  family -> group (``{"bracket": "seen", "gear": "new"}``) for designs of other origins.

``--groups`` may be given more than once (a train render folder and a held-out one): the mappings are
merged, and a family that two of them put in different groups is an error rather than a silent choice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

HARD = "hard"
# Written by `autostop render --difficulty hard` into its output folder (training.render.batches).
RENDER_FAMILIES_FILE = "families.json"


class GroupError(ValueError):
    """A grouping cannot be read or is inconsistent; the message names the source and says why."""


def hard_dataset_groups() -> dict[str, str]:
    """Every registered family -> ``train`` or ``held_out``, the hard dataset's split."""
    from training.render import shapes, variation  # trimesh: loaded only when this grouping is asked for

    return {family: variation.family_split(family) for family in shapes.all_family_names()}


def read_groups_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """A family -> group mapping from a JSON file (a render folder's ``families.json`` or a plain object)."""
    file = Path(path)
    if file.is_dir() and (file / RENDER_FAMILIES_FILE).is_file():
        file = file / RENDER_FAMILIES_FILE
    if not file.is_file():
        raise GroupError(
            f"groups {str(path)!r}: neither {HARD!r} nor a JSON file (or a render folder with "
            f"{RENDER_FAMILIES_FILE})"
        )
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GroupError(f"cannot read groups file {file}: {error}") from None
    mapping = document.get("families") if isinstance(document, dict) else None
    if not isinstance(mapping, dict):
        mapping = document
    if not isinstance(mapping, dict) or not mapping:
        raise GroupError(f"groups file {file} must hold a JSON object mapping family -> group")
    bad = sorted(str(family) for family, group in mapping.items() if not isinstance(group, str) or not group)
    if bad:
        raise GroupError(f"groups file {file}: the group of {', '.join(bad)} must be a non-empty string")
    return {str(family): str(group) for family, group in mapping.items()}


def load_groups(sources: Sequence[str]) -> dict[str, str]:
    """The merged family -> group mapping of ``hard`` and/or JSON files (module docstring)."""
    merged: dict[str, str] = {}
    origin: dict[str, str] = {}
    for source in sources:
        mapping = hard_dataset_groups() if source == HARD else read_groups_file(source)
        for family, group in mapping.items():
            if merged.get(family, group) != group:
                raise GroupError(
                    f"family {family!r} is in group {merged[family]!r} in {origin[family]} but "
                    f"{group!r} in {source}"
                )
            merged[family] = group
            origin.setdefault(family, source)
    return merged
