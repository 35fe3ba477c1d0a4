"""The CDK app's wiring between stacks: what one stack hands another, read from the synthesized templates."""

from __future__ import annotations

import json
from pathlib import Path

from tests.infra.conftest import Synthesized


def test_the_transformer_writes_its_shards_into_the_training_data_bucket(default_app: Synthesized) -> None:
    # GIVEN the app as `cdk synth` builds it
    templates = {
        path.name: json.loads(path.read_text()) for path in Path(default_app.outdir).glob("*.template.json")
    }
    training = templates["AutostopTraining.template.json"]
    transformer = json.dumps(templates["AutostopRenderTransformer.template.json"])
    # THEN the training stack exports its data bucket and the transformer stack imports that export, so the
    # shards land where the SageMaker execution role reads them, with no copy step
    exports = [output["Export"]["Name"] for output in training["Outputs"].values() if "Export" in output]
    imported = [name for name in exports if name in transformer]
    assert imported, f"the transformer stack imports none of the training stack's exports {exports}"
    assert any("Shard" in name or "Data" in name for name in imported)
