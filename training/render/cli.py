"""``autostop render``: write a synthetic dataset of render batches (and a contact sheet to look at).

Example::

    autostop render data/renders --designs 960 --designs-per-batch 64 --views 12 --size 64 --seed 0 \\
        --workers 2 --contact-sheet data/contact-sheet.png

The output is the same, byte for byte, for the same arguments whatever ``--workers`` is.

``--difficulty hard`` renders the hard dataset of ``training.render.variation`` (sixteen families, each
design in a random pose, scale and lighting); ``--split train`` or ``--split held_out`` keeps to one side
of its family split (``meta.json`` records each design's split either way, and ``OUT_DIR/families.json``
each rendered family's, for ``autostop evaluate --groups OUT_DIR``)::

    autostop render data/train --difficulty hard --split train --designs 400 --size 32
    autostop render data/new-families --difficulty hard --split held_out --designs 120 --size 32 --seed 1
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

DEFAULT_DESIGNS = 96
DEFAULT_DESIGNS_PER_BATCH = 32
DEFAULT_CONTACT_DESIGNS = 3


def register(subparsers: Any) -> None:
    """Add the `render` subcommand (heavy imports wait until it runs, so `autostop --help` stays fast)."""
    parser = subparsers.add_parser(
        "render",
        help="generate synthetic multi-view renders of procedural designs as render batches",
        description=(
            "Build procedural design outcomes (meshes in several families), render each from fixed "
            "viewpoints in grayscale, and write them as render batch archives "
            "(<design_id>/view_NN.png + meta.json). Deterministic by seed."
        ),
    )
    parser.add_argument(
        "out_dir", metavar="OUT_DIR", nargs="?", help="folder the batch archives are written to (required)"
    )
    parser.add_argument(
        "--designs", type=int, default=DEFAULT_DESIGNS, help="number of designs (default: %(default)s)"
    )
    parser.add_argument(
        "--designs-per-batch",
        type=int,
        default=DEFAULT_DESIGNS_PER_BATCH,
        help="designs per archive (default: %(default)s)",
    )
    parser.add_argument(
        "--families",
        default="",
        help="comma-separated design families, cycled through in this order (default: all)",
    )
    parser.add_argument(
        "--difficulty",
        choices=("standard", "hard"),
        default="standard",
        help="standard: fixed pose and light; hard: sixteen families in random poses, scales and lighting "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--split",
        choices=("all", "train", "held_out"),
        default="all",
        help="with --difficulty hard and no --families: only the trained or only the held-out families "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--views", type=int, default=12, help="views per design, 1-100 (default: %(default)s)"
    )
    parser.add_argument(
        "--size", type=int, default=64, help="image width and height in pixels (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default: %(default)s)")
    parser.add_argument(
        "--format",
        dest="archive_format",
        choices=("tar.gz", "tar", "zip"),
        default="tar.gz",
        help="archive format (default: %(default)s)",
    )
    parser.add_argument("--workers", type=int, default=1, help="rendering processes (default: %(default)s)")
    parser.add_argument(
        "--supersample",
        type=int,
        default=2,
        help="rays per pixel along each axis, for anti-aliasing (default: %(default)s)",
    )
    parser.add_argument(
        "--contact-sheet", type=pathlib.Path, help="also write a PNG grid of designs x views here"
    )
    parser.add_argument(
        "--contact-designs",
        type=int,
        default=DEFAULT_CONTACT_DESIGNS,
        help="designs per family on the contact sheet (default: %(default)s)",
    )
    parser.add_argument("--list-families", action="store_true", help="list the design families and exit")
    parser.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    from training.render import batches, shapes, variation  # trimesh, manifold3d: loaded only when used

    if arguments.list_families:
        for family in shapes.FAMILIES.values():
            split = variation.family_split(family.name).replace("_", "-")
            default = "default" if family.name in shapes.DEFAULT_FAMILIES else "hard only"
            print(f"{family.name:14s} {default:9s} hard: {split:8s} {family.description}")
        return 0
    if not arguments.out_dir:
        return _fail("OUT_DIR is required")
    families = [name.strip() for name in arguments.families.split(",") if name.strip()] or None
    if arguments.contact_designs < 1:
        return _fail(f"--contact-designs must be positive, got {arguments.contact_designs}")
    kept: list[batches.RenderedDesign] = []
    kept_per_family: dict[str, int] = {}

    def keep_for_contact_sheet(rendered: batches.RenderedDesign) -> None:
        family = rendered.spec.family
        if arguments.contact_sheet and kept_per_family.get(family, 0) < arguments.contact_designs:
            kept_per_family[family] = kept_per_family.get(family, 0) + 1
            kept.append(rendered)

    try:
        manifest = batches.generate_dataset(
            arguments.out_dir,
            designs=arguments.designs,
            designs_per_batch=arguments.designs_per_batch,
            families=families,
            views=arguments.views,
            size=arguments.size,
            seed=arguments.seed,
            workers=arguments.workers,
            archive_format=arguments.archive_format,
            supersample=arguments.supersample,
            on_design=keep_for_contact_sheet,
            difficulty=arguments.difficulty,
            split=arguments.split,
        )
    except ValueError as error:
        return _fail(str(error))

    total_bytes = sum(batch.size_bytes for batch in manifest.batches)
    seconds = max(manifest.seconds, 1e-9)
    print(
        f"rendered {manifest.designs} designs x {manifest.views} views ({manifest.size}x{manifest.size}) "
        f"into {len(manifest.batches)} {manifest.archive_format} batches under {manifest.out_dir} "
        f"({total_bytes / 1024:.1f} KiB) in {manifest.seconds:.2f} s: {manifest.designs / seconds:.1f} "
        f"designs/s, {1000 * seconds / (manifest.designs * manifest.views):.2f} ms/view, "
        f"{arguments.workers} worker(s)"
    )
    print("families: " + ", ".join(f"{name} {count}" for name, count in manifest.family_counts.items()))
    if manifest.difficulty != variation.STANDARD:
        print(f"family split: {pathlib.Path(manifest.out_dir) / batches.FAMILIES_FILE}")
    if arguments.contact_sheet:
        # Families in registry order, designs in dataset order within each family.
        order = {name: position for position, name in enumerate(manifest.family_counts)}
        kept.sort(key=lambda rendered: (order[rendered.spec.family], rendered.spec.index))
        arguments.contact_sheet.parent.mkdir(parents=True, exist_ok=True)
        batches.contact_sheet(kept).save(arguments.contact_sheet, format="PNG")
        print(f"contact sheet: {arguments.contact_sheet} ({len(kept)} designs)")
    return 0


def _fail(message: str) -> int:
    print(f"autostop render: error: {message}", file=sys.stderr)
    return 2
