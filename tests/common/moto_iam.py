"""Prepares a moto S3 server for tests of per-tenant credentials.

Usage: python moto_iam.py ENDPOINT SPEC.json

SPEC: {"bucket": NAME, "users": {USER: POLICY-DOCUMENT, ...}}. Creates the bucket and, per
user, an IAM user with that inline policy and an access key; then turns moto's
authentication and authorization on (every later request is checked against the policies).
Prints {USER: {"id": ..., "secret": ...}} as JSON.
"""

import json
import sys
import urllib.request

import boto3


def main():
    endpoint, spec_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = json.load(f)
    common = dict(
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    boto3.client("s3", **common).create_bucket(Bucket=spec["bucket"])
    iam = boto3.client("iam", **common)
    keys = {}
    for user, policy in spec["users"].items():
        iam.create_user(UserName=user)
        iam.put_user_policy(
            UserName=user, PolicyName="lifeboat", PolicyDocument=json.dumps(policy)
        )
        key = iam.create_access_key(UserName=user)["AccessKey"]
        keys[user] = {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    # From now on every request is authenticated and authorized.
    # (Not form-encoded: moto reads the count from the raw body.)
    request = urllib.request.Request(
        endpoint + "/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request) as answer:
        answer.read()
    print(json.dumps(keys))


if __name__ == "__main__":
    main()
