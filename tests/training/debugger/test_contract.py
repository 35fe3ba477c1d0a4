"""The container's copy of the stop contract (the image does not ship lambdas/) equals the decision core's."""

from __future__ import annotations

from lambdas.stop_training_job import decision
from training.debugger import contract, signals


def test_the_containers_contract_constants_are_the_decision_cores() -> None:
    assert contract.SOURCE == decision.TRAINING_SOURCE == signals.SOURCE
    assert contract.DETAIL_TYPE == decision.TRAINING_DETAIL_TYPE == signals.DETAIL_TYPE
    assert contract.ISSUES_FOUND == decision.ISSUES_FOUND == signals.RuleStatus.ISSUES_FOUND.value
    for name in ("JOB_NAME_PATTERN", "JOB_ARN_PATTERN", "RULE_NAME_PATTERN"):
        assert getattr(contract, name).pattern == getattr(decision, name).pattern, name
    assert contract.STATUS_DETAILS_MAX_LENGTH == decision.STATUS_DETAILS_MAX_LENGTH
    assert contract.MAX_RULE_STATUSES == decision.MAX_RULE_STATUSES
    assert contract.MAX_STEP == decision.MAX_STEP


def test_the_in_container_modules_never_import_the_lambda_package() -> None:
    # The image is built from training/ alone: an import of lambdas/ would fail inside it.
    import ast
    from pathlib import Path

    package = Path(contract.__file__).parent
    for module in sorted(package.glob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)] + [
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        ]
        assert not [name for name in imported if name.split(".")[0] in ("lambdas", "infra", "tests")], (
            module.name
        )
