#!/usr/bin/env python3
"""Switchboard overhead benchmark: process orchestration, scenarios and reports.

Started by bench/run after the build. Standard library only. Starts the provider simulator,
the gateway (SQLite in a temp dir) and, when installed, the peers (LiteLLM proxy, TensorZero's
embedded HTTP gateway), all on loopback; drives them with sb-loadgen; writes
bench/results/latest.json, bench/RESULTS.md and bench/results/added-latency.svg.
Never asserts timings.
"""

import argparse
import base64
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class DiscardingOtlpReceiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that reads each export and answers 200 (an empty
    ExportTraceServiceResponse is an empty protobuf message)."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Targets from the issue (microseconds, MiB, KiB).
TARGETS = {
    "c1_added_p50_us": 50,
    "c1_added_p99_us": 100,
    "ttft_added_p99_us": 300,
    "gap_added_p99_us": 10,
    "stalls_2000": 0,
    "cpu_per_req_us": 25,
    "idle_rss_mib": 30,
    "rss_per_stream_kib": 64,
    "rss_recovery_pct": 10,
}


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# Processes


class Procs:
    def __init__(self, work):
        self.work = work
        self.procs = {}

    def start(self, name, argv, env=None, cpu=None):
        if cpu is not None and shutil.which("taskset") and os.cpu_count() >= 2:
            argv = ["taskset", "-c", str(cpu)] + argv
        out = open(os.path.join(self.work, f"{name}.log"), "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=full_env,
                             start_new_session=True)
        self.procs[name] = p
        return p

    def stop(self, name):
        p = self.procs.pop(name, None)
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name)

    def logtail(self, name, n=30):
        try:
            with open(os.path.join(self.work, f"{name}.log"), "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def http(method, url, body=None, headers=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, raw
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rfind(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


# ------------------------------------------------------------------------------------------
# Requests


def chat_body(model, text, stream=False, extra=None, pad_to=0):
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 64}
    if stream:
        body["stream"] = True
        # Ask for usage so the direct call and the gateway (which always asks upstream) see
        # the same event sequence; without it the gateway drops the usage event and the
        # client waits one extra pace period for [DONE].
        body["stream_options"] = {"include_usage": True}
    body.update(extra or {})
    raw = json.dumps(body, separators=(",", ":"))
    if pad_to and len(raw) < pad_to:
        # Pad with a system message so the user text (and the echo) stay the same.
        pad = pad_to - len(raw) - len(',{"role":"system","content":""}')
        body["messages"].insert(0, {"role": "system", "content": "x" * max(pad, 0)})
        raw = json.dumps(body, separators=(",", ":"))
    return raw


class Bench:
    def __init__(self, args):
        self.args = args
        self.smoke = args.smoke
        self.work = tempfile.mkdtemp(prefix="sb-bench-")
        self.procs = Procs(self.work)
        self.results = {"scenarios": {}, "peers": {}, "notes": []}
        self.cpu_gw = 1 if (os.cpu_count() or 1) >= 2 and not args.no_pin else None
        self.cpu_client = 0 if self.cpu_gw is not None else None
        self.sim_key = "sk-bench-upstream"
        self.master_key = base64.b64encode(os.urandom(32)).decode()
        self.db = os.path.join(self.work, "switchboard.db")
        self.targets = {}

    # -- sizes ------------------------------------------------------------------------------

    def n(self, full, smoke):
        return smoke if self.smoke else full

    # -- processes ---------------------------------------------------------------------------

    def start_sim(self):
        self.sim_port = free_port()
        p = self.procs.start("sim", [self.args.switchboard, "mock", "--listen",
                                     f"127.0.0.1:{self.sim_port}"], cpu=self.cpu_client)
        wait_port(self.sim_port, p)
        self.sim_pid = p.pid

    def gw_env(self):
        return {
            "SWITCHBOARD_DATABASE_URL": f"sqlite://{self.db}",
            "SWITCHBOARD_MASTER_KEY": self.master_key,
            "SWITCHBOARD_OPENAI_BASE_URL": f"http://127.0.0.1:{self.sim_port}/v1",
            "SWITCHBOARD_ANTHROPIC_BASE_URL": f"http://127.0.0.1:{self.sim_port}",
            "SWITCHBOARD_EGRESS_ALLOW": "127.0.0.1/32",
            "SWITCHBOARD_EGRESS_ALLOW_HTTP": "true",
            "SWITCHBOARD_MANAGED_OPENAI_API_KEY": self.sim_key,
            "SWITCHBOARD_MANAGED_ANTHROPIC_API_KEY": self.sim_key,
            "SWITCHBOARD_LOG": os.environ.get("BENCH_GATEWAY_LOG", "info"),
            # No load balancer to wait for: SIGTERM closes the listener at once.
            "SWITCHBOARD_SHUTDOWN_DRAIN_SECONDS": "0",
        }

    def start_gateway(self):
        if not hasattr(self, "gw_port"):
            self.gw_port = free_port()
        env = self.gw_env()
        env["SWITCHBOARD_LISTEN"] = f"127.0.0.1:{self.gw_port}"
        wrap = os.environ.get("BENCH_GATEWAY_WRAPPER", "").split()
        p = self.procs.start("gateway", wrap + [self.args.switchboard, "serve"], env=env,
                             cpu=self.cpu_gw)
        wait_port(self.gw_port, p, timeout=120)
        self.gw_pid = p.pid
        if wrap:
            # The wrapper (valgrind, perf) is the process; its pid is what /proc shows.
            pass

    def cli(self, *argv):
        env = dict(os.environ)
        env.update(self.gw_env())
        out = subprocess.run([self.args.switchboard, *argv], env=env, capture_output=True,
                             check=True)
        return json.loads(out.stdout)

    def setup_org(self):
        created = self.cli("org", "create", "bench", "--admin-email", "admin@bench.test",
                           "--json")
        self.token = created["token"]
        self.bench_org_id = created["org"]["id"]
        base = f"http://127.0.0.1:{self.gw_port}"
        auth = {"authorization": f"Bearer {self.token}"}
        st, raw = http("POST", f"{base}/v1/organization/secrets",
                       {"secretName": "k", "secretValue": self.sim_key}, auth)
        assert st in (200, 201), (st, raw)
        st, raw = http("POST", f"{base}/v1/llm-providers",
                       {"provider": "openai", "config": {"apiKeySecretName": "k"}}, auth)
        assert st in (200, 201), (st, raw)

    # -- peers ---------------------------------------------------------------------------------

    def venv_python(self):
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
        return os.path.join(target, "bench-peers", "venv", "bin", "python")

    def start_litellm(self):
        py = self.venv_python()
        litellm = os.path.join(os.path.dirname(py), "litellm")
        if not os.path.exists(litellm):
            self.results["peers"]["litellm"] = {
                "status": "not installed (bench/peers-install installs litellm[proxy]==1.108.7)"}
            return
        port = free_port()
        cfg = os.path.join(self.work, "litellm.yaml")
        with open(cfg, "w") as f:
            f.write(f"""model_list:
  - model_name: gpt-5
    litellm_params:
      model: openai/gpt-5
      api_base: http://127.0.0.1:{self.sim_port}/v1
      api_key: {self.sim_key}
general_settings:
  master_key: sk-litellm-bench
litellm_settings:
  telemetry: false
""")
        env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
               "NO_DOCS": "True", "DISABLE_ADMIN_UI": "True", "LITELLM_LOG": "ERROR"}
        p = self.procs.start("litellm", [litellm, "--config", cfg, "--host", "127.0.0.1",
                                         "--port", str(port), "--num_workers", "1"],
                             env=env, cpu=self.cpu_gw)
        try:
            wait_port(port, p, timeout=180)
        except RuntimeError as e:
            self.results["peers"]["litellm"] = {"status": f"failed to start: {e}",
                                                "log": self.procs.logtail("litellm")}
            self.procs.stop("litellm")
            return
        self.targets["litellm"] = {
            "addr": f"127.0.0.1:{port}", "path": "/v1/chat/completions",
            "headers": {"authorization": "Bearer sk-litellm-bench",
                        "content-type": "application/json"},
            "model": "gpt-5", "pid": p.pid}
        self.results["peers"]["litellm"] = {"status": "running", "version": "1.108.7",
                                            "config": "one model, master_key auth, no database"}

    def start_tensorzero(self):
        py = self.venv_python()
        if not os.path.exists(py) or subprocess.run(
                [py, "-c", "import tensorzero"], capture_output=True).returncode != 0:
            self.results["peers"]["tensorzero"] = {
                "status": "not installed (bench/peers-install installs tensorzero==2026.6.0)"}
            return
        cfg = os.path.join(self.work, "tensorzero.toml")
        with open(cfg, "w") as f:
            f.write(f"""[gateway]
observability.enabled = false

[models.sim]
routing = ["sim"]

[models.sim.providers.sim]
type = "openai"
model_name = "gpt-5"
api_base = "http://127.0.0.1:{self.sim_port}/v1/"
api_key_location = "env::SIM_OPENAI_KEY"
""")
        script = os.path.join(HERE, "peers", "tensorzero_gateway.py")
        url_file = os.path.join(self.work, "tensorzero.url")
        p = self.procs.start("tensorzero", [py, script, cfg, url_file],
                             env={"SIM_OPENAI_KEY": self.sim_key,
                                  "TENSORZERO_DISABLE_PSEUDONYMOUS_USAGE_ANALYTICS": "1"},
                             cpu=self.cpu_gw)
        deadline = time.time() + 60
        while time.time() < deadline and not os.path.exists(url_file) and p.poll() is None:
            time.sleep(0.1)
        if not os.path.exists(url_file):
            self.results["peers"]["tensorzero"] = {"status": "failed to start",
                                                   "log": self.procs.logtail("tensorzero")}
            self.procs.stop("tensorzero")
            return
        time.sleep(0.2)
        url = open(url_file).read().strip()
        hostport = url.split("//", 1)[1].split("/", 1)[0]
        self.targets["tensorzero"] = {
            "addr": hostport, "path": "/openai/v1/chat/completions",
            "headers": {"content-type": "application/json"},
            "model": "tensorzero::model_name::sim", "pid": p.pid}
        self.results["peers"]["tensorzero"] = {
            "status": "running", "version": "2026.6.0",
            "config": "embedded HTTP gateway from the PyPI wheel, one OpenAI model, "
                      "observability disabled (no ClickHouse/Postgres), no auth",
            "base_url": url}

    def start_relay(self):
        """A plain TCP byte relay in front of the simulator, pinned like the gateways: the
        machine's floor for one extra loopback hop (no HTTP, no TLS, no work)."""
        port = free_port()
        p = self.procs.start("relay", [self.args.loadgen, "relay", f"127.0.0.1:{port}",
                                       f"127.0.0.1:{self.sim_port}"], cpu=self.cpu_gw)
        wait_port(port, p)
        t = dict(self.targets["direct"])
        t["addr"] = f"127.0.0.1:{port}"
        t["pid"] = p.pid
        self.targets["relay"] = t

    def start_async_gateway(self):
        """A second Switchboard with SWITCHBOARD_RECORDING=async on its own SQLite file,
        pinned like the first: durable and async recording measured in the same run."""
        self.start_gateway_variant("switchboard_async", {"SWITCHBOARD_RECORDING": "async"})

    def start_traced_gateway(self):
        """A second Switchboard exporting OTLP traces (every request sampled) to a local
        receiver that accepts and discards them: tracing on against tracing off, same run."""
        receiver = ThreadingHTTPServer(("127.0.0.1", 0), DiscardingOtlpReceiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        self.otlp_receiver = receiver
        endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
        self.start_gateway_variant("switchboard_traced", {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_SAMPLER": "always_on"})

    def start_gateway_variant(self, name, extra_env):
        """Another Switchboard on its own SQLite file with `extra_env`, pinned like the first,
        registered as target `name`."""
        port = free_port()
        env = self.gw_env()
        env["SWITCHBOARD_DATABASE_URL"] = f"sqlite://{os.path.join(self.work, name + '.db')}"
        env.update(extra_env)
        env["SWITCHBOARD_LISTEN"] = f"127.0.0.1:{port}"
        p = self.procs.start(name, [self.args.switchboard, "serve"], env=env,
                             cpu=self.cpu_gw)
        wait_port(port, p, timeout=120)
        cli_env = dict(os.environ)
        cli_env.update(env)
        out = subprocess.run([self.args.switchboard, "org", "create", "bench", "--admin-email",
                              "admin@bench.test", "--json"], env=cli_env, capture_output=True,
                             check=True)
        token = json.loads(out.stdout)["token"]
        base = f"http://127.0.0.1:{port}"
        auth = {"authorization": f"Bearer {token}"}
        http("POST", f"{base}/v1/organization/secrets",
             {"secretName": "k", "secretValue": self.sim_key}, auth)
        http("POST", f"{base}/v1/llm-providers",
             {"provider": "openai", "config": {"apiKeySecretName": "k"}}, auth)
        t = dict(self.targets["switchboard"])
        t["addr"] = f"127.0.0.1:{port}"
        t["headers"] = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        t["pid"] = p.pid
        self.targets[name] = t

    def sc_tracing(self):
        """Tracing off against on (OTLP/HTTP to a local receiver, every request sampled):
        added latency at one request at a time and CPU per request at 16 connections."""
        names = ["direct", "switchboard", "switchboard_traced"]
        c1 = self.sc_c1("tracing_c1", "Hello", self.n(6, 1), self.n(300, 10), self.n(30, 3),
                        names)
        tp = self.loadgen({"mode": "throughput", "concurrency": self.n(16, 4),
                           "duration_s": self.n(4, 0.5), "rounds": self.n(3, 1),
                           "targets": self.target_specs(names, "Hello", watch=True)},
                          "tracing-throughput")
        del self.results["scenarios"]["tracing_c1"]
        self.results["scenarios"]["tracing"] = {"c1": c1, "throughput": tp}
        log("tracing", json.dumps({
            k: {"added_p50": c1["added_us"].get(k, {}).get("p50"),
                "added_p99": c1["added_us"].get(k, {}).get("p99"),
                "rps": round(v["rps_median"]),
                "cpu_us": v.get("cpu_us_per_req_median")}
            for k, v in tp["targets"].items() if k.startswith("switchboard")}))

    def sc_recording(self):
        """Durable vs async recording: added latency at one request at a time, whole answers
        and streams, and throughput at 16 connections, same run, alternating rounds."""
        names = ["direct", "relay", "switchboard", "switchboard_async"]
        c1 = self.sc_c1("recording_c1", "Hello", self.n(6, 1), self.n(300, 10), self.n(30, 3),
                        names)
        stream = self.sc_stream("recording_stream", "Hello [[sim:chunks=16]]", self.n(6, 1),
                                self.n(100, 5), self.n(10, 2), names)
        tp = self.loadgen({"mode": "throughput", "concurrency": self.n(16, 4),
                           "duration_s": self.n(4, 0.5), "rounds": self.n(3, 1),
                           "targets": self.target_specs(names, "Hello", watch=True)},
                          "recording-throughput")
        del self.results["scenarios"]["recording_c1"]
        del self.results["scenarios"]["recording_stream"]
        self.results["scenarios"]["recording"] = {"c1": c1, "stream": stream, "throughput": tp}
        log("recording", json.dumps({
            k: {"added_p50": c1["added_us"].get(k, {}).get("p50"),
                "added_p99": c1["added_us"].get(k, {}).get("p99"),
                "rps": round(v["rps_median"])}
            for k, v in tp["targets"].items() if k.startswith("switchboard")}))

    def check_peer(self, name):
        t = self.targets.get(name)
        if not t:
            return
        st, raw = http("POST", f"http://{t['addr']}{t['path']}",
                       json.loads(chat_body(t["model"], "ping")), t["headers"])
        if st != 200:
            self.results["peers"][name]["status"] = f"answers {st}: {raw[:300]!r}"
            del self.targets[name]
            self.procs.stop(name)

    # -- targets ---------------------------------------------------------------------------------

    def base_targets(self):
        self.targets["direct"] = {
            "addr": f"127.0.0.1:{self.sim_port}", "path": "/v1/chat/completions",
            "headers": {"authorization": f"Bearer {self.sim_key}",
                        "content-type": "application/json"},
            "model": "gpt-5", "pid": self.sim_pid}
        self.targets["switchboard"] = {
            "addr": f"127.0.0.1:{self.gw_port}", "path": "/v1/chat/completions",
            "headers": {"authorization": f"Bearer {self.token}",
                        "content-type": "application/json"},
            "model": "gpt-5", "extra": {"provider": "openai"}, "pid": None}

    def target_specs(self, names, text, stream=False, pad_to=0, watch=None):
        specs = []
        for name in names:
            t = self.targets[name]
            spec = {"name": name, "addr": t["addr"], "path": t["path"],
                    "headers": t["headers"],
                    "body": chat_body(t["model"], text, stream, t.get("extra"), pad_to)}
            w = {}
            if watch:
                pid = self.gw_pid if name == "switchboard" else t["pid"]
                w[name if name != "direct" else "sim"] = pid
                if name != "direct":
                    w["sim"] = self.sim_pid
            spec["watch"] = w
            specs.append(spec)
        return specs

    def loadgen(self, spec, label):
        path = os.path.join(self.work, f"spec-{label}.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        argv = [self.args.loadgen, path]
        if self.cpu_client is not None:
            argv = ["taskset", "-c", str(self.cpu_client)] + argv
        t0 = time.time()
        out = subprocess.run(argv, capture_output=True)
        if out.returncode != 0:
            raise RuntimeError(f"loadgen {label} failed: {out.stderr.decode()[-2000:]}")
        res = json.loads(out.stdout)
        res["wall_s"] = round(time.time() - t0, 2)
        self.clear_sim()
        return res

    def clear_sim(self):
        # The simulator records every request in memory; forget them between scenarios.
        http("DELETE", f"http://127.0.0.1:{self.sim_port}/_sim/requests")

    def peer_names(self):
        return [n for n in ("litellm", "tensorzero") if n in self.targets]

    # -- scenarios -----------------------------------------------------------------------------

    def added(self, res, metric, base="direct"):
        """Added latency per target: quantile of target minus the same quantile of direct."""
        t = res["targets"]
        out = {}
        for name, r in t.items():
            if name == base or metric not in r or r[metric].get("n", 0) == 0:
                continue
            d = t[base][metric]
            out[name] = {q: round(r[metric][q] - d[q], 1) for q in ("p50", "p90", "p99", "p999")}
            out[name]["ratio_p50"] = round(r[metric]["p50"] / d["p50"], 2) if d["p50"] else None
        return out

    def sc_c1(self, name, text, rounds, per_round, warmup, names, pad_to=0):
        gw0 = cpu_ticks(self.gw_pid)
        res = self.loadgen({"mode": "latency", "rounds": rounds, "per_round": per_round,
                            "warmup": warmup,
                            "targets": self.target_specs(names, text, pad_to=pad_to)}, name)
        gw_req = rounds * (per_round + warmup)
        res["switchboard_cpu_us_per_req"] = round(
            (cpu_ticks(self.gw_pid) - gw0) * 1e4 / gw_req, 1)
        res["added_us"] = self.added(res, "total_us")
        self.results["scenarios"][name] = res
        log(name, json.dumps(res["added_us"]))
        return res

    def sc_stream(self, name, text, rounds, per_round, warmup, names):
        res = self.loadgen({"mode": "stream", "rounds": rounds, "per_round": per_round,
                            "warmup": warmup,
                            "targets": self.target_specs(names, text, stream=True)}, name)
        res["added_ttft_us"] = self.added(res, "ttft_us")
        res["added_gap_us"] = self.added(res, "gap_us")
        res["added_total_us"] = self.added(res, "total_us")
        self.results["scenarios"][name] = res
        log(name, "ttft", json.dumps(res["added_ttft_us"]), "gap", json.dumps(res["added_gap_us"]))
        return res

    def sc_many(self, conc, names, chunks=64, pace=20):
        text = f"Stream please [[sim:delay_ms={pace} chunks={chunks}]]"
        ramp = min(1000, max(100, conc // 2))
        res = self.loadgen({"mode": "many", "concurrency": conc, "ramp_ms": ramp,
                            "pace_ms": pace, "stall_factor": 2.0,
                            "settle_ms": self.n(3000, 500),
                            "targets": self.target_specs(names, text, stream=True, watch=True)},
                           f"many-{conc}")
        for tname, r in res["targets"].items():
            key = "sim" if tname == "direct" else tname
            idle, peak = r["rss_idle_kib"].get(key), r["rss_peak_kib"].get(key)
            # Peak RSS over the streams that were open at once (the ramp opens all of them
            # before the first finishes).
            open_at = r.get("max_open") or conc
            if idle and peak and open_at:
                r["rss_per_stream_kib"] = round((peak - idle) / open_at, 1)
            after = r["rss_after_kib"].get(key)
            if idle and after:
                r["rss_after_vs_idle_pct"] = round(100.0 * (after - idle) / idle, 1)
        self.results["scenarios"][f"many_{conc}"] = res
        log(f"many_{conc}", json.dumps({k: {"stalls": v["stalls"], "errors": v["errors"],
                                            "non200": v["non200"],
                                            "gap_p99": v["gap_us"].get("p99"),
                                            "rss_per_stream_kib": v.get("rss_per_stream_kib")}
                                        for k, v in res["targets"].items()}))
        return res

    def sc_hostile(self):
        import hostile
        res = hostile.run(self.gw_port, self.token, self.gw_pid, self.smoke)
        self.results["scenarios"]["hostile"] = res
        log("hostile", json.dumps({k: res[k] for k in (
            "normal_before_ms", "normal_during_ms", "rss_idle_kib", "rss_peak_kib",
            "rss_after_kib", "slowloris_closed_by_gateway", "slowloris_longest_held_s")}))
        return res

    def sc_throughput(self, names):
        perf = None
        if os.environ.get("BENCH_PERF_OUT"):
            # Optional profile of the gateway during this scenario (perf's software clock).
            perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "1999",
                                     "--call-graph", "dwarf,16384", "-p", str(self.gw_pid),
                                     "-o", os.environ["BENCH_PERF_OUT"]],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        res = self.loadgen({"mode": "throughput", "concurrency": self.n(16, 4),
                            "duration_s": self.n(4, 0.5), "rounds": self.n(3, 1),
                            "targets": self.target_specs(names, "Hello", watch=True)},
                           "throughput")
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        self.results["scenarios"]["throughput"] = res
        log("throughput", json.dumps({k: {"rps": round(v["rps_median"]),
                                          "cpu_us": v["cpu_us_per_req_median"]}
                                      for k, v in res["targets"].items()}))
        return res

    # -- growth: organizations -------------------------------------------------------------------

    def bulk_orgs(self, total):
        """Adds organizations straight into the SQLite file until `total` exist, each with an
        openai provider, a secret row and a data key copied from the bench org (mirrors
        crates/store/migrations/sqlite/0001_initial.sql). The gateway is stopped meanwhile."""
        con = sqlite3.connect(self.db)
        cur = con.cursor()
        have = cur.execute("SELECT count(*) FROM organizations").fetchone()[0]
        need = total - have
        if need <= 0:
            con.close()
            return have
        src = self.bench_org_id
        dk = cur.execute("SELECT wrapped_key, kek_version, created_at FROM data_keys "
                         "WHERE org_id=?", (src,)).fetchone()
        prov = cur.execute("SELECT provider_type, enabled, config, overrides, created_at, "
                           "created_by, updated_at, updated_by FROM providers WHERE org_id=?",
                           (src,)).fetchall()
        sec = cur.execute("SELECT name, description, ciphertext, created_at, created_by, "
                          "updated_at, updated_by FROM secrets WHERE org_id=?",
                          (src,)).fetchall()
        ais = cur.execute("SELECT retention_days, store_interaction_data, updated_at, "
                          "updated_by FROM ai_settings WHERE org_id=?", (src,)).fetchall()
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        orgs, dks, provs, secs, aiss = [], [], [], [], []
        for i in range(need):
            oid = str(uuid.uuid4())
            orgs.append((oid, f"bulk-{have + i:07d}", now))
            if dk:
                dks.append((oid, dk[0], dk[1], dk[2]))
            provs += [(oid, *p) for p in prov]
            secs += [(oid, *s) for s in sec]
            aiss += [(oid, *a) for a in ais]
        cur.execute("BEGIN")
        cur.executemany("INSERT INTO organizations (id, name, created_at) VALUES (?,?,?)", orgs)
        cur.executemany("INSERT INTO data_keys (org_id, wrapped_key, kek_version, created_at) "
                        "VALUES (?,?,?,?)", dks)
        cur.executemany("INSERT INTO providers (org_id, provider_type, enabled, config, "
                        "overrides, created_at, created_by, updated_at, updated_by) "
                        "VALUES (?,?,?,?,?,?,?,?,?)", provs)
        cur.executemany("INSERT INTO secrets (org_id, name, description, ciphertext, "
                        "created_at, created_by, updated_at, updated_by) "
                        "VALUES (?,?,?,?,?,?,?,?)", secs)
        cur.executemany("INSERT INTO ai_settings (org_id, retention_days, "
                        "store_interaction_data, updated_at, updated_by) VALUES (?,?,?,?,?)",
                        aiss)
        con.commit()
        n = cur.execute("SELECT count(*) FROM organizations").fetchone()[0]
        con.close()
        return n

    def sc_growth(self):
        counts = [1, 1000, 100000] if not self.smoke else [1, 100]
        out = {}
        for c in counts:
            t0 = time.time()
            self.procs.stop("gateway")
            n = self.bulk_orgs(c)
            insert_s = round(time.time() - t0, 1)
            self.start_gateway()
            idle = rss_kib(self.gw_pid)
            res = self.sc_c1(f"orgs_{c}", "Hello", self.n(5, 1), self.n(400, 20),
                             self.n(50, 5), ["direct", "switchboard"])
            res["organizations"] = n
            res["insert_s"] = insert_s
            res["gateway_rss_idle_kib"] = idle
            out[c] = res["added_us"].get("switchboard")
        self.results["growth_orgs"] = out

    # -- main ------------------------------------------------------------------------------------

    def run(self):
        only = set(self.args.only.split(",")) if self.args.only else None

        def want(s):
            return only is None or s in only

        log("work dir", self.work)
        self.start_sim()
        self.start_gateway()
        self.setup_org()
        self.base_targets()
        # Sanity check through the gateway.
        st, raw = http("POST", f"http://127.0.0.1:{self.gw_port}/v1/chat/completions",
                       json.loads(chat_body("gpt-5", "ping", extra={"provider": "openai"})),
                       {"authorization": f"Bearer {self.token}"})
        if st != 200:
            raise RuntimeError(f"gateway answered {st}: {raw[:500]!r}\n"
                               + self.procs.logtail("gateway"))
        time.sleep(0.5)
        self.results["memory"] = {"gateway_idle_rss_kib_fresh": rss_kib(self.gw_pid)}
        if not self.args.no_peers and not self.smoke:
            self.start_litellm()
            self.start_tensorzero()
            for p in ("litellm", "tensorzero"):
                self.check_peer(p)
        self.start_relay()
        peers = self.peer_names()
        everyone = ["direct", "relay", "switchboard"] + peers
        log("targets", everyone)

        if want("c1"):
            self.sc_c1("c1_instant", "Hello", self.n(10, 2), self.n(500, 20), self.n(50, 5),
                       everyone)
            self.sc_c1("c1_delay20", "Hello [[sim:latency_ms=20]]", self.n(6, 1),
                       self.n(100, 5), self.n(5, 1), everyone)
        if want("stream"):
            self.sc_stream("ttft", "Hello [[sim:chunks=64]]", self.n(10, 2), self.n(100, 5),
                           self.n(10, 2), everyone)
            self.sc_stream("stream_paced", "Hello [[sim:delay_ms=20 chunks=64]]",
                           self.n(4, 1), self.n(8, 2), 1, everyone)
        if want("throughput"):
            self.sc_throughput(everyone)
        if want("recording"):
            self.start_async_gateway()
            self.sc_recording()
            self.procs.stop("switchboard_async")
        if want("tracing"):
            self.start_traced_gateway()
            self.sc_tracing()
            self.procs.stop("switchboard_traced")
            self.otlp_receiver.shutdown()
        self.results["memory"]["gateway_idle_rss_kib_warm"] = rss_kib(self.gw_pid)
        if want("many"):
            for conc in ([500, 1000, 2000] if not self.smoke else [50]):
                names = ["direct", "switchboard"] + (peers if conc <= 500 else [])
                self.sc_many(conc, names)
        if want("bodies"):
            for size, label in ((1024, "1KB"), (100 * 1024, "100KB"), (1024 * 1024, "1MB")):
                big = size >= 1024 * 1024
                self.sc_c1(f"body_{label}", "Hello", self.n(5, 1),
                           self.n(40 if big else 200, 3), self.n(5, 1),
                           everyone, pad_to=size)
        if want("hostile"):
            self.sc_hostile()
        if want("replicas"):
            import replicas
            replicas.scenario(self)
        for p in peers:
            self.procs.stop(p)
        if want("growth"):
            self.sc_growth()
        self.results["memory"]["gateway_rss_end_kib"] = rss_kib(self.gw_pid)


LOAD_AT_START = os.getloadavg()


def machine():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""
    return {
        "cpu": sh("lscpu | sed -n 's/^Model name: *//p' | head -1"),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "memory": sh("free -h | awk '/Mem:/{print $2}'"),
        "virtualization": sh("lscpu | sed -n 's/^Hypervisor vendor: *//p'"),
        "load_at_start": LOAD_AT_START,
        "load_at_end": os.getloadavg(),
    }


def commit():
    def git(*a):
        return subprocess.run(["git", "-C", ROOT, *a], capture_output=True,
                              text=True).stdout.strip()
    return {"sha": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain",
                                                              "--", "crates"))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--switchboard", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--profile", default="ci-perf")
    ap.add_argument("--build-seconds", type=float, default=None)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--only", default="", help="comma list: c1,stream,throughput,recording,tracing,many,"
                    "bodies,hostile,replicas,growth")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, DB)")
    ap.add_argument("--name", default=None,
                    help="result file name (default latest.json, smoke.json with --smoke); "
                         "RESULTS.md is rendered only for latest.json")
    args = ap.parse_args()

    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass

    b = Bench(args)
    started = time.time()
    status = "ok"
    try:
        b.run()
    except Exception as e:  # report what we have, then fail
        status = f"error: {e}"
        log(status)
        for name in ("gateway", "sim"):
            log(f"--- {name} log tail ---\n" + b.procs.logtail(name))
    finally:
        b.procs.stop_all()
    out = {
        "status": status,
        "smoke": args.smoke,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": round(time.time() - started, 1),
        "profile": args.profile,
        "build_seconds": args.build_seconds,
        "pinning": ({"gateway_and_peers": b.cpu_gw, "simulator_and_loadgen": b.cpu_client}
                    if b.cpu_gw is not None else None),
        "machine": machine(),
        "commit": commit(),
        "targets": TARGETS,
        **b.results,
    }
    os.makedirs(args.out, exist_ok=True)
    name = args.name or ("smoke.json" if args.smoke else "latest.json")
    path = os.path.join(args.out, name)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    log("wrote", path)
    if name == "latest.json":
        subprocess.run([sys.executable, os.path.join(HERE, "report.py"), path], check=False)
    if not args.keep:
        shutil.rmtree(b.work, ignore_errors=True)
    else:
        log("kept", b.work)
    sys.exit(0 if status == "ok" else 1)


if __name__ == "__main__":
    main()
