"""The shared moto fixture really serves AWS APIs over HTTP."""

import boto3


def test_moto_server_answers_sns_over_http(moto_endpoint: str) -> None:
    # GIVEN a moto server reached through AWS_ENDPOINT_URL
    client = boto3.client("sns")
    # WHEN a topic is created
    arn = client.create_topic(Name="smoke")["TopicArn"]
    # THEN it is listed, proving the request went over HTTP to the server
    assert arn in [t["TopicArn"] for t in client.list_topics()["Topics"]]
    assert client.meta.endpoint_url == moto_endpoint
