"""The official OpenAI and Anthropic Python SDKs against the gateway, unchanged but for
base URL and key: every provider protocol, streaming and not, tools, per-request selection
and every validation error."""

import json

import anthropic
import openai
import pytest

# (provider, model) pairs covering every protocol the gateway speaks.
TARGETS = [
    ("openai", "gpt-5"),
    ("azure-openai", "gpt-5"),
    ("openai-compatible", "compat-model"),
    ("anthropic", "claude-sonnet-4-5-20250929"),
    ("azure-anthropic", "claude-opus-4-6"),
    ("anthropic-compatible", "claude-compat"),
    ("managed", "gpt-5"),
    ("managed", "claude-haiku-4-5-20251001"),
    ("bedrock", "claude-sonnet-4-20250514"),
    ("vertex-gemini", "gemini-2.5-flash"),
    ("vertex-anthropic", "claude-sonnet-4-5@20250929"),
]

WEATHER_OPENAI = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
WEATHER_ANTHROPIC = [{"name": "get_weather", "description": "Weather for a city",
                      "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                       "required": ["city"]}}]


def openai_client(gateway):
    return openai.OpenAI(base_url=gateway.base + "/v1", api_key=gateway.member, max_retries=0)


def anthropic_client(gateway):
    return anthropic.Anthropic(base_url=gateway.base, api_key=gateway.member, max_retries=0)


@pytest.mark.parametrize("provider,model", TARGETS)
def test_openai_sdk_non_streaming(gateway, provider, model):
    client = openai_client(gateway)
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hello sdk"}], extra_body={"provider": provider})
    assert raw.headers["x-switchboard-provider"] == provider
    assert raw.headers["x-switchboard-model"] == model
    completion = raw.parse()
    assert "hello sdk" in completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0


@pytest.mark.parametrize("provider,model", TARGETS)
def test_openai_sdk_streaming_with_usage(gateway, provider, model):
    client = openai_client(gateway)
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "stream to me"}], stream=True,
        stream_options={"include_usage": True}, extra_body={"provider": provider})
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert "stream to me" in text
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


@pytest.mark.parametrize("provider,model", TARGETS)
def test_openai_sdk_tool_calls(gateway, provider, model):
    client = openai_client(gateway)
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Paris"}], tools=WEATHER_OPENAI,
        extra_body={"provider": provider})
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert completion.choices[0].finish_reason == "tool_calls"
    # The streamed form assembles to the same call.
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Paris"}], tools=WEATHER_OPENAI, stream=True,
        extra_body={"provider": provider})
    arguments = "".join(d.function.arguments or "" for c in stream for ch in c.choices
                        for d in (ch.delta.tool_calls or []))
    assert json.loads(arguments) == {"city": "Paris"}


@pytest.mark.parametrize("provider,model", TARGETS)
def test_anthropic_sdk_non_streaming(gateway, provider, model):
    client = anthropic_client(gateway)
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "hello sdk"}],
        extra_body={"provider": provider})
    assert raw.headers["x-switchboard-provider"] == provider
    message = raw.parse()
    assert "hello sdk" in message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0


@pytest.mark.parametrize("provider,model", TARGETS)
def test_anthropic_sdk_streaming(gateway, provider, model):
    client = anthropic_client(gateway)
    with client.messages.stream(model=model, max_tokens=100, messages=[{"role": "user", "content": "stream to me"}],
                                extra_body={"provider": provider}) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "stream to me" in text
    assert final.stop_reason == "end_turn"


@pytest.mark.parametrize("provider,model", TARGETS)
def test_anthropic_sdk_tool_use(gateway, provider, model):
    client = anthropic_client(gateway)
    message = client.messages.create(model=model, max_tokens=100, tools=WEATHER_ANTHROPIC,
                                      messages=[{"role": "user", "content": "Paris"}],
                                      extra_body={"provider": provider})
    tool = [b for b in message.content if b.type == "tool_use"][0]
    assert tool.name == "get_weather" and tool.input == {"city": "Paris"}
    assert message.stop_reason == "tool_use"
    with client.messages.stream(model=model, max_tokens=100, tools=WEATHER_ANTHROPIC,
                                messages=[{"role": "user", "content": "Paris"}],
                                extra_body={"provider": provider}) as stream:
        final = stream.get_final_message()
    tool = [b for b in final.content if b.type == "tool_use"][0]
    assert tool.input == {"city": "Paris"}


def test_selection_by_model_string_and_defaults(gateway):
    client = openai_client(gateway)
    raw = client.chat.completions.with_raw_response.create(
        model="anthropic/claude-opus-4-6", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-switchboard-provider"] == "anthropic"
    assert raw.headers["x-switchboard-model"] == "claude-opus-4-6"
    raw = client.chat.completions.with_raw_response.create(
        model="compat-model", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-switchboard-provider"] == "openai-compatible"
    models = client.models.list()
    assert any(m.id == "compat-model" for m in models.data)


def test_validation_errors_in_each_sdk(gateway):
    gateway.api("PUT", "/v1/llm-providers/azure-anthropic", {"enabled": False})
    oa = openai_client(gateway)
    an = anthropic_client(gateway)
    cases = [
        ("port", "claude-opus-4-6", openai.NotFoundError, anthropic.NotFoundError, "LLMProviderNotFoundError"),
        ("azure-anthropic", "claude-opus-4-6", openai.BadRequestError, anthropic.BadRequestError,
         "LLMProviderDisabledError"),
        ("openai", "gpt-4o", openai.BadRequestError, anthropic.BadRequestError, "LLMProviderModelNotEnabledError"),
    ]
    for provider, model, openai_error, anthropic_error, name in cases:
        with pytest.raises(openai_error) as raised:
            oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                       extra_body={"provider": provider})
        assert raised.value.code == name
        with pytest.raises(anthropic_error) as raised:
            an.messages.create(model=model, max_tokens=10, messages=[{"role": "user", "content": "hi"}],
                               extra_body={"provider": provider})
        assert raised.value.body["error"]["type"] == name
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway.base + "/v1", api_key="sb_wrong_token", max_retries=0).chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "hi"}])
    gateway.api("PUT", "/v1/llm-providers/azure-anthropic", {"enabled": True})


def test_rate_limit_errors_carry_retry_after(gateway):
    with pytest.raises(openai.RateLimitError) as raised:
        openai_client(gateway).chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "hi [[sim:status=429 retry_after=30]]"}],
            extra_body={"provider": "openai"})
    assert raised.value.response.headers["retry-after"] == "30"
