#!/usr/bin/env python3
"""CDK app: the autostop stacks, configured from ``cdk.json`` context, with cdk-nag enforced.

cdk-nag 3.x is a policy-validation plugin (not an Aspect): ``Validations.of(app).add_plugins(...)`` makes
``cdk synth`` fail on any AwsSolutions finding that is not acknowledged with
``Validations.of(construct).acknowledge(...)`` (see infra/defaults.py ``acknowledge``).
Settings and their defaults: infra/config.py.
"""

from __future__ import annotations

import aws_cdk as cdk
import cdk_nag

from infra import config, stacks

STACK_NAME = "Autostop"
RENDER_TRANSFORMER_STACK_NAME = "AutostopRenderTransformer"
TRAINING_STACK_NAME = "AutostopTraining"


def build_app(app: cdk.App) -> stacks.AutostopStack:
    """Add the stacks and the cdk-nag plugin to ``app``; return the autostop (auto-stop core) stack."""
    settings = config.settings_from_context(app.node.try_get_context)
    stack = stacks.AutostopStack(
        app,
        STACK_NAME,
        settings=settings,
        description="autostop: SageMaker training jobs whose Debugger rules find issues stop themselves",
    )
    # The sweep launcher lives beside the execution role it passes; it reads the stop stack's sweep table.
    training = stacks.TrainingStack(
        app,
        TRAINING_STACK_NAME,
        sweep_table=stack.sweep_table,
        settings=settings,
        alarm_topic=stack.auto_stop.topic,
        description="autostop: training image, buckets and SageMaker execution role",
    )
    # Shards land in the training data bucket, where the execution role reads them: no copy step.
    stacks.RenderTransformerStack(
        app,
        RENDER_TRANSFORMER_STACK_NAME,
        settings=config.transformer_settings_from_context(app.node.try_get_context),
        alarm_topic=stack.auto_stop.topic,
        shard_bucket=training.training.data_bucket,
        description="autostop: render batches dropped in S3 become training shards (S3 -> SQS -> Lambda)",
    )
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    return stack


def main() -> None:
    app = cdk.App()
    build_app(app)
    app.synth()


if __name__ == "__main__":
    main()
