"""How designs are shown: the standard dataset, and a hard one that looks more like real outcomes.

Standard (``autostop render``'s default): the eight first families, every design in its family's resting
pose, sized by its family's reference radius, under one fixed light. Raw-pixel nearest neighbours already
group these by family almost perfectly, so retrieval measured on them says little about an encoder.

Hard (``autostop render --difficulty hard``): design outcomes arrive in whatever orientation, size and
lighting they were exported with, so per design, from its own random stream:

- **pose**: a uniformly random rotation (a normalised 4-D Gaussian as quaternion: uniform on SO(3));
- **scale**: the design is fitted to the unit sphere by its own radius, then scaled by U(0.6, 1.0);
- **lighting**: a random key-light direction on the viewer's side (in camera axes, so each view is lit
  alike from its own camera), ambient U(0.1, 0.45), depth cue U(0, 0.5) and material albedo U(0.6, 1.0).

The cameras stay the fixed view rings of ``training.render.camera``; what varies is the design.

Families: the sixteen registered families (``shapes.all_family_names``), split once and for all into
``TRAINED_FAMILIES`` (ten) and ``HELD_OUT_FAMILIES`` (six, never to be trained on: a model's retrieval on
them measures designs of a kind it has never seen). The held-out six mix first and part families and
include near relatives of trained ones (I-beam vs channel, wheel vs gear-less flat parts), as real new
families would. Each design's ``meta.json`` records its split, its difficulty and its appearance.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt
import trimesh

from training.render import camera, shapes

STANDARD = "standard"
HARD = "hard"
DIFFICULTIES = (STANDARD, HARD)
TRAIN_SPLIT = "train"
HELD_OUT_SPLIT = "held_out"
SPLITS = ("all", TRAIN_SPLIT, HELD_OUT_SPLIT)

HELD_OUT_FAMILIES: tuple[str, ...] = ("gear", "spring", "ribbed_block", "wheel", "i_beam", "pipe_fitting")
TRAINED_FAMILIES: tuple[str, ...] = tuple(
    name for name in shapes.all_family_names() if name not in HELD_OUT_FAMILIES
)

SCALE_RANGE = (0.6, 1.0)
AMBIENT_RANGE = (0.1, 0.45)
DEPTH_CUE_RANGE = (0.0, 0.5)
ALBEDO_RANGE = (0.6, 1.0)
# The key light's component towards the viewer stays at least this large: the visible side is lit.
LIGHT_FACING_MINIMUM = 0.3
# Independent streams of a design seed: its shape (shapes.build_design) and its appearance (here).
APPEARANCE_STREAM = 1

FloatArray = npt.NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class Appearance:
    """One design's pose, scale and lighting in the hard dataset."""

    rotation: tuple[float, float, float, float]  # unit quaternion (w, x, y, z)
    scale: float
    lighting: camera.Lighting

    def rotation_matrix(self) -> FloatArray:
        w, x, y, z = self.rotation
        return np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        )

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "rotation_wxyz": [round(value, 6) for value in self.rotation],
            "scale": round(self.scale, 6),
            "ambient": round(self.lighting.ambient, 6),
            "light_in_camera": [round(value, 6) for value in self.lighting.light_in_camera],
            "depth_cue": round(self.lighting.depth_cue, 6),
            "albedo": round(self.lighting.albedo, 6),
        }


def validate_difficulty(difficulty: str) -> str:
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, not {difficulty!r}")
    return difficulty


def family_split(family: str) -> str:
    """``train`` or ``held_out``: which side of the hard dataset's family split a family is on."""
    shapes.get_family(family)
    return HELD_OUT_SPLIT if family in HELD_OUT_FAMILIES else TRAIN_SPLIT


def default_families(difficulty: str, split: str = "all") -> tuple[str, ...]:
    """The families a dataset cycles through when none are named."""
    validate_difficulty(difficulty)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    if difficulty == STANDARD:
        if split != "all":
            raise ValueError("family splits belong to the hard dataset: use --difficulty hard with --split")
        return shapes.family_names()
    return {
        "all": shapes.all_family_names(),
        TRAIN_SPLIT: TRAINED_FAMILIES,
        HELD_OUT_SPLIT: HELD_OUT_FAMILIES,
    }[split]


def draw_appearance(design_seed: int) -> Appearance:
    """The hard dataset's pose, scale and lighting of the design with this seed (its own stream)."""
    rng = np.random.default_rng([design_seed, APPEARANCE_STREAM])
    quaternion = rng.standard_normal(4)
    quaternion /= np.linalg.norm(quaternion)
    scale = float(rng.uniform(*SCALE_RANGE))
    azimuth = float(rng.uniform(0.0, 2.0 * np.pi))
    towards_viewer = float(rng.uniform(LIGHT_FACING_MINIMUM, 1.0))
    sideways = float(np.sqrt(1.0 - towards_viewer**2))
    light = (sideways * float(np.cos(azimuth)), sideways * float(np.sin(azimuth)), towards_viewer)
    lighting = camera.Lighting(
        ambient=float(rng.uniform(*AMBIENT_RANGE)),
        light_in_camera=light,
        depth_cue=float(rng.uniform(*DEPTH_CUE_RANGE)),
        albedo=float(rng.uniform(*ALBEDO_RANGE)),
    )
    rotation = (float(quaternion[0]), float(quaternion[1]), float(quaternion[2]), float(quaternion[3]))
    return Appearance(rotation=rotation, scale=scale, lighting=lighting)


def posed_mesh(design: shapes.Design, appearance: Appearance) -> trimesh.Trimesh:
    """The design rotated, fitted to the unit sphere by its own radius and scaled (a new mesh)."""
    vertices = np.asarray(design.mesh.vertices, dtype=np.float64)
    radius = float(np.linalg.norm(vertices, axis=1).max())
    rotated = vertices @ appearance.rotation_matrix().T
    return trimesh.Trimesh(
        vertices=rotated * (appearance.scale / radius), faces=design.mesh.faces.copy(), process=False
    )
