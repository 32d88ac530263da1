//! The process's panic hook: a panic becomes one JSON log line with where it happened,
//! instead of Rust's default message on stderr, which would print the panic's text.
//!
//! That text is logged only when it is a string literal compiled into the binary
//! (`panic!("…")` without arguments, `unreachable!()`); a formatted one (`expect` on an
//! error, `panic!("{x}")`) may quote request data or a secret and is withheld.

use std::panic::PanicHookInfo;

/// Replaces the default hook; call once logging is set up.
pub fn install() {
    std::panic::set_hook(Box::new(log_panic));
}

fn log_panic(info: &PanicHookInfo<'_>) {
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    let thread = std::thread::current();
    let thread = thread.name().unwrap_or("unnamed");
    tracing::error!(
        location = %location,
        thread,
        panic_message = literal_message(info),
        "panicked"
    );
}

/// The panic's text when it cannot hold run-time data, else a note that it was withheld.
fn literal_message<'a>(info: &'a PanicHookInfo<'_>) -> &'a str {
    info.payload()
        .downcast_ref::<&'static str>()
        .copied()
        .unwrap_or("(formatted message withheld: it may hold request data)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Runs `f` under a hook that records what `literal_message` makes of its panic.
    fn message_of(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let seen = Arc::new(Mutex::new(String::new()));
        let sink = seen.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            *sink.lock().unwrap() = literal_message(info).to_owned();
        }));
        let _ = std::panic::catch_unwind(f);
        std::panic::set_hook(previous);
        seen.lock().unwrap().clone()
    }

    #[test]
    fn literal_messages_are_kept_and_formatted_ones_withheld() {
        assert_eq!(message_of(|| panic!("a literal")), "a literal");
        let secret = "sk-canary-panic".to_owned();
        let formatted = message_of(move || panic!("value {secret}"));
        assert!(!formatted.contains("canary"), "{formatted}");
        assert!(formatted.contains("withheld"), "{formatted}");
    }
}
