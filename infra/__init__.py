"""CDK constructs and stacks. Finds Lambda code by path only; never imported by runtime code."""
