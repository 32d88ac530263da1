"""Schemathesis (from PyPI) against the gateway's own `/openapi.json`: generated valid and
invalid requests for every operation, then stateful sequences through the documented links.
Nothing may answer 5xx, and every response must match the document (status codes, content
types, headers, bodies); requests the document forbids must be refused; authentication must
not be ignored.

`positive_data_acceptance` is left out: some refusals follow rules a JSON Schema cannot state
(per-type provider configuration, the last-admin rule, the managed provider cannot be
deleted, a default must name an enabled model), and each of those is a documented 400/409.

CI runs a short pass; `SWITCHBOARD_SCHEMATHESIS_EXAMPLES=500` runs a long one by hand."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import launch_gateway

EXAMPLES = os.environ.get("SWITCHBOARD_SCHEMATHESIS_EXAMPLES", "25")


@pytest.fixture(scope="module")
def fresh_gateway(sim):
    # Its own gateway: the stateful phase deletes and revokes what it finds.
    gw, process, workdir = launch_gateway(sim)
    yield gw
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(workdir, ignore_errors=True)


def test_every_operation_conforms_to_the_document(fresh_gateway):
    schemathesis = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    command = [
        schemathesis, "run", fresh_gateway.base + "/openapi.json",
        "--header", f"Authorization: Bearer {fresh_gateway.admin}",
        "--checks", "all", "--exclude-checks", "positive_data_acceptance",
        "--max-examples", EXAMPLES, "--seed", "20261203",
        "--request-timeout", "30", "--no-color",
    ]
    # Run from a scratch directory: Schemathesis keeps a cache in its working directory.
    scratch = tempfile.mkdtemp(prefix="sb-schemathesis-")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
