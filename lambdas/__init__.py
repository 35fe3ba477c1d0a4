"""AWS Lambda handlers: thin adapters around pure cores. Never imports aws_cdk or TensorFlow."""
