"""Runs TensorZero's HTTP gateway standalone from the `tensorzero` PyPI wheel.

The wheel ships the Rust gateway inside its extension module; `_start_http_gateway` (what
`tensorzero.patch_openai_client` uses) serves it on an ephemeral loopback port in this
process. Usage: tensorzero_gateway.py CONFIG.toml URL_FILE — writes the base URL to URL_FILE
and serves until SIGTERM.
"""
import os
import signal
import sys

import tensorzero

config, url_file = sys.argv[1], sys.argv[2]
gateway = tensorzero._start_http_gateway(
    config_file=config, clickhouse_url=None, postgres_url=None, valkey_url=None,
    async_setup=False)
tmp = url_file + ".tmp"
with open(tmp, "w") as f:
    f.write(gateway.base_url)
os.rename(tmp, url_file)
print("tensorzero gateway at", gateway.base_url, flush=True)
signal.signal(signal.SIGTERM, lambda *_: (gateway.close(), sys.exit(0)))
while True:
    signal.pause()
