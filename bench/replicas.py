"""The `replicas` scenario: Switchboard as the reference deployment runs it (deploy/).

One replica against two behind HAProxy (deploy/haproxy.cfg), all on one PostgreSQL database
with the managed provider's limits on (shared counters: Redis when `redis-server` is
installed, else PostgreSQL's rows), measured in the same run with alternating rounds:

- added latency at one request at a time and throughput at 16 connections, for the direct
  call to the simulator, one replica (and the same replica through an organization provider,
  which no limit applies to: the limits' own cost), HAProxy in front of that one replica,
  and HAProxy in front of two (CPU per request of every process involved);
- the fan-out lag: from a `PUT /v1/llm-providers/defaults` answered by replica A to replica
  B serving the new default, over many changes (the poll is ten minutes, so only
  PostgreSQL's notifications can deliver it).

Needs a PostgreSQL server (`BENCH_POSTGRES_URL` or `SWITCHBOARD_TEST_POSTGRES_URL`, and
`psql` to create the scenario's database) and haproxy; without them the scenario is
recorded as skipped with the reason. Never asserts timings.
"""

import json
import os
import shutil
import subprocess
import time
import uuid

from harness import chat_body, free_port, http, log, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Limits on, far above what the run sends, so every request is admitted (and reserved).
UNLIMITED = {
    "SWITCHBOARD_MANAGED_REQUESTS_PER_HOUR": "1000000000",
    "SWITCHBOARD_MANAGED_TOKENS_PER_HOUR": "1000000000000",
    "SWITCHBOARD_MANAGED_MONTHLY_INVOCATIONS": "1000000000",
}


def prerequisites():
    """(postgres admin URL, haproxy path) or a reason to skip."""
    url = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL")
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if not url:
        return None, "no PostgreSQL (set BENCH_POSTGRES_URL or SWITCHBOARD_TEST_POSTGRES_URL)"
    if not shutil.which("psql"):
        return None, "psql is missing (it creates the scenario's database)"
    if not haproxy:
        return None, "haproxy is missing (scripts/ensure-haproxy installs Debian's package)"
    return (url, haproxy), None


def fresh_database(admin_url):
    name = f"sb_bench_{uuid.uuid4().hex}"
    subprocess.run(["psql", admin_url, "-q", "-c", f"CREATE DATABASE {name}"], check=True,
                   capture_output=True)
    base, _, _ = admin_url.rpartition("/")
    return name, f"{base}/{name}"


def drop_database(admin_url, name):
    subprocess.run(["psql", admin_url, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                   capture_output=True)


def quantiles(values_ms):
    v = sorted(values_ms)
    if not v:
        return {}

    def at(q):
        return round(v[min(len(v) - 1, int(round((len(v) - 1) * q)))], 2)
    return {"n": len(v), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(v[-1], 2)}


class Replicas:
    def __init__(self, bench, postgres_url, haproxy):
        self.b = bench
        self.admin_url = postgres_url
        self.haproxy = haproxy
        self.db_name, self.db_url = fresh_database(postgres_url)
        self.ports = []
        self.pids = {}

    # -- processes ---------------------------------------------------------------------------

    def env(self):
        env = self.b.gw_env()
        env["SWITCHBOARD_DATABASE_URL"] = self.db_url
        env["SWITCHBOARD_CONFIG_POLL_MS"] = "600000"
        env.update(UNLIMITED)
        if getattr(self, "redis_port", None):
            env["SWITCHBOARD_REDIS_URL"] = f"redis://127.0.0.1:{self.redis_port}/"
        return env

    def start_redis(self):
        if not shutil.which("redis-server"):
            self.redis_port = None
            return "postgres"
        self.redis_port = free_port()
        p = self.b.procs.start("redis", ["redis-server", "--port", str(self.redis_port),
                                         "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                         "no"], cpu=self.b.cpu_client)
        wait_port(self.redis_port, p)
        self.pids["redis"] = p.pid
        return "redis"

    def start_replica(self, n):
        port = free_port()
        env = self.env()
        env["SWITCHBOARD_LISTEN"] = f"127.0.0.1:{port}"
        p = self.b.procs.start(f"replica_{n}", [self.b.args.switchboard, "serve"], env=env,
                               cpu=self.b.cpu_gw)
        wait_port(port, p, timeout=120)
        self.ports.append(port)
        self.pids[f"replica_{n}"] = p.pid
        return port

    def start_balancer(self, name, ports):
        listen = free_port()
        with open(os.path.join(ROOT, "deploy", "haproxy.cfg")) as f:
            config = f.read()
        for n, port in enumerate(ports):
            config += f"    server r{n} 127.0.0.1:{port} check\n"
        path = os.path.join(self.b.work, f"{name}.cfg")
        with open(path, "w") as f:
            f.write(config)
        env = {"LB_LISTEN": f"127.0.0.1:{listen}"}
        p = self.b.procs.start(name, [self.haproxy, "-f", path, "-db"], env=env, cpu=self.b.cpu_gw)
        wait_port(listen, p)
        # Every replica in service: as many 200s in a row as there are replicas, twice.
        deadline, in_a_row = time.time() + 20, 0
        while in_a_row < 2 * len(ports):
            if time.time() > deadline:
                raise RuntimeError(f"{name} never became ready:\n" + self.b.procs.logtail(name))
            st, _ = http("GET", f"http://127.0.0.1:{listen}/readyz")
            in_a_row = in_a_row + 1 if st == 200 else 0
            if st != 200:
                time.sleep(0.1)
        self.pids[name] = p.pid
        return listen

    def setup_org(self, port):
        env = dict(os.environ)
        env.update(self.env())
        out = subprocess.run([self.b.args.switchboard, "org", "create", "bench", "--admin-email",
                              "admin@bench.test", "--json"], env=env, capture_output=True,
                             check=True)
        self.token = json.loads(out.stdout)["token"]
        # An organization provider too: the same replica with no limits, to isolate their cost.
        base, auth = f"http://127.0.0.1:{port}", {"authorization": f"Bearer {self.token}"}
        st, raw = http("POST", f"{base}/v1/organization/secrets",
                       {"secretName": "k", "secretValue": self.b.sim_key}, auth)
        assert st in (200, 201), (st, raw)
        st, raw = http("POST", f"{base}/v1/llm-providers",
                       {"provider": "openai", "config": {"apiKeySecretName": "k"}}, auth)
        assert st in (200, 201), (st, raw)

    def target(self, port, watch, provider="managed"):
        return {"addr": f"127.0.0.1:{port}", "path": "/v1/chat/completions",
                "headers": {"authorization": f"Bearer {self.token}",
                            "content-type": "application/json"},
                "model": "gpt-5", "extra": {"provider": provider}, "pid": None,
                "watch": watch}

    def specs(self, targets, text):
        specs = []
        for name, t in targets.items():
            watch = {k: self.pids[k] for k in t["watch"]} if t["watch"] else {}
            watch["sim"] = self.b.sim_pid
            specs.append({"name": name, "addr": t["addr"], "path": t["path"],
                          "headers": t["headers"],
                          "body": chat_body(t["model"], text, False, t.get("extra")),
                          "watch": watch})
        return specs

    # -- measurements ------------------------------------------------------------------------

    def fan_out(self, a, b, changes):
        """Lag from A's 2xx to B serving the changed default, `changes` times."""
        auth = {"authorization": f"Bearer {self.token}"}
        lags = []
        models = ["gpt-5", "claude-haiku-4-5-20251001"]
        for n in range(changes):
            model = models[n % 2]
            st, raw = http("PUT", f"http://127.0.0.1:{a}/v1/llm-providers/defaults",
                           {"provider": "managed", "model": model}, auth)
            if st != 200:
                raise RuntimeError(f"PUT defaults answered {st}: {raw[:300]!r}")
            written = time.perf_counter()
            while True:
                st, raw = http("GET", f"http://127.0.0.1:{b}/v1/llm-providers/defaults",
                               headers=auth)
                if st == 200 and json.loads(raw)["result"]["model"] == model:
                    break
                if time.perf_counter() - written > 5:
                    raise RuntimeError("a change never reached the other replica")
            lags.append((time.perf_counter() - written) * 1000)
        return quantiles(lags)

    def run(self):
        counters = self.start_redis()
        one = self.start_replica(1)
        self.setup_org(one)
        two = self.start_replica(2)
        lb1 = self.start_balancer("haproxy_1", [one])
        lb2 = self.start_balancer("haproxy_2", [one, two])
        targets = {
            "direct": dict(self.b.targets["direct"], watch=[]),
            "replica_no_limits": self.target(one, ["replica_1"], provider="openai"),
            "replica": self.target(one, ["replica_1"]),
            "haproxy_1": self.target(lb1, ["haproxy_1", "replica_1"]),
            "haproxy_2": self.target(lb2, ["haproxy_2", "replica_1", "replica_2"]),
        }
        n = self.b.n
        c1 = self.b.loadgen({"mode": "latency", "rounds": n(6, 1), "per_round": n(300, 10),
                             "warmup": n(30, 3), "targets": self.specs(targets, "Hello")},
                            "replicas-c1")
        c1["added_us"] = self.b.added(c1, "total_us")
        tp = self.b.loadgen({"mode": "throughput", "concurrency": n(16, 4),
                             "duration_s": n(4, 0.5), "rounds": n(3, 1),
                             "targets": self.specs(targets, "Hello")}, "replicas-throughput")
        fan_out = self.fan_out(one, two, n(100, 5))
        result = {"counters": counters, "c1": c1, "throughput": tp, "fan_out_ms": fan_out}
        log("replicas", json.dumps({
            "counters": counters,
            "added_p50_us": {k: v.get("p50") for k, v in c1["added_us"].items()},
            "rps": {k: round(v["rps_median"]) for k, v in tp["targets"].items()},
            "fan_out_ms": fan_out}))
        return result

    def stop(self):
        for name in ("haproxy_2", "haproxy_1", "replica_2", "replica_1", "redis"):
            self.b.procs.stop(name)
        drop_database(self.admin_url, self.db_name)


def scenario(bench):
    """Runs the scenario into bench.results (or records why it was skipped)."""
    found, why = prerequisites()
    if found is None:
        bench.results["scenarios"]["replicas"] = {"skipped": why}
        log("replicas: skipped:", why)
        return
    run = Replicas(bench, *found)
    try:
        bench.results["scenarios"]["replicas"] = run.run()
    finally:
        run.stop()
