"""Library code shared by the pipeline's stage scripts.

TensorFlow reads a few switches only once, when it is first imported, and they change the numbers it computes.
They are pinned here, before any module of this package can import TensorFlow, so every stage trains the same way.
The Keras backend is a param (runtime.backend), which runtime.start sets before Keras is imported.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
