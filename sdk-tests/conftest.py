"""Starts the provider simulator and the gateway (the real binaries) once per session and
connects one organization's providers of every protocol to the simulator."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("SWITCHBOARD_BIN", os.path.join(ROOT, "target", "debug", "switchboard"))
MASTER_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
# Test-only credentials the simulator checks like the cloud services do.
TESTDATA = os.path.join(ROOT, "crates", "providers", "tests", "testdata")
AWS_KEY_ID = "SBTESTKEYID000000001"
AWS_SECRET = "sb-test-secret-access-key-not-real"
VERTEX_EXPRESS_KEY = "vertex-express-test-key"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class Gateway:
    def __init__(self, base, env):
        self.base = base
        self.env = env
        self.admin = None
        self.member = None

    def cli(self, *args):
        out = subprocess.run([BINARY, *args, "--json"], env=self.env, capture_output=True, check=True)
        return json.loads(out.stdout)

    def api(self, method, path, body=None, token=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token or self.admin}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request) as response:
            text = response.read()
            return json.loads(text) if text else None


@pytest.fixture(scope="session")
def sim():
    port = free_port()
    process = subprocess.Popen([BINARY, "mock", "--listen", f"127.0.0.1:{port}",
                                "--aws-access-key-id", AWS_KEY_ID, "--aws-secret-access-key", AWS_SECRET,
                                "--google-public-key-file", os.path.join(TESTDATA, "test-only-service-account.pub.pem"),
                                "--google-api-key", VERTEX_EXPRESS_KEY],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_for(base + "/_sim/requests")
    yield base
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def gateway(sim):
    gw, process, workdir = launch_gateway(sim)
    yield gw
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(workdir, ignore_errors=True)


def launch_gateway(sim):
    """A gateway process on its own SQLite database with one organization whose providers of
    every type point at the simulator. Returns (gateway, process, workdir)."""
    workdir = tempfile.mkdtemp(prefix="sb-sdk-")
    port = free_port()
    env = dict(os.environ)
    env.update({
        "SWITCHBOARD_LISTEN": f"127.0.0.1:{port}",
        "SWITCHBOARD_DATABASE_URL": f"sqlite://{workdir}/switchboard.db",
        "SWITCHBOARD_MASTER_KEY": MASTER_KEY,
        "SWITCHBOARD_EGRESS_ALLOW": "127.0.0.1/32",
        "SWITCHBOARD_EGRESS_ALLOW_HTTP": "true",
        "SWITCHBOARD_OPENAI_BASE_URL": f"{sim}/v1",
        "SWITCHBOARD_ANTHROPIC_BASE_URL": sim,
        "SWITCHBOARD_MANAGED_OPENAI_API_KEY": "sk-platform-openai",
        "SWITCHBOARD_MANAGED_ANTHROPIC_API_KEY": "sk-ant-platform",
        "SWITCHBOARD_BEDROCK_ENDPOINT": sim,
        "SWITCHBOARD_STS_ENDPOINT": sim,
        "SWITCHBOARD_VERTEX_ENDPOINT": sim,
        "SWITCHBOARD_GOOGLE_TOKEN_URL": f"{sim}/token",
        "SWITCHBOARD_LOG": "warn",
        "SWITCHBOARD_SHUTDOWN_DRAIN_SECONDS": "0",
    })
    process = subprocess.Popen([BINARY, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_for(base + "/healthz")
    gw = Gateway(base, env)
    created = gw.cli("org", "create", "sdk", "--admin-email", "admin@sdk.test")
    gw.admin = created["token"]
    gw.member = gw.cli("user", "create", "--org", "sdk", "--email", "dev@sdk.test", "--role", "member")["token"]
    for name in ["openai-key", "anthropic-key", "azure-key", "compat-key"]:
        gw.api("POST", "/v1/organization/secrets", {"secretName": name, "secretValue": f"value-of-{name}"})
    with open(os.path.join(TESTDATA, "test-only-service-account.key.pem")) as f:
        private_key = f.read()
    cloud_secrets = {
        "aws-key-id": AWS_KEY_ID, "aws-secret": AWS_SECRET, "vertex-key": VERTEX_EXPRESS_KEY,
        "sa-email": "sdk-test@my-project-1.iam.gserviceaccount.com", "sa-key": private_key,
    }
    for name, value in cloud_secrets.items():
        gw.api("POST", "/v1/organization/secrets", {"secretName": name, "secretValue": value})
    providers = {
        "openai": {"apiKeySecretName": "openai-key"},
        "anthropic": {"apiKeySecretName": "anthropic-key"},
        "azure-openai": {"apiKeySecretName": "azure-key", "endpoint": sim, "deployment": "gpt5-deploy"},
        "azure-anthropic": {"apiKeySecretName": "azure-key", "endpoint": f"{sim}/anthropic"},
        "openai-compatible": {"baseUrl": f"{sim}/v1", "apiKeySecretName": "compat-key",
                              "models": [{"name": "compat-model"}]},
        "anthropic-compatible": {"baseUrl": f"{sim}/v1", "apiKeySecretName": "compat-key",
                                 "models": [{"name": "claude-compat"}]},
        "bedrock": {"accessKeyIdSecretName": "aws-key-id", "secretAccessKeySecretName": "aws-secret",
                    "region": "eu-west-1"},
        "vertex-gemini": {"apiKeySecretName": "vertex-key", "models": [{"name": "gemini-2.5-flash"}]},
        "vertex-anthropic": {"clientEmailSecretName": "sa-email", "privateKeySecretName": "sa-key",
                             "project": "my-project-1", "location": "europe-west1",
                             "models": [{"name": "claude-sonnet-4-5@20250929"}]},
    }
    for provider, config in providers.items():
        gw.api("POST", "/v1/llm-providers?validate_connection=true", {"provider": provider, "config": config})
    return gw, process, workdir
