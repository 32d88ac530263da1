//! Protocol-neutral conversation summary and the deterministic answer computed from it.
//! Each protocol module parses its own body into a [`Prompt`] and renders the [`Answer`].

use serde_json::{Map, Value};

/// Longest echoed text, in words.
const MAX_ECHO_WORDS: usize = 200;
/// Characters per streamed tool-argument fragment.
const FRAGMENT_CHARS: usize = 8;
/// Words appended when a forced chunk count exceeds the answer's words.
const FILLER: [&str; 8] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
];

/// A tool the caller offered: its name and the argument key the simulator fills.
#[derive(Clone, Debug)]
pub(crate) struct ToolSpec {
    pub name: String,
    pub arg_key: String,
}

impl ToolSpec {
    /// Builds a spec from a name and a JSON schema; the key is the first property or `input`.
    pub(crate) fn new(name: &str, schema: Option<&Value>) -> Self {
        let arg_key = schema
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .and_then(|props| props.keys().next())
            .map_or_else(|| "input".to_owned(), Clone::clone);
        Self {
            name: name.to_owned(),
            arg_key,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum ToolChoice {
    #[default]
    Auto,
    None,
    Required,
    Named(String),
}

/// What the simulator needs to know about a request.
#[derive(Clone, Debug, Default)]
pub(crate) struct Prompt {
    /// Text of every message (system included), for token counting.
    pub texts: Vec<String>,
    /// Text of the last user message, directives still in.
    pub last_user: String,
    /// Set when the last message is a tool result: its text, directives still in.
    pub tool_result: Option<String>,
    pub tools: Vec<ToolSpec>,
    pub tool_choice: ToolChoice,
    pub max_tokens: Option<u64>,
}

impl Prompt {
    /// The text that carries fault directives: the tool result if that is the last turn.
    pub(crate) fn directive_text(&self) -> &str {
        self.tool_result.as_deref().unwrap_or(&self.last_user)
    }

    /// Deterministic input-token count: words of all text plus 3 per message.
    fn input_tokens(&self) -> u64 {
        let words: usize = self
            .texts
            .iter()
            .map(|t| t.split_whitespace().count())
            .sum();
        (words + 3 * self.texts.len()) as u64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    Stop,
    Length,
    ToolUse,
}

#[derive(Clone, Debug)]
pub(crate) struct ToolCall {
    pub name: String,
    /// Compact JSON object text.
    pub arguments: String,
    /// `arguments` split for streaming; concatenated they equal `arguments`.
    pub fragments: Vec<String>,
}

#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// Stream pieces; concatenated they form the answer text.
    Text(Vec<String>),
    Tool(ToolCall),
}

#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub body: Body,
    pub finish: Finish,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Answer {
    /// The full answer text (empty for a tool call).
    pub(crate) fn text(&self) -> String {
        match &self.body {
            Body::Text(pieces) => pieces.concat(),
            Body::Tool(_) => String::new(),
        }
    }
}

/// Computes the answer. `clean` is [`Prompt::directive_text`] with directives removed.
pub(crate) fn plan(prompt: &Prompt, clean: &str, chunks: Option<usize>) -> Answer {
    let input_tokens = prompt.input_tokens();
    if prompt.tool_result.is_some() {
        return text_answer(prompt, "Tool result:", clean, chunks, input_tokens);
    }
    match chosen_tool(prompt) {
        Some(tool) => tool_answer(tool, clean, chunks, input_tokens),
        None => text_answer(prompt, "Echo:", clean, chunks, input_tokens),
    }
}

/// The tool to call, if the request calls for one.
fn chosen_tool(prompt: &Prompt) -> Option<ToolSpec> {
    let first = prompt.tools.first()?;
    match &prompt.tool_choice {
        ToolChoice::None => None,
        ToolChoice::Named(name) => Some(
            prompt
                .tools
                .iter()
                .find(|t| &t.name == name)
                .cloned()
                .unwrap_or_else(|| ToolSpec::new(name, None)),
        ),
        ToolChoice::Auto | ToolChoice::Required => Some(first.clone()),
    }
}

fn text_answer(
    prompt: &Prompt,
    prefix: &str,
    clean: &str,
    chunks: Option<usize>,
    input_tokens: u64,
) -> Answer {
    let mut words: Vec<&str> = std::iter::once(prefix)
        .chain(clean.split_whitespace().take(MAX_ECHO_WORDS))
        .collect();
    if let Some(n) = chunks {
        let missing = n.saturating_sub(words.len());
        words.extend(FILLER.iter().cycle().take(missing));
    }
    let mut finish = Finish::Stop;
    if let Some(max) = prompt.max_tokens.and_then(|m| usize::try_from(m).ok())
        && words.len() > max
    {
        words.truncate(max);
        finish = Finish::Length;
    }
    let pieces = group_words(&words, chunks.unwrap_or(words.len()));
    Answer {
        output_tokens: words.len() as u64,
        body: Body::Text(pieces),
        finish,
        input_tokens,
    }
}

/// Splits `words` into `count` contiguous pieces (fewer if there are fewer words); pieces after
/// the first carry their leading space, like tokenizer output.
fn group_words(words: &[&str], count: usize) -> Vec<String> {
    let count = count.min(words.len());
    if count == 0 {
        return Vec::new();
    }
    let (base, extra) = (words.len() / count, words.len() % count);
    let mut pieces = Vec::with_capacity(count);
    let mut start = 0;
    for i in 0..count {
        let len = base + usize::from(i < extra);
        let mut piece = words[start..start + len].join(" ");
        if start > 0 {
            piece.insert(0, ' ');
        }
        pieces.push(piece);
        start += len;
    }
    pieces
}

fn tool_answer(tool: ToolSpec, clean: &str, chunks: Option<usize>, input_tokens: u64) -> Answer {
    let value: String = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut args = Map::new();
    args.insert(tool.arg_key, Value::String(value));
    let arguments = Value::Object(args).to_string();
    let fragments = split_chars(&arguments, chunks);
    Answer {
        output_tokens: fragments.len() as u64,
        body: Body::Tool(ToolCall {
            name: tool.name,
            arguments,
            fragments,
        }),
        finish: Finish::ToolUse,
        input_tokens,
    }
}

/// Splits `text` on char boundaries: into exactly `count` pieces (at most one per char) when
/// given, else into [`FRAGMENT_CHARS`]-sized pieces.
fn split_chars(text: &str, count: Option<usize>) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let Some(count) = count.map(|c| c.clamp(1, chars.len().max(1))) else {
        return chars
            .chunks(FRAGMENT_CHARS)
            .map(|c| c.iter().collect())
            .collect();
    };
    let (base, extra) = (chars.len() / count, chars.len() % count);
    let mut start = 0;
    (0..count)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let piece = chars[start..start + len].iter().collect();
            start += len;
            piece
        })
        .collect()
}

/// Text of a message `content` that is a string or an array of `{"type":"text","text"}` parts
/// (other part types contribute nothing); parts are joined with a space.
pub(crate) fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(text: &str) -> Prompt {
        Prompt {
            texts: vec![text.to_owned()],
            last_user: text.to_owned(),
            ..Prompt::default()
        }
    }

    #[test]
    fn echo_word_by_word() {
        let a = plan(&prompt("hello  big world"), "hello  big world", None);
        let Body::Text(pieces) = &a.body else {
            panic!("text expected")
        };
        assert_eq!(pieces, &["Echo:", " hello", " big", " world"]);
        assert_eq!((a.input_tokens, a.output_tokens), (6, 4));
    }

    #[test]
    fn forced_chunks_pad_and_group() {
        let a = plan(&prompt("hi"), "hi", Some(5));
        assert_eq!(a.text(), "Echo: hi lorem ipsum dolor");
        let b = plan(&prompt("a b c d e"), "a b c d e", Some(2));
        let Body::Text(pieces) = &b.body else {
            panic!("text expected")
        };
        assert_eq!(pieces, &["Echo: a b", " c d e"]);
    }

    #[test]
    fn max_tokens_truncates() {
        let mut p = prompt("one two three");
        p.max_tokens = Some(2);
        let a = plan(&p, "one two three", None);
        assert_eq!(a.text(), "Echo: one");
        assert_eq!(a.finish, Finish::Length);
    }

    #[test]
    fn tool_fragments_reassemble() {
        let mut p = prompt("Paris");
        p.tools = vec![ToolSpec::new(
            "w",
            Some(&serde_json::json!({"properties":{"city":{}}})),
        )];
        let a = plan(&p, "Paris", Some(3));
        let Body::Tool(call) = &a.body else {
            panic!("tool expected")
        };
        assert_eq!(call.arguments, r#"{"city":"Paris"}"#);
        assert_eq!(call.fragments.len(), 3);
        assert_eq!(call.fragments.concat(), call.arguments);
    }
}
