//! Envelope encryption: a versioned master key ring (KEK) wraps one data key (DEK) per
//! organization plus instance keys (the token pepper); data keys encrypt secret values.
//!
//! Every ciphertext is `nonce (12 bytes) ‖ AES-256-GCM ciphertext ‖ tag`, and every
//! encryption binds its context through the AAD, so a wrapped key or secret copied to another
//! organization, renamed, or relabelled with another key version fails to decrypt instead of
//! silently yielding a value that belongs somewhere else.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use switchboard_core::{OrgId, SecretValue};
use zeroize::{Zeroize, Zeroizing};

use crate::{StoreError, StoreResult};

/// Length of every key in bytes (AES-256, HMAC-SHA256).
pub const KEY_LEN: usize = 32;

type KeyBytes = Zeroizing<[u8; KEY_LEN]>;

/// The versioned master keys (key-encryption keys). The newest version wraps new and
/// rotated data keys; older versions stay only to unwrap keys not yet rotated.
#[derive(Clone)]
pub struct MasterKeyRing {
    keys: BTreeMap<u32, KeyBytes>,
}

impl fmt::Debug for MasterKeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeyRing")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .field("keys", &"[redacted]")
            .finish()
    }
}

impl MasterKeyRing {
    /// Resolves the ring the way the process configuration describes it: an explicit
    /// `SWITCHBOARD_MASTER_KEY` value wins; otherwise the key file, created only when
    /// `may_create` (SQLite: first start; PostgreSQL: never, since replicas must share it).
    pub fn load(value: Option<&str>, file: &Path, may_create: bool) -> StoreResult<Self> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            Some(value) => Self::from_env_value(value),
            None => Self::load_or_create_file(file, may_create),
        }
    }

    /// Parses `SWITCHBOARD_MASTER_KEY`: a bare base64 key is version 1; a comma list of
    /// `version:base64` entries names versions explicitly.
    pub fn from_env_value(value: &str) -> StoreResult<Self> {
        let value = value.trim();
        if !value.contains(':') {
            let mut keys = BTreeMap::new();
            keys.insert(1, decode_key(value)?);
            return Ok(Self { keys });
        }
        Self::from_entries(value.split(',').map(str::trim).filter(|e| !e.is_empty()))
    }

    /// Parses a key file: one `version:base64` line per version; blank lines and lines
    /// starting with `#` are ignored.
    pub fn from_file_text(text: &str) -> StoreResult<Self> {
        Self::from_entries(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#')),
        )
    }

    /// Reads the key file, or generates it (mode 0600, parent directory created) when it is
    /// missing and `may_create` is set.
    pub fn load_or_create_file(path: &Path, may_create: bool) -> StoreResult<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                warn_if_readable_by_others(path);
                Self::from_file_text(&text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_create => {
                let ring = Self::generate()?;
                write_new_key_file(path, &ring.file_text())?;
                tracing::info!(path = %path.display(), "generated a new master key file");
                Ok(ring)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::Key(format!(
                "no master key: set SWITCHBOARD_MASTER_KEY or create the key file {} \
                 (required with PostgreSQL, where every replica must share one key)",
                path.display()
            ))),
            Err(e) => Err(StoreError::Io(e)),
        }
    }

    /// Appends a freshly generated version to the key file (for `keys rotate`) and returns
    /// the ring as it now is. Existing lines are never rewritten, so an interrupted rotation
    /// can always be resumed with every old key still at hand.
    pub fn add_generated_version(path: &Path) -> StoreResult<Self> {
        let mut ring = Self::load_or_create_file(path, false)?;
        let version = ring.current_version() + 1;
        let key = random_key()?;
        let line = format!("{version}:{}\n", STANDARD.encode(key.as_slice()));
        let existing = std::fs::read(path)?;
        let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
        if existing.last().is_some_and(|b| *b != b'\n') {
            file.write_all(b"\n")?;
        }
        file.write_all(line.as_bytes())?;
        file.sync_all()?;
        ring.keys.insert(version, key);
        Ok(ring)
    }

    /// A new in-memory ring holding one random version-1 key.
    pub fn generate() -> StoreResult<Self> {
        let mut keys = BTreeMap::new();
        keys.insert(1, random_key()?);
        Ok(Self { keys })
    }

    /// This ring plus a new random version above the current one (in memory only).
    pub fn with_generated_version(&self) -> StoreResult<Self> {
        let mut ring = self.clone();
        ring.keys.insert(self.current_version() + 1, random_key()?);
        Ok(ring)
    }

    /// The newest version: it wraps every new or rotated data key.
    pub fn current_version(&self) -> u32 {
        self.keys.keys().next_back().copied().unwrap_or(0)
    }

    /// All versions held, oldest first.
    pub fn versions(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// The ring in key-file format. Contains key material: write it only to the key file.
    fn file_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::new());
        for (version, key) in &self.keys {
            text.push_str(&format!("{version}:{}\n", STANDARD.encode(key.as_slice())));
        }
        text
    }

    fn from_entries<'a>(entries: impl Iterator<Item = &'a str>) -> StoreResult<Self> {
        let mut keys = BTreeMap::new();
        for entry in entries {
            let (version, key) = entry
                .split_once(':')
                .ok_or_else(|| StoreError::Key("expected `version:base64` entries".into()))?;
            let version: u32 = version
                .trim()
                .parse()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    StoreError::Key("a key version must be a positive integer".into())
                })?;
            if keys.insert(version, decode_key(key)?).is_some() {
                return Err(StoreError::Key(format!(
                    "key version {version} appears twice"
                )));
            }
        }
        if keys.is_empty() {
            return Err(StoreError::Key("the key ring is empty".into()));
        }
        Ok(Self { keys })
    }

    fn key(&self, version: u32) -> StoreResult<&KeyBytes> {
        self.keys.get(&version).ok_or_else(|| {
            StoreError::Key(format!(
                "master key version {version} is needed but not configured"
            ))
        })
    }
}

fn decode_key(text: &str) -> StoreResult<KeyBytes> {
    let bytes = Zeroizing::new(
        STANDARD
            .decode(text.trim())
            .map_err(|_| StoreError::Key("a master key is not valid base64".into()))?,
    );
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if bytes.len() != KEY_LEN {
        return Err(StoreError::Key(format!(
            "a master key must be {KEY_LEN} bytes (base64 of 32 random bytes)"
        )));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

fn random_key() -> StoreResult<KeyBytes> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    fill_random(key.as_mut_slice())?;
    Ok(key)
}

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) -> StoreResult<()> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| StoreError::Crypto)
}

fn write_new_key_file(path: &Path, text: &str) -> StoreResult<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "the master key file is readable by group or others"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// What a wrapped key belongs to; part of its AAD.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeyOwner<'a> {
    Org(OrgId),
    Instance(&'a str),
    /// An organization's content key for one period (a UTC day).
    Content(OrgId, &'a str),
}

impl KeyOwner<'_> {
    fn aad(&self, kek_version: u32) -> String {
        match self {
            KeyOwner::Org(org) => format!("switchboard.dek.v1|{org}|{kek_version}"),
            KeyOwner::Instance(name) => format!("switchboard.instance-key.v1|{name}|{kek_version}"),
            KeyOwner::Content(org, period) => {
                format!("switchboard.content-key.v1|{org}|{period}|{kek_version}")
            }
        }
    }
}

/// A key as stored: its ciphertext and the master key version that wrapped it.
#[derive(Clone, Debug)]
pub(crate) struct WrappedKey {
    pub bytes: Vec<u8>,
    pub kek_version: u32,
}

/// The unlocked vault a store holds: the master key ring, the token pepper, and the data
/// keys [`Vault::unseal`] has already unwrapped.
pub(crate) struct Vault {
    ring: MasterKeyRing,
    pepper: hmac::Key,
    unsealed_keys: DekCache,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

/// Name of the instance key that peppers token and client-secret hashes.
pub(crate) const PEPPER_KEY: &str = "token_pepper";

impl Vault {
    /// Unlocks the vault with the stored (wrapped) pepper.
    pub fn unlock(ring: MasterKeyRing, wrapped_pepper: &WrappedKey) -> StoreResult<Self> {
        let owner = KeyOwner::Instance(PEPPER_KEY);
        let pepper = unwrap_key(
            &ring,
            owner,
            &wrapped_pepper.bytes,
            wrapped_pepper.kek_version,
        )
        .map_err(|e| match e {
            StoreError::Crypto => StoreError::Key(
                "the master key does not match this database (cannot unwrap the instance key)"
                    .into(),
            ),
            other => other,
        })?;
        let pepper = hmac::Key::new(hmac::HMAC_SHA256, pepper.as_slice());
        Ok(Self {
            ring,
            pepper,
            unsealed_keys: DekCache::default(),
        })
    }

    pub fn ring(&self) -> &MasterKeyRing {
        &self.ring
    }

    /// A fresh random key wrapped under the current master key version.
    pub fn new_wrapped_key(&self, owner: KeyOwner<'_>) -> StoreResult<WrappedKey> {
        new_wrapped_key(&self.ring, owner)
    }

    /// Re-wraps a key under the current master key version.
    pub fn rewrap(&self, owner: KeyOwner<'_>, wrapped: &WrappedKey) -> StoreResult<WrappedKey> {
        let key = unwrap_key(&self.ring, owner, &wrapped.bytes, wrapped.kek_version)?;
        wrap_key(&self.ring, owner, &key)
    }

    /// Encrypts a secret value under its organization's data key.
    pub fn encrypt_secret(
        &self,
        org: OrgId,
        dek: &WrappedKey,
        name: &str,
        value: &SecretValue,
    ) -> StoreResult<Vec<u8>> {
        let key = unwrap_key(&self.ring, KeyOwner::Org(org), &dek.bytes, dek.kek_version)?;
        seal(&key, &secret_aad(org, name), value.expose().as_bytes())
    }

    /// Decrypts a secret value; fails with [`StoreError::Crypto`] when the ciphertext was
    /// made for another organization or name.
    pub fn decrypt_secret(
        &self,
        org: OrgId,
        dek: &WrappedKey,
        name: &str,
        ciphertext: &[u8],
    ) -> StoreResult<SecretValue> {
        let key = unwrap_key(&self.ring, KeyOwner::Org(org), &dek.bytes, dek.kek_version)?;
        into_secret(open(&key, &secret_aad(org, name), ciphertext)?)
    }

    /// Decrypts a secret the data plane carries with its wrapped data key, without the
    /// database: the same checks as [`Vault::decrypt_secret`], but the unwrapped data key is
    /// remembered (see [`DekCache`]) so the request path pays one AES-GCM open per call.
    pub fn unseal(
        &self,
        org: OrgId,
        name: &str,
        wrapped_dek: &[u8],
        kek_version: u32,
        ciphertext: &[u8],
    ) -> StoreResult<SecretValue> {
        let key = match self.unsealed_keys.get(org, kek_version, wrapped_dek) {
            Some(key) => key,
            None => {
                let unwrapped =
                    unwrap_key(&self.ring, KeyOwner::Org(org), wrapped_dek, kek_version)?;
                let mut key = Zeroizing::new([0u8; KEY_LEN]);
                key.copy_from_slice(&unwrapped);
                self.unsealed_keys.put(org, kek_version, wrapped_dek, &key);
                key
            }
        };
        into_secret(open(key.as_slice(), &secret_aad(org, name), ciphertext)?)
    }

    /// Unwraps an organization's content key for `period`, to seal or open that period's
    /// interaction content.
    pub fn content_key(
        &self,
        org: OrgId,
        period: &str,
        wrapped: &WrappedKey,
    ) -> StoreResult<ContentKey> {
        let owner = KeyOwner::Content(org, period);
        let key = unwrap_key(&self.ring, owner, &wrapped.bytes, wrapped.kek_version)?;
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&key);
        Ok(ContentKey {
            key: bytes,
            aad_prefix: format!("switchboard.content.v1|{org}|{period}|"),
        })
    }

    /// The keyed hash stored for a token or client secret: HMAC-SHA256 under the pepper,
    /// hex encoded. A database leak alone does not allow checking guesses offline.
    pub fn token_hash(&self, secret: &str) -> String {
        hex(&self.token_digest(secret))
    }

    /// The seal of an invocation ledger head: HMAC-SHA256 under the pepper (which only the
    /// master key unwraps) over the organization, seq and hash, hex encoded. Someone with
    /// write access to the database but not the master key cannot rewind a head to hide
    /// deleted records.
    pub fn ledger_seal(&self, org: &str, seq: i64, hash: &str) -> String {
        let message = format!("switchboard.ledger-head.v1\n{org}\n{seq}\n{hash}");
        hex(hmac::sign(&self.pepper, message.as_bytes()).as_ref())
    }

    /// [`Vault::token_hash`] as raw bytes, for callers that keep digests in memory.
    pub fn token_digest(&self, secret: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.pepper, secret.as_bytes());
        let mut digest = [0u8; 32];
        digest.copy_from_slice(tag.as_ref());
        digest
    }
}

/// One period's unwrapped content key. Every ciphertext it makes is bound (AAD) to the
/// organization, the period and the invocation id, so content moved to another record,
/// period or organization fails to open.
pub(crate) struct ContentKey {
    key: KeyBytes,
    aad_prefix: String,
}

impl ContentKey {
    pub fn seal(&self, invocation_id: &str, plaintext: &[u8]) -> StoreResult<Vec<u8>> {
        seal(
            self.key.as_slice(),
            &format!("{}{invocation_id}", self.aad_prefix),
            plaintext,
        )
    }

    pub fn open(&self, invocation_id: &str, blob: &[u8]) -> StoreResult<Zeroizing<Vec<u8>>> {
        open(
            self.key.as_slice(),
            &format!("{}{invocation_id}", self.aad_prefix),
            blob,
        )
    }
}

/// How many unwrapped data keys [`Vault::unseal`] keeps; one per organization and master
/// key version in use. When full it starts over: a miss costs one key unwrap, nothing more.
const DEK_CACHE_CAPACITY: usize = 4096;

/// Data keys unwrapped by [`Vault::unseal`], by organization and master key version.
///
/// An entry is used only when the wrapped key presented is byte for byte the one it was
/// unwrapped from. So a rotated key (new bytes, new version), a wrapped key presented for
/// another organization, or a forged one never hits the cache: it goes through the
/// authenticated unwrap (AAD bound to org and version) and fails or succeeds on its own.
/// Only successful unwraps are remembered.
#[derive(Default)]
struct DekCache {
    entries: Mutex<HashMap<(OrgId, u32), CachedDek>>,
}

struct CachedDek {
    wrapped: Vec<u8>,
    key: KeyBytes,
}

impl DekCache {
    fn get(&self, org: OrgId, kek_version: u32, wrapped: &[u8]) -> Option<KeyBytes> {
        // A poisoned lock only means a panic elsewhere; every entry is still valid.
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&(org, kek_version))
            .filter(|cached| cached.wrapped == wrapped)
            .map(|cached| cached.key.clone())
    }

    fn put(&self, org: OrgId, kek_version: u32, wrapped: &[u8], key: &KeyBytes) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= DEK_CACHE_CAPACITY && !entries.contains_key(&(org, kek_version)) {
            entries.clear();
        }
        let cached = CachedDek {
            wrapped: wrapped.to_vec(),
            key: key.clone(),
        };
        entries.insert((org, kek_version), cached);
    }
}

/// Turns decrypted bytes into a secret without copying them again; invalid UTF-8 (which
/// nothing this store sealed can be) is wiped and reported as a crypto failure.
fn into_secret(mut plain: Zeroizing<Vec<u8>>) -> StoreResult<SecretValue> {
    match String::from_utf8(std::mem::take(&mut *plain)) {
        Ok(text) => Ok(SecretValue::new(text)),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(StoreError::Crypto)
        }
    }
}

/// A fresh random key wrapped under the ring's current version.
pub(crate) fn new_wrapped_key(
    ring: &MasterKeyRing,
    owner: KeyOwner<'_>,
) -> StoreResult<WrappedKey> {
    let key = random_key()?;
    wrap_key(ring, owner, key.as_slice())
}

fn wrap_key(ring: &MasterKeyRing, owner: KeyOwner<'_>, key: &[u8]) -> StoreResult<WrappedKey> {
    let kek_version = ring.current_version();
    let kek = ring.key(kek_version)?;
    let bytes = seal(kek.as_slice(), &owner.aad(kek_version), key)?;
    Ok(WrappedKey { bytes, kek_version })
}

fn unwrap_key(
    ring: &MasterKeyRing,
    owner: KeyOwner<'_>,
    wrapped: &[u8],
    kek_version: u32,
) -> StoreResult<Zeroizing<Vec<u8>>> {
    let kek = ring.key(kek_version)?;
    let key = open(kek.as_slice(), &owner.aad(kek_version), wrapped)?;
    if key.len() != KEY_LEN {
        return Err(StoreError::Crypto);
    }
    Ok(key)
}

fn secret_aad(org: OrgId, name: &str) -> String {
    format!("switchboard.secret.v1|{org}|{name}")
}

fn aead_key(key: &[u8]) -> StoreResult<LessSafeKey> {
    let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| StoreError::Crypto)?;
    Ok(LessSafeKey::new(unbound))
}

/// AES-256-GCM with a random 96-bit nonce, prepended to the output.
fn seal(key: &[u8], aad: &str, plaintext: &[u8]) -> StoreResult<Vec<u8>> {
    let key = aead_key(key)?;
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let mut in_out = Zeroizing::new(plaintext.to_vec());
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad.as_bytes()),
        &mut *in_out,
    )
    .map_err(|_| StoreError::Crypto)?;
    let mut out = Vec::with_capacity(NONCE_LEN + in_out.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&in_out);
    Ok(out)
}

fn open(key: &[u8], aad: &str, blob: &[u8]) -> StoreResult<Zeroizing<Vec<u8>>> {
    if blob.len() < NONCE_LEN {
        return Err(StoreError::Crypto);
    }
    let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| StoreError::Crypto)?;
    let key = aead_key(key)?;
    let mut in_out = Zeroizing::new(ciphertext.to_vec());
    let plain_len = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| StoreError::Crypto)?
        .len();
    in_out.truncate(plain_len);
    Ok(in_out)
}

/// Lower-case hex, used for hashes and public ids.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(ring: MasterKeyRing) -> Vault {
        let pepper = new_wrapped_key(&ring, KeyOwner::Instance(PEPPER_KEY)).unwrap();
        Vault::unlock(ring, &pepper).unwrap()
    }

    #[test]
    fn secret_round_trips_and_is_bound_to_org_and_name() {
        let v = vault(MasterKeyRing::generate().unwrap());
        let org = OrgId::new();
        let dek = v.new_wrapped_key(KeyOwner::Org(org)).unwrap();
        let value = SecretValue::new("sk-canary-123".into());
        let ct = v.encrypt_secret(org, &dek, "key", &value).unwrap();
        assert!(!ct.windows(6).any(|w| w == b"canary"));
        assert_eq!(v.decrypt_secret(org, &dek, "key", &ct).unwrap(), value);
        assert!(matches!(
            v.decrypt_secret(org, &dek, "other", &ct),
            Err(StoreError::Crypto)
        ));
        // The data key itself is bound to its organization.
        assert!(matches!(
            v.decrypt_secret(OrgId::new(), &dek, "key", &ct),
            Err(StoreError::Crypto)
        ));
    }

    #[test]
    fn unseal_matches_decrypt_and_the_key_cache_never_vouches_for_other_bytes() {
        let v = vault(MasterKeyRing::generate().unwrap());
        let org = OrgId::new();
        let dek = v.new_wrapped_key(KeyOwner::Org(org)).unwrap();
        let value = SecretValue::new("sk-canary-123".into());
        let ct = v.encrypt_secret(org, &dek, "key", &value).unwrap();
        let unseal = |org, wrapped: &[u8]| v.unseal(org, "key", wrapped, dek.kek_version, &ct);
        assert_eq!(unseal(org, &dek.bytes).unwrap(), value);
        assert_eq!(unseal(org, &dek.bytes).unwrap(), value, "cached");
        let mut forged = dek.bytes.clone();
        forged[NONCE_LEN] ^= 1;
        assert!(matches!(unseal(org, &forged), Err(StoreError::Crypto)));
        assert!(matches!(
            unseal(OrgId::new(), &dek.bytes),
            Err(StoreError::Crypto)
        ));
        assert_eq!(unseal(org, &dek.bytes).unwrap(), value);
    }

    #[test]
    fn tampered_or_truncated_ciphertext_fails_cleanly() {
        let v = vault(MasterKeyRing::generate().unwrap());
        let org = OrgId::new();
        let dek = v.new_wrapped_key(KeyOwner::Org(org)).unwrap();
        let mut ct = v
            .encrypt_secret(org, &dek, "k", &SecretValue::new("v".into()))
            .unwrap();
        ct[NONCE_LEN] ^= 1;
        assert!(matches!(
            v.decrypt_secret(org, &dek, "k", &ct),
            Err(StoreError::Crypto)
        ));
        assert!(matches!(
            v.decrypt_secret(org, &dek, "k", &ct[..3]),
            Err(StoreError::Crypto)
        ));
    }

    #[test]
    fn rewrap_moves_a_key_to_the_new_version_and_drops_the_old_dependency() {
        let old = MasterKeyRing::generate().unwrap();
        let v1 = vault(old.clone());
        let org = OrgId::new();
        let dek = v1.new_wrapped_key(KeyOwner::Org(org)).unwrap();
        let ct = v1
            .encrypt_secret(org, &dek, "k", &SecretValue::new("value".into()))
            .unwrap();

        let both = old.with_generated_version().unwrap();
        assert_eq!(both.current_version(), 2);
        let v2 = vault(both.clone());
        let rewrapped = v2.rewrap(KeyOwner::Org(org), &dek).unwrap();
        assert_eq!(rewrapped.kek_version, 2);

        let mut only_new = both;
        only_new.keys.remove(&1);
        let v3 = vault(only_new);
        assert_eq!(
            v3.decrypt_secret(org, &rewrapped, "k", &ct)
                .unwrap()
                .expose(),
            "value"
        );
        assert!(matches!(
            v3.decrypt_secret(org, &dek, "k", &ct),
            Err(StoreError::Key(_))
        ));
    }

    #[test]
    fn a_wrapped_key_relabelled_with_another_version_fails() {
        let ring = MasterKeyRing::generate()
            .unwrap()
            .with_generated_version()
            .unwrap();
        let v = vault(ring);
        let org = OrgId::new();
        let mut dek = v.new_wrapped_key(KeyOwner::Org(org)).unwrap();
        dek.kek_version = 1;
        let r = v.encrypt_secret(org, &dek, "k", &SecretValue::new("v".into()));
        assert!(matches!(r, Err(StoreError::Crypto)));
    }

    #[test]
    fn content_is_bound_to_org_period_and_invocation() {
        let v = vault(MasterKeyRing::generate().unwrap());
        let org = OrgId::new();
        let wrapped = v
            .new_wrapped_key(KeyOwner::Content(org, "2026-01-02"))
            .unwrap();
        let key = v.content_key(org, "2026-01-02", &wrapped).unwrap();
        let ct = key.seal("inv-1", b"hello").unwrap();
        assert_eq!(key.open("inv-1", &ct).unwrap().as_slice(), b"hello");
        assert!(matches!(key.open("inv-2", &ct), Err(StoreError::Crypto)));
        assert!(v.content_key(org, "2026-01-03", &wrapped).is_err());
        assert!(v.content_key(OrgId::new(), "2026-01-02", &wrapped).is_err());
    }

    #[test]
    fn env_value_forms_parse() {
        let k1 = STANDARD.encode([1u8; 32]);
        let k2 = STANDARD.encode([2u8; 32]);
        let single = MasterKeyRing::from_env_value(&k1).unwrap();
        assert_eq!(single.versions(), vec![1]);
        let list = MasterKeyRing::from_env_value(&format!("2:{k2}, 1:{k1}")).unwrap();
        assert_eq!(list.versions(), vec![1, 2]);
        assert_eq!(list.current_version(), 2);
        assert!(MasterKeyRing::from_env_value("not base64!").is_err());
        assert!(MasterKeyRing::from_env_value(&STANDARD.encode([0u8; 16])).is_err());
        assert!(MasterKeyRing::from_env_value(&format!("0:{k1}")).is_err());
    }

    #[test]
    fn debug_never_shows_key_material() {
        let ring = MasterKeyRing::from_env_value(&STANDARD.encode([7u8; 32])).unwrap();
        let text = format!("{ring:?}");
        assert!(!text.contains(&STANDARD.encode([7u8; 32])));
        assert!(text.contains("redacted"));
    }

    #[test]
    fn key_file_is_created_private_and_grows_on_rotation() {
        let dir = std::env::temp_dir().join(format!("sb-vault-{}", uuid::Uuid::now_v7().simple()));
        let path = dir.join("nested").join("master.key");
        assert!(matches!(
            MasterKeyRing::load_or_create_file(&path, false),
            Err(StoreError::Key(_))
        ));
        let ring = MasterKeyRing::load_or_create_file(&path, true).unwrap();
        assert_eq!(ring.versions(), vec![1]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let rotated = MasterKeyRing::add_generated_version(&path).unwrap();
        assert_eq!(rotated.versions(), vec![1, 2]);
        let reloaded = MasterKeyRing::load_or_create_file(&path, false).unwrap();
        assert_eq!(reloaded.versions(), vec![1, 2]);
        assert_eq!(reloaded.key(1).unwrap(), ring.key(1).unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn token_hash_is_keyed() {
        let a = vault(MasterKeyRing::generate().unwrap());
        let b = vault(MasterKeyRing::generate().unwrap());
        assert_eq!(a.token_hash("x"), a.token_hash("x"));
        assert_ne!(a.token_hash("x"), b.token_hash("x"));
        assert_eq!(a.token_hash("x").len(), 64);
    }
}
