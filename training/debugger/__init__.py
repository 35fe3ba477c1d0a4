"""In-container SageMaker Debugger: tensors from Keras 3, rules evaluated beside training, stop signals.

Why this exists: managed SageMaker Debugger is closed to new customers, AWS's framework containers no longer
ship smdebug, smdebug 1.0.34's ``KerasHook`` rejects TF >= 2.12, and Debugger's built-in rules were never open
source. So the training container records Debugger-format tensors itself (``writer``), evaluates the rules
itself (``rules``, ``evaluator``) and signals a stop itself (``signals``). Accounts that still have managed
Debugger keep working: the files are smdebug's, the events the stop Lambda reads have the same shape.

Modules, in data-flow order (docs/debugger.md tells the whole story):

- ``config``: where tensors go and which collections are saved at which steps (SageMaker's
  ``debughookconfig.json`` or the same document given as a hyperparameter, else small defaults), and the
  rule configuration list (SageMaker's ``DebugRuleConfigurations`` shape).
- ``layout``: the trial's step numbering and tensor names, and the low-level smdebug writes.
- ``writer``: the Keras callback writing through smdebug's core writer; ``create_trial`` reads the result.
- ``rules``: LossNotDecreasing, VanishingGradient, ExplodingTensor, Overfit, LatentClusterRule on
  ``smdebug.rules.Rule`` (they run under smdebug's ``invoke_rule`` too).
- ``evaluator``: follows the growing trial in a thread, keeps per-rule statuses, never fails training.
- ``signals``: the stop signal's sinks (EventBridge ``PutEvents``, the ``rule:<Name>=1`` metric line, a local
  JSON-lines file for the local sweep runner, optional self-termination); ``contract``: the stop contract's
  names and limits (the image does not ship ``lambdas/``).
- ``wiring``: hyperparameters, SageMaker's files and the environment -> the callbacks ``training/train.py``
  hands to ``job.run``.
"""
