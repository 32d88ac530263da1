"""The hostile-load scenario of bench/harness.py (`--only hostile`).

While slowloris connections (headers at one byte a second, reconnecting when closed), slow
stream readers (1 KiB a second) and concurrent huge request bodies run against the gateway,
one client sends normal requests one at a time; the scenario reports their p50/p99 next to
the same requests' figures just before the load, the gateway's peak RSS during the load, and
its RSS 15 s (smoke: 2 s) after every attacking connection is gone. It also counts how the gateway treated
the attackers: slowloris connections it closed and the longest one held, body answers by
status. Numbers only: nothing here asserts.
"""

import asyncio
import json
import time

from harness import rss_kib


def quantile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


REFUSALS = {}


async def http_post(port, path, token, body, read_limit=None):
    """One request on a fresh connection; returns (status, seconds). The first body of each
    refusal status is kept in REFUSALS (why the gateway refused)."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = (f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        writer.write(head)
        writer.write(body)
        await writer.drain()
        raw = await reader.read(read_limit) if read_limit else await reader.read()
        while read_limit is None:
            more = await reader.read(65536)
            if not more:
                break
            raw += more
        status = int(raw[9:12]) if raw.startswith(b"HTTP/1.1 ") else 0
        if status >= 400 and status not in REFUSALS:
            REFUSALS[status] = raw.split(b"\r\n\r\n", 1)[-1][:300].decode(errors="replace")
        return status, time.perf_counter() - started
    finally:
        writer.close()


class Attack:
    def __init__(self):
        self.stop = asyncio.Event()
        self.slowloris_closed = 0
        self.slowloris_longest_s = 0.0
        self.slow_readers_ended = 0
        self.slow_reader_statuses = {}
        self.body_statuses = {}


async def slowloris(port, attack):
    """Keeps one slowloris connection open: a head that never ends, one byte a second."""
    while not attack.stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        opened = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n")
        closed = False
        while not attack.stop.is_set():
            try:
                writer.write(b"X")
                await writer.drain()
                got = await asyncio.wait_for(reader.read(1), timeout=1.0)
                if not got:
                    closed = True
                    break
            except asyncio.TimeoutError:
                continue
            except OSError:
                closed = True
                break
        writer.close()
        if closed:
            attack.slowloris_closed += 1
            attack.slowloris_longest_s = max(attack.slowloris_longest_s,
                                             time.monotonic() - opened)


async def slow_reader(port, token, body, attack):
    """One long stream read at 1 KiB a second."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1024)
    except OSError:
        return
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer "
            f"{token}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "\r\n").encode()
    writer.write(head + body)
    try:
        await writer.drain()
        first = True
        while not attack.stop.is_set():
            got = await reader.read(1024)
            if first:
                status = got[9:12].decode(errors="replace") if got else "closed"
                attack.slow_reader_statuses[status] = attack.slow_reader_statuses.get(status, 0) + 1
                first = False
            if not got:
                attack.slow_readers_ended += 1
                return
            try:
                await asyncio.wait_for(attack.stop.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
    except OSError:
        attack.slow_readers_ended += 1
    finally:
        writer.close()


async def huge_body(port, token, body, attack):
    try:
        status, _ = await http_post(port, "/v1/chat/completions", token, body, read_limit=4096)
    except OSError:
        status = "connection_error"
    attack.body_statuses[str(status)] = attack.body_statuses.get(str(status), 0) + 1


async def normal_requests(port, token, body, until):
    """Normal requests one at a time until `until` is set: latencies (ms) of the answered
    ones and the count of every status."""
    latencies, statuses = [], {}
    while not until.is_set():
        try:
            status, seconds = await http_post(port, "/v1/chat/completions", token, body)
        except OSError:
            status, seconds = "connection_error", None
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status == 200:
            latencies.append(seconds * 1000.0)
        else:
            await asyncio.sleep(0.05)
    return latencies, statuses


def chat(text, stream=False, pad=0):
    body = {"model": "gpt-5", "provider": "openai",
            "messages": [{"role": "user", "content": text}]}
    if pad:
        body["messages"].insert(0, {"role": "system", "content": "x" * pad})
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


async def baseline(port, token, seconds):
    done = asyncio.Event()
    task = asyncio.create_task(normal_requests(port, token, chat("Hello"), done))
    await asyncio.sleep(seconds)
    done.set()
    return await task


async def scenario(port, token, pid, sizes):
    before_lat, _ = await baseline(port, token, sizes["baseline_s"])
    idle_rss = rss_kib(pid)
    attack = Attack()
    tasks = [asyncio.create_task(slowloris(port, attack)) for _ in range(sizes["slowloris"])]
    stream_body = chat(f"Stream please [[sim:chunks={sizes['stream_chunks']}]]", stream=True)
    tasks += [asyncio.create_task(slow_reader(port, token, stream_body, attack))
              for _ in range(sizes["slow_readers"])]
    big = chat("Hello", pad=sizes["body_mib"] * 1024 * 1024 - 200)
    tasks += [asyncio.create_task(huge_body(port, token, big, attack))
              for _ in range(sizes["bodies"])]
    peak = idle_rss or 0
    done = asyncio.Event()
    normal = asyncio.create_task(normal_requests(port, token, chat("Hello"), done))
    started = time.monotonic()
    while time.monotonic() - started < sizes["load_s"]:
        await asyncio.sleep(0.1)
        peak = max(peak, rss_kib(pid) or 0)
    done.set()
    attack.stop.set()
    during_lat, during_statuses = await normal
    await asyncio.gather(*tasks, return_exceptions=True)
    end_rss = rss_kib(pid)
    await asyncio.sleep(sizes["after_s"])
    after_rss = rss_kib(pid)

    def ms(values):
        return {"n": len(values), "p50": round(quantile(values, 0.5) or 0, 2),
                "p99": round(quantile(values, 0.99) or 0, 2)}

    return {
        "sizes": sizes,
        "normal_before_ms": ms(before_lat),
        "normal_during_ms": ms(during_lat),
        "normal_during_statuses": during_statuses,
        "rss_idle_kib": idle_rss,
        "rss_peak_kib": peak,
        "rss_at_end_kib": end_rss,
        "rss_after_kib": after_rss,
        "rss_after_vs_idle_pct": (round(100.0 * (after_rss - idle_rss) / idle_rss, 1)
                                      if idle_rss and after_rss else None),
        "slowloris_closed_by_gateway": attack.slowloris_closed,
        "slowloris_longest_held_s": round(attack.slowloris_longest_s, 1),
        "slow_readers_ended_early": attack.slow_readers_ended,
        "slow_reader_statuses": attack.slow_reader_statuses,
        "huge_body_statuses": attack.body_statuses,
        "refusal_bodies": {str(k): v for k, v in REFUSALS.items()},
    }


def run(port, token, pid, smoke):
    sizes = ({"slowloris": 10, "slow_readers": 4, "bodies": 2, "body_mib": 1,
              "stream_chunks": 200, "load_s": 3, "baseline_s": 1, "after_s": 2} if smoke else
             {"slowloris": 500, "slow_readers": 200, "bodies": 20, "body_mib": 30,
              "stream_chunks": 5000, "load_s": 30, "baseline_s": 5, "after_s": 15})
    return asyncio.run(scenario(port, token, pid, sizes))
