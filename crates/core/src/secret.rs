//! A secret value that cannot leak by accident.

use std::fmt;
use zeroize::Zeroizing;

/// A credential or other secret in memory. It has no `Display` or `Serialize`, its `Debug`
/// prints a placeholder, and its bytes are wiped on drop. Reading it takes an explicit
/// [`SecretValue::expose`], which is easy to audit for with grep.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretValue {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// Deserializable so request bodies can carry a secret straight into this type; there is
/// deliberately no `Serialize`.
impl<'de> serde::Deserialize<'de> for SecretValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = SecretValue::new("sk-canary-value".into());
        assert!(!format!("{s:?}").contains("canary"));
        assert_eq!(s.expose(), "sk-canary-value");
    }
}
