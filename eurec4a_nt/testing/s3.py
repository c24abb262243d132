"""An S3-compatible server on a loopback port for tests and benchmarks (moto's server
mode, which supports conditional writes), and the settings that reach it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..demokit.sites import free_port

KEY = SECRET = "testing"
REGION = "us-east-1"


@contextmanager
def moto_s3() -> Iterator[str]:
    """A moto S3 server for the duration of the block; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_options(endpoint: str) -> dict[str, Any]:
    """s3fs storage options for the server at ``endpoint``."""
    return {"key": KEY, "secret": SECRET,
            "client_kwargs": {"endpoint_url": endpoint, "region_name": REGION}}


def s3_env(endpoint: str) -> dict[str, str]:
    """Environment variables that point any AWS client (s3fs, boto3) at ``endpoint``."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": REGION}


def new_bucket(endpoint: str) -> str:
    """Create an empty bucket with a fresh name; return the name."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY,
                          aws_secret_access_key=SECRET, region_name=REGION)
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    return bucket
