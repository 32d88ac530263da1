//! The protocol-neutral intermediate representation every codec decodes into and encodes
//! from.
//!
//! The IR is shaped by the union of what OpenAI Chat Completions, Anthropic Messages,
//! Bedrock Converse and Gemini can express (the mapping table in the provider reference):
//! system text is hoisted out of the conversation because three of the four want it on top;
//! tool-call arguments stay JSON *text* because OpenAI sends text that may be invalid JSON and
//! only object-based encoders must parse it; usage counts input tokens OpenAI-style (cache
//! reads and writes included) so totals never need provider knowledge downstream.

use crate::error::ErrorKind;

/// A chat request in protocol-neutral form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// The model name the caller asked for (before any alias resolution).
    pub model: String,
    /// System/developer instructions in order, hoisted from wherever they appeared.
    pub system: Vec<String>,
    /// The conversation, without system messages.
    pub messages: Vec<Message>,
    /// Output cap, reasoning included (OpenAI `max_completion_tokens`, Anthropic
    /// `max_tokens`).
    pub max_tokens: Option<u32>,
    /// Sampling temperature on the caller's scale (OpenAI 0–2, Anthropic 0–1).
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Top-k sampling (Anthropic, Gemini; OpenAI has none).
    pub top_k: Option<u32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Client-side function tools.
    pub tools: Vec<Tool>,
    /// How the model may use the tools.
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)` forbids several tool calls in one turn.
    pub parallel_tool_calls: Option<bool>,
    /// Structured-output constraint.
    pub response_format: Option<ResponseFormat>,
    /// Reasoning / extended thinking.
    pub reasoning: Option<Reasoning>,
    /// Whether the caller wants a stream.
    pub stream: bool,
    /// Whether the caller wants usage in its stream (OpenAI `stream_options.include_usage`;
    /// always true for Anthropic callers, whose streams always carry usage).
    pub include_usage: bool,
    /// Number of choices. Only 1 can be translated.
    pub n: Option<u32>,
    /// An opaque end-user id (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
}

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The caller. Anthropic-style tool results (several per message) also live here.
    User,
    /// The model.
    Assistant,
    /// OpenAI-style tool results: one `Part::ToolResult` per message. Encoders for protocols
    /// without this role fold it into a user message.
    Tool,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What was said, in order.
    pub content: Vec<Part>,
}

/// One piece of message content.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Plain text.
    Text(String),
    /// An image.
    Image(Image),
    /// A model's request to call a function. `arguments` is JSON text as the model wrote it
    /// (possibly invalid, possibly empty meaning `{}`).
    ToolCall {
        /// The call id, echoed by the matching result.
        id: String,
        /// The function name.
        name: String,
        /// JSON text of the arguments object.
        arguments: String,
    },
    /// The result of a tool call.
    ToolResult {
        /// The id of the call this answers.
        call_id: String,
        /// Text and images (OpenAI allows text only).
        content: Vec<Part>,
        /// Whether the tool failed (Anthropic `is_error`; OpenAI cannot say so).
        is_error: bool,
    },
    /// A model refusal (OpenAI `message.refusal`). Protocols without one render it as text.
    Refusal(String),
    /// Visible reasoning. The signature must be replayed unchanged to Anthropic/Bedrock.
    Thinking {
        /// The reasoning text.
        text: String,
        /// The provider's signature over it, if any.
        signature: Option<String>,
    },
    /// Reasoning the provider encrypted; replay it unchanged.
    RedactedThinking {
        /// Opaque data.
        data: String,
    },
}

impl Part {
    /// The text of a `Text` part, `None` for other parts.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// A `ToolCall`'s argument text as the JSON object that Anthropic, Bedrock and Gemini want
/// (OpenAI's text may be anything); empty text means no arguments. Anything but an object
/// is the caller's error, named by the OpenAI field it came from.
pub(crate) fn tool_arguments(
    arguments: &str,
    call_id: &str,
) -> Result<serde_json::Value, crate::ProtocolError> {
    if arguments.trim().is_empty() {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_str(arguments) {
        Ok(object @ serde_json::Value::Object(_)) => Ok(object),
        _ => Err(crate::ProtocolError::invalid(
            "tool_calls.function.arguments",
            format!("the arguments of tool call {call_id} must be a JSON object"),
        )),
    }
}

/// An image, by URL or inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Where the bytes are.
    pub source: ImageSource,
    /// OpenAI's `detail` hint (`auto`, `low`, `high`); other protocols ignore it.
    pub detail: Option<String>,
}

/// Where an image's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A remote URL (never a `data:` URL: those are decoded to `Base64`).
    Url(String),
    /// Inline bytes, base64-encoded.
    Base64 {
        /// `image/png`, `image/jpeg`, …
        media_type: String,
        /// Base64 text.
        data: String,
    },
}

/// A function tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// `^[a-zA-Z0-9_-]{1,64}$`.
    pub name: String,
    /// What the tool does.
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
    /// OpenAI `strict` / Anthropic `strict`.
    pub strict: Option<bool>,
}

/// How the model may use tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call (Anthropic `any`).
    Required,
    /// Exactly this tool.
    Named(String),
}

/// A structured-output constraint.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    /// Free text (the default).
    Text,
    /// Any JSON object (OpenAI `json_object`; no Anthropic equivalent).
    JsonObject,
    /// JSON matching a schema.
    JsonSchema {
        /// OpenAI requires a name; Anthropic has none (decoded as `"response"`).
        name: String,
        /// Optional description.
        description: Option<String>,
        /// The JSON Schema.
        schema: serde_json::Value,
        /// OpenAI `strict`.
        strict: Option<bool>,
    },
}

/// Reasoning configuration, either as an effort level or as a token budget; each encoder
/// converts to what its protocol takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reasoning {
    /// Reasoning off (OpenAI `none`, Anthropic `disabled`).
    Disabled,
    /// An effort level (OpenAI `reasoning_effort`, Anthropic `output_config.effort`).
    Effort(ReasoningEffort),
    /// A thinking budget in tokens (Anthropic `thinking.budget_tokens`).
    Budget(u32),
    /// The provider picks the budget (Anthropic `{"type":"adaptive"}`).
    Adaptive,
}

/// Effort levels, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReasoningEffort {
    /// `minimal`.
    Minimal,
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
    /// `xhigh` / `max`.
    Max,
}

impl ReasoningEffort {
    /// Parses OpenAI's and Anthropic's spellings.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "minimal" => Self::Minimal,
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            "xhigh" | "max" => Self::Max,
            _ => return None,
        })
    }

    /// OpenAI's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Max => "xhigh",
        }
    }

    /// The thinking budget used when a budget-based protocol receives an effort level.
    pub fn budget_tokens(self) -> u32 {
        match self {
            Self::Minimal => 1024,
            Self::Low => 2048,
            Self::Medium => 8192,
            Self::High => 16384,
            Self::Max => 32768,
        }
    }

    /// The effort level used when an effort-based protocol receives a budget.
    pub fn from_budget(tokens: u32) -> Self {
        match tokens {
            0..=1024 => Self::Minimal,
            1025..=2048 => Self::Low,
            2049..=8192 => Self::Medium,
            8193..=16384 => Self::High,
            _ => Self::Max,
        }
    }
}

/// A complete (non-streamed) answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The upstream's id (`chatcmpl-…`, `msg_…`).
    pub id: String,
    /// The model that answered (the upstream's resolved name).
    pub model: String,
    /// Text, refusal, thinking and tool calls, in order.
    pub content: Vec<Part>,
    /// Why generation stopped.
    pub stop_reason: StopReason,
    /// Which stop sequence matched, if the provider says.
    pub stop_sequence: Option<String>,
    /// Token counts.
    pub usage: Usage,
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Natural end (OpenAI `stop`, Anthropic `end_turn`).
    EndTurn,
    /// The output cap or context window was reached (`length`, `max_tokens`).
    MaxTokens,
    /// A stop sequence matched (OpenAI reports this as `stop`).
    StopSequence,
    /// The model called tools (`tool_calls`, `tool_use`).
    ToolUse,
    /// A safety system stopped it (`content_filter`, Anthropic `refusal`).
    ContentFilter,
    /// Anything else, verbatim (Anthropic `pause_turn`, …); OpenAI reports it as `stop`.
    Other(String),
}

impl StopReason {
    /// A protocol-neutral name (OpenAI's where it has one), for metrics and traces.
    pub fn name(&self) -> &'static str {
        match self {
            Self::EndTurn | Self::StopSequence => "stop",
            Self::MaxTokens => "length",
            Self::ToolUse => "tool_calls",
            Self::ContentFilter => "content_filter",
            Self::Other(_) => "other",
        }
    }
}

/// Token counts. `input_tokens` counts *all* prompt tokens, cache reads and writes included
/// (OpenAI `prompt_tokens`); the cache counters are subsets of it. `output_tokens` includes
/// `reasoning_tokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// All prompt tokens.
    pub input_tokens: u64,
    /// All generated tokens.
    pub output_tokens: u64,
    /// Prompt tokens read from a cache.
    pub cached_input_tokens: u64,
    /// Prompt tokens written to a cache (Anthropic).
    pub cache_creation_input_tokens: u64,
    /// Generated tokens spent reasoning (OpenAI, Gemini).
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Input plus output.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// One step of a streamed answer, decoded from either protocol.
///
/// Ordering contract (what decoders produce and encoders rely on):
/// - `Start` comes first, at most once. Encoders also start lazily if content comes first.
/// - Tool calls are identified by `ordinal`, the 0-based position of the call among the
///   answer's *tool calls* (OpenAI's `tool_calls[].index`), never a content-block index.
///   `ToolCallStart` precedes that ordinal's `ToolCallDelta`s.
/// - `Usage` is a cumulative snapshot of everything known so far; the last one wins. It may
///   come before content (Anthropic `message_start`), with the stop (Anthropic
///   `message_delta`) or after the stop (OpenAI's usage chunk).
/// - `Stop` carries the finish reason, at most once. Usage may still follow it.
/// - `Done` means the upstream sent its clean terminator (`[DONE]`, `message_stop`).
/// - `Error` is terminal: the upstream reported a failure inside the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The answer begins.
    Start {
        /// The upstream's id.
        id: String,
        /// The upstream's model name.
        model: String,
    },
    /// Visible text.
    TextDelta {
        /// The fragment.
        text: String,
    },
    /// Refusal text (OpenAI `delta.refusal`).
    RefusalDelta {
        /// The fragment.
        text: String,
    },
    /// Reasoning text.
    ThinkingDelta {
        /// The fragment.
        text: String,
    },
    /// The signature closing the current thinking block.
    ThinkingSignature {
        /// The signature.
        signature: String,
    },
    /// A whole redacted thinking block.
    RedactedThinking {
        /// Opaque data.
        data: String,
    },
    /// A tool call begins.
    ToolCallStart {
        /// Position among this answer's tool calls.
        ordinal: u32,
        /// The call id.
        id: String,
        /// The function name.
        name: String,
    },
    /// A fragment of a tool call's JSON arguments.
    ToolCallDelta {
        /// Position among this answer's tool calls.
        ordinal: u32,
        /// The fragment (concatenate per ordinal).
        arguments: String,
    },
    /// Cumulative usage so far.
    Usage(Usage),
    /// Generation stopped.
    Stop {
        /// Why.
        reason: StopReason,
    },
    /// The upstream's clean end-of-stream marker.
    Done,
    /// A failure reported inside the stream; terminal.
    Error {
        /// Its class.
        kind: ErrorKind,
        /// The upstream's message.
        message: String,
    },
}

/// An answer's visible text, with tool calls written as `[tool call name args]`: what an
/// invocation record keeps as the response.
pub fn visible_text(content: &[Part]) -> String {
    let mut text = String::new();
    for part in content {
        match part {
            Part::Text(t) | Part::Refusal(t) => text.push_str(t),
            Part::ToolCall {
                name, arguments, ..
            } => {
                text.push_str(&format!("[tool call {name} {arguments}]"));
            }
            _ => {}
        }
    }
    text
}

/// Rebuilds a [`ChatResponse`] from stream events, e.g. to log a streamed answer or to serve
/// a non-streaming caller from a streaming upstream.
#[derive(Debug, Default)]
pub struct StreamAccumulator {
    id: String,
    model: String,
    content: Vec<Part>,
    /// Ordinal → index in `content` of that tool call.
    tool_slots: Vec<Option<usize>>,
    stop: Option<StopReason>,
    usage: Usage,
    done: bool,
    error: Option<(ErrorKind, String)>,
}

impl StreamAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event in.
    pub fn push(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Start { id, model } => {
                self.id.clone_from(id);
                self.model.clone_from(model);
            }
            StreamEvent::TextDelta { text } => self.append_text(text, false),
            StreamEvent::RefusalDelta { text } => self.append_text(text, true),
            StreamEvent::ThinkingDelta { text } => self.thinking().0.push_str(text),
            StreamEvent::ThinkingSignature { signature } => {
                self.thinking()
                    .1
                    .get_or_insert_with(String::new)
                    .push_str(signature);
            }
            StreamEvent::RedactedThinking { data } => {
                self.content
                    .push(Part::RedactedThinking { data: data.clone() });
            }
            StreamEvent::ToolCallStart { ordinal, id, name } => self.start_tool(*ordinal, id, name),
            StreamEvent::ToolCallDelta { ordinal, arguments } => {
                self.tool_arguments(*ordinal, arguments)
            }
            StreamEvent::Usage(u) => self.usage = *u,
            StreamEvent::Stop { reason } => self.stop = Some(reason.clone()),
            StreamEvent::Done => self.done = true,
            StreamEvent::Error { kind, message } => self.error = Some((*kind, message.clone())),
        }
    }

    fn append_text(&mut self, text: &str, refusal: bool) {
        match (self.content.last_mut(), refusal) {
            (Some(Part::Text(t)), false) | (Some(Part::Refusal(t)), true) => t.push_str(text),
            _ if refusal => self.content.push(Part::Refusal(text.to_owned())),
            _ => self.content.push(Part::Text(text.to_owned())),
        }
    }

    fn thinking(&mut self) -> (&mut String, &mut Option<String>) {
        if !matches!(self.content.last(), Some(Part::Thinking { .. })) {
            self.content.push(Part::Thinking {
                text: String::new(),
                signature: None,
            });
        }
        match self.content.last_mut() {
            Some(Part::Thinking { text, signature }) => (text, signature),
            _ => unreachable!("a thinking part was just ensured"),
        }
    }

    fn start_tool(&mut self, ordinal: u32, id: &str, name: &str) {
        let slot = ordinal as usize;
        if self.tool_slots.len() <= slot {
            self.tool_slots.resize(slot + 1, None);
        }
        self.tool_slots[slot] = Some(self.content.len());
        self.content.push(Part::ToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: String::new(),
        });
    }

    fn tool_arguments(&mut self, ordinal: u32, fragment: &str) {
        let index = self.tool_slots.get(ordinal as usize).copied().flatten();
        if let Some(Some(Part::ToolCall { arguments, .. })) = index.map(|i| self.content.get_mut(i))
        {
            arguments.push_str(fragment);
        }
    }

    /// Whether the upstream's clean terminator was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The in-stream error, if one arrived.
    pub fn error(&self) -> Option<&(ErrorKind, String)> {
        self.error.as_ref()
    }

    /// The stop reason, if one arrived.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.stop.as_ref()
    }

    /// The latest cumulative usage.
    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    /// The visible text so far (see [`visible_text`]).
    pub fn text(&self) -> String {
        visible_text(&self.content)
    }

    /// The answer so far. A missing stop reason reads as `Other("incomplete")`.
    pub fn into_response(self) -> ChatResponse {
        ChatResponse {
            id: self.id,
            model: self.model,
            content: self.content,
            stop_reason: self
                .stop
                .unwrap_or_else(|| StopReason::Other("incomplete".into())),
            stop_sequence: None,
            usage: self.usage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulator_joins_fragments_per_ordinal() {
        let mut acc = StreamAccumulator::new();
        for e in [
            StreamEvent::TextDelta { text: "Hi".into() },
            StreamEvent::TextDelta { text: "!".into() },
            StreamEvent::ToolCallStart {
                ordinal: 0,
                id: "a".into(),
                name: "f".into(),
            },
            StreamEvent::ToolCallStart {
                ordinal: 1,
                id: "b".into(),
                name: "g".into(),
            },
            StreamEvent::ToolCallDelta {
                ordinal: 0,
                arguments: "{}".into(),
            },
            StreamEvent::ToolCallDelta {
                ordinal: 1,
                arguments: "[".into(),
            },
            StreamEvent::Stop {
                reason: StopReason::ToolUse,
            },
        ] {
            acc.push(&e);
        }
        let r = acc.into_response();
        assert_eq!(r.content[0], Part::Text("Hi!".into()));
        assert!(matches!(&r.content[1], Part::ToolCall { arguments, .. } if arguments == "{}"));
        assert!(matches!(&r.content[2], Part::ToolCall { arguments, .. } if arguments == "["));
        assert_eq!(r.stop_reason, StopReason::ToolUse);
    }

    #[test]
    fn effort_and_budget_convert_both_ways() {
        for e in [
            ReasoningEffort::Minimal,
            ReasoningEffort::Low,
            ReasoningEffort::Medium,
            ReasoningEffort::High,
            ReasoningEffort::Max,
        ] {
            assert_eq!(ReasoningEffort::from_budget(e.budget_tokens()), e);
        }
    }
}
