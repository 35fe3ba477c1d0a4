"""Session fixture: training shards made the way production makes them.

The render generator (training.render) draws 24 designs of every family as multi-view renders in render
batch archives; the transformer core (lambdas.transform_renders) turns each archive into a TFRecord shard,
exactly as the render-transformer Lambda does. Built once per test session (about 2 s), small enough
(6 views of 32x32) that a CPU trains on it in seconds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

RENDER_SEED = 7
DESIGNS = 24
DESIGNS_PER_BATCH = 8
NUM_VIEWS = 6
IMAGE_SIZE = 32


@dataclasses.dataclass(frozen=True)
class RenderedShards:
    path: Path  # the folder holding the shards (a channel's content)
    design_ids: tuple[str, ...]
    families: dict[str, str]  # design id -> family
    num_views: int = NUM_VIEWS
    image_size: int = IMAGE_SIZE


@pytest.fixture(scope="session")
def rendered_shards(tmp_path_factory: pytest.TempPathFactory) -> RenderedShards:
    from training import transform_cli
    from training.render import batches

    root = tmp_path_factory.mktemp("rendered")
    manifest = batches.generate_dataset(
        root / "batches",
        designs=DESIGNS,
        designs_per_batch=DESIGNS_PER_BATCH,
        views=NUM_VIEWS,
        size=IMAGE_SIZE,
        seed=RENDER_SEED,
    )
    designs = transform_cli.write_shards(
        [Path(batch.path) for batch in manifest.batches],
        root / "channel" / "shards",
        image_size=IMAGE_SIZE,
        num_views=NUM_VIEWS,
    )
    families = {design.design_id: design.family for design in designs}
    assert len(families) == DESIGNS
    return RenderedShards(path=root / "channel", design_ids=tuple(sorted(families)), families=families)
