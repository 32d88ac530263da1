//! Bearer tokens, client credentials and passwords.
//!
//! Tokens are `sb_<public id>_<secret>`: the public id finds the row, the secret is checked
//! against its keyed hash in constant time. Tokens are high-entropy, so a fast keyed hash
//! (HMAC under the instance pepper) is as strong as a slow one and keeps authentication
//! cheap; Argon2id is used only for human-chosen passwords. Browser sessions use the same
//! shape with the prefix `sbs_`, so a session cookie is never accepted as a bearer token,
//! nor the reverse.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use switchboard_core::SecretValue;

use crate::vault::{fill_random, hex};
use crate::{StoreError, StoreResult};

const TOKEN_PREFIX: &str = "sb_";
const SESSION_PREFIX: &str = "sbs_";
const CLIENT_ID_PREFIX: &str = "sbc_";
const PUBLIC_ID_BYTES: usize = 16;
const SECRET_BYTES: usize = 32;

/// How a token came to be: `api` tokens live until revoked, `access` tokens (from client
/// credentials) expire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Api,
    Access,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Api => "api",
            TokenKind::Access => "access",
        }
    }
}

/// A freshly generated token: the full text for its owner, its parts for storage.
pub(crate) struct GeneratedToken {
    pub public_id: String,
    pub secret: SecretValue,
    pub full: SecretValue,
}

pub(crate) fn generate_token() -> StoreResult<GeneratedToken> {
    generate_with_prefix(TOKEN_PREFIX)
}

/// A new browser session token (`sbs_…`).
pub(crate) fn generate_session_token() -> StoreResult<GeneratedToken> {
    generate_with_prefix(SESSION_PREFIX)
}

fn generate_with_prefix(prefix: &str) -> StoreResult<GeneratedToken> {
    let public_id = random_hex(PUBLIC_ID_BYTES)?;
    let secret = random_secret()?;
    let full = SecretValue::new(format!("{prefix}{public_id}_{}", secret.expose()));
    Ok(GeneratedToken {
        public_id,
        secret,
        full,
    })
}

/// How many characters of a token its listings show: `sb_` and the first 8 of the public id
/// (32 bits, enough to tell one's own tokens apart; far from enough to use one).
const DISPLAY_PREFIX_CHARS: usize = 8;

/// The start of a token as lists show it, from its public id.
pub(crate) fn display_prefix(public_id: &str) -> String {
    let head: String = public_id.chars().take(DISPLAY_PREFIX_CHARS).collect();
    format!("{TOKEN_PREFIX}{head}")
}

/// Splits a presented token into (public id, secret); `None` when it is not ours.
pub(crate) fn parse_token(token: &str) -> Option<(&str, &str)> {
    parse_with_prefix(token, TOKEN_PREFIX)
}

/// Splits a presented session token into (public id, secret); `None` when it is not one.
pub(crate) fn parse_session_token(token: &str) -> Option<(&str, &str)> {
    parse_with_prefix(token, SESSION_PREFIX)
}

fn parse_with_prefix<'a>(token: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let rest = token.trim().strip_prefix(prefix)?;
    let (public_id, secret) = rest.split_once('_')?;
    let well_formed = public_id.len() == PUBLIC_ID_BYTES * 2
        && public_id.bytes().all(|b| b.is_ascii_hexdigit())
        && !secret.is_empty();
    well_formed.then_some((public_id, secret))
}

/// A random anti-CSRF token for a session. Not a credential on its own (it is useless
/// without the session cookie), so it is stored as is and handed to the page.
pub(crate) fn generate_csrf_token() -> StoreResult<String> {
    Ok(random_secret()?.expose().to_owned())
}

/// A new public client id and its secret.
pub(crate) fn generate_client_credentials() -> StoreResult<(String, SecretValue)> {
    Ok((
        format!("{CLIENT_ID_PREFIX}{}", random_hex(PUBLIC_ID_BYTES)?),
        random_secret()?,
    ))
}

/// Compares two stored-hash strings without leaking where they differ.
pub(crate) fn hashes_match(stored: &str, presented: &str) -> bool {
    stored.as_bytes().ct_eq(presented.as_bytes()).into()
}

fn random_hex(len: usize) -> StoreResult<String> {
    let mut bytes = vec![0u8; len];
    fill_random(&mut bytes)?;
    Ok(hex(&bytes))
}

fn random_secret() -> StoreResult<SecretValue> {
    let mut bytes = zeroize::Zeroizing::new([0u8; SECRET_BYTES]);
    fill_random(bytes.as_mut_slice())?;
    Ok(SecretValue::new(URL_SAFE_NO_PAD.encode(bytes.as_slice())))
}

/// Argon2id PHC string for a password. Runs on the blocking pool: it takes real CPU time.
pub(crate) async fn hash_password(password: &SecretValue) -> StoreResult<String> {
    if password.is_empty() {
        return Err(StoreError::Invalid("the password must not be empty".into()));
    }
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|h| h.to_string())
            .map_err(|_| StoreError::Crypto)
    })
    .await
    .map_err(|_| StoreError::Crypto)?
}

/// Checks a password against a stored hash. Without a hash (unknown user, or a user with
/// no password) a dummy hash is checked instead, so timing does not reveal which emails
/// exist; the answer is then always `false`.
pub(crate) async fn verify_password(password: &str, stored: Option<String>) -> bool {
    let password = SecretValue::new(password.to_owned());
    tokio::task::spawn_blocking(move || {
        let real = stored.is_some();
        let hash = match stored {
            Some(hash) => hash,
            None => dummy_hash().to_owned(),
        };
        let ok = Argon2::default()
            .verify_password(password.expose().as_bytes(), hash.as_str())
            .is_ok();
        ok && real
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        Argon2::default()
            .hash_password(b"switchboard-dummy-password")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_back_into_their_parts() {
        let t = generate_token().unwrap();
        let (public_id, secret) = parse_token(t.full.expose()).unwrap();
        assert_eq!(public_id, t.public_id);
        assert_eq!(secret, t.secret.expose());
    }

    #[test]
    fn session_tokens_and_api_tokens_do_not_mix() {
        let session = generate_session_token().unwrap();
        assert!(session.full.expose().starts_with("sbs_"));
        let (public_id, secret) = parse_session_token(session.full.expose()).unwrap();
        assert_eq!(
            (public_id, secret),
            (session.public_id.as_str(), session.secret.expose())
        );
        assert!(parse_token(session.full.expose()).is_none());
        let api = generate_token().unwrap();
        assert!(parse_session_token(api.full.expose()).is_none());
        assert_ne!(
            generate_csrf_token().unwrap(),
            generate_csrf_token().unwrap()
        );
    }

    #[test]
    fn the_display_prefix_is_the_start_of_the_token() {
        let t = generate_token().unwrap();
        let prefix = display_prefix(&t.public_id);
        assert_eq!(prefix.len(), 11);
        assert!(t.full.expose().starts_with(&prefix));
    }

    #[test]
    fn foreign_strings_are_not_tokens() {
        for s in [
            "",
            "sb_",
            "sb_abc_def",
            "xx_0123456789abcdef0123456789abcdef_s",
            "sb_0123456789abcdef0123456789abcdef_",
        ] {
            assert!(parse_token(s).is_none(), "{s}");
        }
    }

    #[test]
    fn hash_comparison() {
        assert!(hashes_match("abc", "abc"));
        assert!(!hashes_match("abc", "abd"));
        assert!(!hashes_match("abc", "ab"));
    }
}
