"""Looking inside training runs and using what they learned.

- ``gradients``: per-layer gradient statistics, weight update ratios and a vanishing-gradient diagnosis read
  from a Debugger trial (``autostop analyze``).
- ``embeddings``: design signatures from a trained encoder, t-SNE pictures and TensorBoard projector
  exports (``autostop embed``, ``autostop tsne``).
- ``search``: nearest-neighbour search over signatures and its retrieval quality (``autostop similar``,
  ``autostop evaluate``).
- ``clustering``: the intra/inter-family distance ratio of a latent space, and the rule that watches it.

Modules import TensorFlow, scikit-learn and matplotlib inside the functions that need them, so importing
this package (and ``autostop --help``) stays fast.
"""
