//! Names people choose (user emails, organization and token names) as the rest of the
//! system sees them (catalogue item 26): NFC-normalized, so the NFC and NFD spellings of one
//! name are one name; never longer than 255 bytes, never empty or only whitespace; no
//! control, bidirectional-override or zero-width characters (which make a name display as
//! another, CVE-2021-42574); and no word with letters of two of the Latin, Greek and
//! Cyrillic scripts, so `Аcme` (Cyrillic А) cannot pass for `Acme`. (Uniqueness on a full
//! UTS 39 confusable skeleton is not implemented: single-script look-alikes such as `rn`
//! and `m` remain distinct names.)

use unicode_normalization::UnicodeNormalization;

/// The longest name accepted, in bytes (after normalization).
pub const MAX_NAME_BYTES: usize = 255;

/// Why a name is refused (the message names the rule, never echoes the name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty or only whitespace")]
    Blank,
    #[error("must be at most {MAX_NAME_BYTES} bytes")]
    TooLong,
    #[error("must not contain control, bidirectional or invisible characters")]
    Invisible,
    #[error("must not mix letters of the Latin, Greek and Cyrillic scripts")]
    MixedScripts,
}

/// The name as stored: trimmed and NFC-normalized, or why it is refused.
pub fn normalize(raw: &str) -> Result<String, NameError> {
    let name: String = raw.trim().nfc().collect();
    if name.is_empty() {
        return Err(NameError::Blank);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong);
    }
    if name.chars().any(is_invisible) {
        return Err(NameError::Invisible);
    }
    if mixes_scripts(&name) {
        return Err(NameError::MixedScripts);
    }
    Ok(name)
}

/// Control characters, bidirectional embeddings, overrides, isolates and marks, and
/// zero-width characters.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width space, joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}' // embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // isolates
            | '\u{061C}' // Arabic letter mark
            | '\u{FEFF}' // zero-width no-break space
            | '\u{00AD}' // soft hyphen
        )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
}

fn script(c: char) -> Option<Script> {
    match c {
        'a'..='z' | 'A'..='Z' | '\u{00C0}'..='\u{024F}' => Some(Script::Latin),
        '\u{0370}'..='\u{03FF}' | '\u{1F00}'..='\u{1FFF}' => Some(Script::Greek),
        '\u{0400}'..='\u{052F}' => Some(Script::Cyrillic),
        _ => None,
    }
}

/// Whether one word (a run of letters between spaces, digits or punctuation) has letters
/// of more than one of the easily confused scripts. Words of different scripts side by side
/// (`ivan@почта.рф`) are fine.
fn mixes_scripts(name: &str) -> bool {
    name.split(|c: char| !c.is_alphabetic()).any(|word| {
        let mut scripts = word.chars().filter_map(script);
        let first = scripts.next();
        scripts.any(|s| Some(s) != first)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfc_and_nfd_twins_are_one_name() {
        let nfd = "Cafe\u{0301}";
        assert_eq!(normalize(nfd).unwrap(), "Caf\u{e9}");
        assert_eq!(normalize(nfd), normalize("Caf\u{e9}"));
    }

    #[test]
    fn confusable_invisible_long_and_blank_names_are_refused() {
        assert_eq!(normalize("\u{0410}cme"), Err(NameError::MixedScripts));
        assert!(normalize("Акме").is_ok(), "one script is fine");
        assert!(normalize("ivan@почта.рф").is_ok(), "one script per word");
        assert_eq!(normalize("admin\u{202E}gnp.exe"), Err(NameError::Invisible));
        assert_eq!(normalize("ad\u{200B}min"), Err(NameError::Invisible));
        assert_eq!(normalize("a\nb"), Err(NameError::Invisible));
        assert_eq!(normalize(" \t\u{3000} "), Err(NameError::Blank));
        assert_eq!(normalize(&"é".repeat(128)), Err(NameError::TooLong));
        assert!(normalize(&"a".repeat(255)).is_ok());
        assert_eq!(normalize("  Acme Corp "), Ok("Acme Corp".to_owned()));
    }
}
