"""Write small Debugger trials with known tensors, through smdebug's own core writer and collection manager.

The layout is what smdebug's hooks write and ``smdebug.trials.create_trial`` reads: one event file and
one index file per saved step (``events/<step>/<step>_worker_0.tfevents``, ``index/...``), and the
collections file ``collections/000000000/worker_0_collections.json`` naming which tensor is in which
collection. Names and steps follow the in-container writer (training/debugger/writer.py): tensors are
``<collection>/<variable path>``; training step ``s`` is mode step ``s`` of mode TRAIN at global step ``2s``
(validation after step ``s``: EVAL at ``2s + 1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from smdebug.core.collection_manager import CollectionManager
from smdebug.core.modes import ModeKeys
from smdebug.core.writer import FileWriter

WORKER = "worker_0"

# step -> collection -> tensor name -> value
StepTensors = Mapping[int, Mapping[str, Mapping[str, np.ndarray]]]


def write_trial(path: Path, steps: StepTensors, *, mode: ModeKeys = ModeKeys.TRAIN) -> Path:
    """Write every training step's tensors and the collections file; returns ``path``."""
    manager = CollectionManager()
    for step in sorted(steps):
        global_step = 2 * step + (1 if mode == ModeKeys.EVAL else 0)
        with FileWriter(trial_dir=str(path), step=global_step, worker=WORKER) as writer:
            for collection, tensors in steps[step].items():
                manager.add(collection)
                for name, value in tensors.items():
                    writer.write_tensor(tdata=np.asarray(value), tname=name, mode=mode, mode_step=step)
                    manager.get(collection).add_tensor_name(name)
    manager.export(str(path), f"{WORKER}_collections.json")
    return path
