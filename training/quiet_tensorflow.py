"""Import TensorFlow without the screenful of CUDA and absl lines it prints on a machine without a GPU.

Why the file descriptor: TensorFlow's C++ start-up writes "Unable to register cuDNN factory", "computation
placer already registered" and the like straight to file descriptor 2 while it is imported, before absl's
logging (and so ``TF_CPP_MIN_LOG_LEVEL``) is initialised. Only redirecting descriptor 2 for the import
hides them. Someone who sets ``TF_CPP_MIN_LOG_LEVEL`` themselves (to see GPU start-up, say) gets
TensorFlow's own output untouched.
"""

from __future__ import annotations

import os
import sys
from typing import Any

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"


def import_tensorflow() -> Any:
    """``import tensorflow``, quietly unless ``TF_CPP_MIN_LOG_LEVEL`` is set; returns the module."""
    if "tensorflow" in sys.modules or LOG_LEVEL_VARIABLE in os.environ:
        import tensorflow

        return tensorflow
    os.environ[LOG_LEVEL_VARIABLE] = "3"  # also hides the "failed call to cuInit" of the first operation
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow
