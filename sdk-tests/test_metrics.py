"""`/metrics` as Prometheus reads it: parsed by the official Python client's text parser,
the data plane's per-provider, per-model series count exactly what the SDKs sent."""

import urllib.request

import openai
import anthropic
import pytest
from prometheus_client.parser import text_string_to_metric_families

from test_sdks import anthropic_client, openai_client


def scrape(gateway):
    """Every sample of every family, keyed by (sample name, sorted labels)."""
    with urllib.request.urlopen(gateway.base + "/metrics") as response:
        assert response.headers["content-type"].startswith("text/plain")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before, after, name, **labels):
    return value(after, name, **labels) - value(before, name, **labels)


def test_requests_tokens_and_latency_per_provider_and_model(gateway):
    series = {"surface": "openai", "provider": "anthropic", "model": "claude-sonnet-4-5-20250929"}
    before = scrape(gateway)
    client = openai_client(gateway)
    input_tokens = output_tokens = 0
    for _ in range(3):
        answer = client.chat.completions.create(
            model=series["model"], messages=[{"role": "user", "content": "count me"}],
            extra_body={"provider": "anthropic"})
        input_tokens += answer.usage.prompt_tokens
        output_tokens += answer.usage.completion_tokens
    for _ in range(2):
        stream = client.chat.completions.create(
            model=series["model"], messages=[{"role": "user", "content": "stream me"}],
            stream=True, stream_options={"include_usage": True}, extra_body={"provider": "anthropic"})
        for chunk in stream:
            if chunk.usage:
                input_tokens += chunk.usage.prompt_tokens
                output_tokens += chunk.usage.completion_tokens
    after = scrape(gateway)

    requests = "switchboard_gen_ai_requests_total"
    assert delta(before, after, requests, outcome="success", error="", **series) == 5
    tokens = "switchboard_gen_ai_tokens_total"
    assert delta(before, after, tokens, type="input", **series) == input_tokens
    assert delta(before, after, tokens, type="output", **series) == output_tokens
    duration = "switchboard_gen_ai_request_duration_seconds_count"
    assert delta(before, after, duration, **series) == 5
    upstream = "switchboard_gen_ai_upstream_latency_seconds_count"
    assert delta(before, after, upstream, **series) == 5
    first_token = "switchboard_gen_ai_time_to_first_token_seconds_count"
    assert delta(before, after, first_token, **series) >= 2
    assert value(after, "switchboard_gen_ai_open_streams", surface="openai") == 0
    # Histogram buckets are cumulative and end in +Inf = count.
    inf = value(after, "switchboard_gen_ai_request_duration_seconds_bucket", le="+Inf", **series)
    assert inf == value(after, duration, **series)


def test_errors_are_counted_by_name(gateway):
    series = {"surface": "anthropic", "provider": "openai", "model": "gpt-5"}
    before = scrape(gateway)
    client = anthropic_client(gateway)
    for _ in range(2):
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(
                model="gpt-5", max_tokens=50,
                messages=[{"role": "user", "content": "hi [[sim:status=429 retry_after=30]]"}],
                extra_body={"provider": "openai"})
    client.messages.create(model="gpt-5", max_tokens=50, messages=[{"role": "user", "content": "fine"}],
                           extra_body={"provider": "openai"})
    after = scrape(gateway)
    requests = "switchboard_gen_ai_requests_total"
    errors = {(labels, after[(name, labels)] - before.get((name, labels), 0.0))
              for (name, labels) in after
              if name == requests and ("outcome", "error") in labels
              and all(item in labels for item in series.items())}
    assert [count for _, count in errors if count] == [2], errors
    assert delta(before, after, requests, outcome="success", error="", **series) == 1


def test_http_series_and_recorder_gauges_exist(gateway):
    openai_client(gateway).models.list()
    samples = scrape(gateway)
    names = {name for name, _ in samples}
    for name in ["switchboard_http_requests_total", "switchboard_http_request_duration_seconds_count",
                 "switchboard_recorder_queue_depth", "switchboard_recorder_write_seconds_count",
                 "switchboard_uptime_seconds", "switchboard_http_panics_total",
                 "switchboard_store_call_seconds_count"]:
        assert name in names, name
    assert value(samples, "switchboard_http_requests_total",
                 method="GET", route="/v1/models", status="200") >= 1
    assert value(samples, "switchboard_store_call_seconds_count",
                 operation="write_invocations", result="ok") >= 1
