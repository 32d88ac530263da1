//! The egress policy: which upstream URLs and addresses the service may connect to.
//!
//! Tenant-supplied URLs (`endpoint`, `baseUrl`) and operator-configured upstreams are the
//! dominant SSRF vector of LLM gateways (security catalogue §1.1). This module is the pure
//! half of the defence: it parses and judges URLs and IP addresses. The I/O half — resolving
//! host names and refusing every resolved address at *connect* time — lives in the outbound
//! client, which calls [`EgressPolicy::check_url`] and then [`EgressPolicy::check_ip`] for
//! every address it is about to dial.
//!
//! Decisions:
//! - Only `https` upstreams, plus `http` when the operator sets `SWITCHBOARD_EGRESS_ALLOW_HTTP`.
//! - Every address that is not global unicast is refused unless an allow entry covers it. The
//!   reserved tables are written out here (not `IpAddr::is_global`, which is unstable) and
//!   embedded IPv4 addresses (IPv4-mapped, NAT64, 6to4) are classified as IPv4.
//! - Well-known internal *names* (`localhost`, `*.localhost`, `metadata.google.internal`,
//!   `*.internal`, `*.local`, single-label names such as `metadata`) are refused before any DNS
//!   lookup, unless an allow entry names them. Single-label names are refused because they
//!   resolve through resolver search domains into the operator's own network.
//! - Allow entries are CIDRs, bare IP addresses (a /32 or /128), exact host names
//!   (case-insensitive, trailing dot ignored) or `*.suffix` wildcards. A wildcard matches proper
//!   subdomains only, not the suffix itself; a bare `*` is refused.
//! - A host name allowed by name is trusted whatever it resolves to: that is what an operator
//!   means by allowing `litellm.svc.cluster.local`.
//! - Raw URLs with control characters, whitespace, backslashes or non-ASCII characters are
//!   refused before parsing, because the WHATWG parser silently strips or rewrites them (tab
//!   and newline removal, `\` as `/`, IDNA mapping of homographs).
//! - Error messages name the URL's host at most; never userinfo, path, query or the raw URL,
//!   which may carry credentials.

use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// The longest URL accepted. Provider base URLs are short; a cap keeps error paths and
/// storage bounded.
pub const MAX_URL_LEN: usize = 2048;

/// Why an address or name is refused. The wire text (see [`BlockReason::as_str`]) appears in
/// error messages and audit details.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockReason {
    /// `0.0.0.0/8`, `::`: "this host" — many stacks route it to loopback.
    Unspecified,
    Loopback,
    /// RFC 1918.
    Private,
    LinkLocal,
    /// Cloud instance metadata endpoints (AWS, GCP, Azure, Alibaba, Oracle).
    Metadata,
    /// Carrier-grade NAT, `100.64.0.0/10`.
    Cgnat,
    /// `192.0.0.0/24`, `2001::/23`.
    IetfProtocol,
    Documentation,
    Benchmarking,
    Multicast,
    Reserved,
    Broadcast,
    /// IPv6 unique local addresses, `fc00::/7`.
    UniqueLocal,
    /// IPv6 discard prefix, `100::/64`.
    Discard,
    /// A host name that by convention names the local machine or the local network.
    InternalName,
}

impl BlockReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::Unspecified => "unspecified",
            BlockReason::Loopback => "loopback",
            BlockReason::Private => "private",
            BlockReason::LinkLocal => "link-local",
            BlockReason::Metadata => "metadata",
            BlockReason::Cgnat => "cgnat",
            BlockReason::IetfProtocol => "ietf-protocol-assignment",
            BlockReason::Documentation => "documentation",
            BlockReason::Benchmarking => "benchmarking",
            BlockReason::Multicast => "multicast",
            BlockReason::Reserved => "reserved",
            BlockReason::Broadcast => "broadcast",
            BlockReason::UniqueLocal => "unique-local",
            BlockReason::Discard => "discard",
            BlockReason::InternalName => "internal-name",
        }
    }
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused URL, address or allow entry. Messages carry the host at most.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error(
        "invalid egress allow entry '{entry}': expected a CIDR, an IP address, a host name or '*.suffix'"
    )]
    InvalidAllowEntry { entry: String },
    #[error("the URL is not valid: {reason}")]
    Malformed { reason: &'static str },
    #[error("URL scheme '{scheme}' is not allowed; use https")]
    Scheme { scheme: String },
    #[error("plain http to '{host}' is not allowed; use https")]
    PlainHttp { host: String },
    #[error("the URL for '{host}' must not contain user information")]
    Userinfo { host: String },
    #[error("the URL for '{host}' must not contain a fragment")]
    Fragment { host: String },
    #[error("the URL must name a host")]
    MissingHost,
    #[error("the URL for '{host}' has an invalid port")]
    Port { host: String },
    #[error("host '{host}' is not allowed ({reason})")]
    BlockedName { host: String, reason: BlockReason },
    #[error("host '{host}' resolves to a {reason} address ({ip}), which is not allowed")]
    BlockedAddress {
        host: String,
        ip: IpAddr,
        reason: BlockReason,
    },
}

impl EgressError {
    /// The class of refused destination, when the refusal is about the destination.
    pub fn block_reason(&self) -> Option<BlockReason> {
        match self {
            EgressError::BlockedName { reason, .. }
            | EgressError::BlockedAddress { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

/// One operator allow entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum AllowEntry {
    Net(IpNet),
    /// Lower-case, without trailing dot.
    Host(String),
    /// Lower-case suffix including the leading dot, e.g. `.example.internal`.
    Suffix(String),
}

/// Which destinations the service may connect to. `Default` is the strictest policy: https
/// only, no private destination allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allow: Vec<AllowEntry>,
    allow_http: bool,
}

impl EgressPolicy {
    /// Builds a policy from allow entries (CIDRs, IPs, host names or `*.suffix`). Blank
    /// entries are skipped so that a trailing comma in the environment is harmless.
    pub fn new(allow: &[String], allow_http: bool) -> Result<Self, EgressError> {
        let allow = allow
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .map(parse_allow_entry)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { allow, allow_http })
    }

    /// Builds a policy from `SWITCHBOARD_EGRESS_ALLOW` (a comma list) and
    /// `SWITCHBOARD_EGRESS_ALLOW_HTTP`.
    pub fn from_env_values(allow: &str, allow_http: bool) -> Result<Self, EgressError> {
        let entries: Vec<String> = allow.split(',').map(str::to_owned).collect();
        Self::new(&entries, allow_http)
    }

    pub fn allows_http(&self) -> bool {
        self.allow_http
    }

    /// This policy plus one more allow entry (and plain http when `allow_http`); used by
    /// `switchboard demo` to reach its own simulator and nothing else new.
    pub fn with_allowed(mut self, entry: &str, allow_http: bool) -> Result<Self, EgressError> {
        self.allow.push(parse_allow_entry(entry.trim())?);
        self.allow_http |= allow_http;
        Ok(self)
    }

    /// Parses and judges an upstream URL. Host names are judged by name only here; the
    /// caller must still pass every resolved address through [`Self::check_ip`].
    pub fn check_url(&self, raw: &str) -> Result<Url, EgressError> {
        check_raw_text(raw)?;
        let url = Url::parse(raw).map_err(|_| EgressError::Malformed {
            reason: "it could not be parsed",
        })?;
        let host = host_text(&url)?;
        self.check_scheme(&url, &host)?;
        check_parts(&url, &host)?;
        match url.host() {
            Some(Host::Ipv4(ip)) => self.check_ip(&host, IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => self.check_ip(&host, IpAddr::V6(ip))?,
            Some(Host::Domain(name)) => self.check_name(name)?,
            None => return Err(EgressError::MissingHost),
        }
        Ok(url)
    }

    /// Judges one address the caller is about to connect to for `host` (the URL's host,
    /// used for name allow entries and for the message).
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), EgressError> {
        let Some(reason) = classify_ip(ip) else {
            return Ok(());
        };
        if self.allows_ip(ip) || self.allows_name(host) {
            return Ok(());
        }
        Err(EgressError::BlockedAddress {
            host: host.to_owned(),
            ip,
            reason,
        })
    }

    /// Judges a host name before resolution: well-known internal names are refused unless
    /// an allow entry names them.
    pub fn check_name(&self, host: &str) -> Result<(), EgressError> {
        if let Ok(ip) = strip_brackets(host).parse::<IpAddr>() {
            return self.check_ip(host, ip);
        }
        match classify_name(host) {
            Some(reason) if !self.allows_name(host) => Err(EgressError::BlockedName {
                host: host.to_owned(),
                reason,
            }),
            _ => Ok(()),
        }
    }

    fn check_scheme(&self, url: &Url, host: &str) -> Result<(), EgressError> {
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.allow_http => Ok(()),
            "http" => Err(EgressError::PlainHttp {
                host: host.to_owned(),
            }),
            other => Err(EgressError::Scheme {
                scheme: other.chars().take(32).collect(),
            }),
        }
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.allow.iter().any(|e| match e {
            AllowEntry::Net(net) => net.contains(&ip),
            _ => false,
        })
    }

    fn allows_name(&self, host: &str) -> bool {
        let host = normalize_name(host);
        self.allow.iter().any(|e| match e {
            AllowEntry::Host(h) => *h == host,
            AllowEntry::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
            AllowEntry::Net(_) => false,
        })
    }
}

/// Refuses raw text that the URL parser would silently rewrite, and anything that does not
/// start with an explicit `scheme://authority`.
fn check_raw_text(raw: &str) -> Result<(), EgressError> {
    let malformed = |reason| Err(EgressError::Malformed { reason });
    if raw.is_empty() || raw.len() > MAX_URL_LEN {
        return malformed("it is empty or longer than 2048 characters");
    }
    if !raw.is_ascii() {
        return malformed("it contains non-ASCII characters; use punycode");
    }
    if raw
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
    {
        return malformed("it contains whitespace, control characters or backslashes");
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        return malformed("it must start with https://");
    };
    if scheme.is_empty() || rest.starts_with('/') {
        return malformed("it must start with https:// followed by a host");
    }
    Ok(())
}

/// The URL's host as text (IPv6 in brackets), or `MissingHost`.
fn host_text(url: &Url) -> Result<String, EgressError> {
    match url.host_str() {
        Some(h) if !h.is_empty() => Ok(h.to_owned()),
        _ => Err(EgressError::MissingHost),
    }
}

/// Userinfo, fragments and port 0 are refused: userinfo hides the real host from readers
/// (`https://api.openai.com@127.0.0.1`), a fragment hides the rest of a concatenated host
/// (`https://evil.org#.openai.azure.com`).
fn check_parts(url: &Url, host: &str) -> Result<(), EgressError> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EgressError::Userinfo {
            host: host.to_owned(),
        });
    }
    if url.fragment().is_some() {
        return Err(EgressError::Fragment {
            host: host.to_owned(),
        });
    }
    if url.port() == Some(0) {
        return Err(EgressError::Port {
            host: host.to_owned(),
        });
    }
    Ok(())
}

fn parse_allow_entry(entry: &str) -> Result<AllowEntry, EgressError> {
    let invalid = || EgressError::InvalidAllowEntry {
        entry: entry.chars().take(100).collect(),
    };
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(AllowEntry::Net(canonical_net(net)));
    }
    if let Ok(ip) = strip_brackets(entry).parse::<IpAddr>() {
        return Ok(AllowEntry::Net(IpNet::from(canonical_ip(ip))));
    }
    let name = normalize_name(entry);
    if let Some(suffix) = name.strip_prefix("*.") {
        return match is_host_name(suffix) {
            true => Ok(AllowEntry::Suffix(format!(".{suffix}"))),
            false => Err(invalid()),
        };
    }
    match is_host_name(&name) {
        true => Ok(AllowEntry::Host(name)),
        false => Err(invalid()),
    }
}

/// Lower-case, without one trailing dot: `LocalHost.` and `localhost` are the same name.
fn normalize_name(host: &str) -> String {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Dot-separated labels of letters, digits, `-` and `_` (Kubernetes and SRV names use `_`).
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// IPv4-mapped IPv6 addresses are compared as IPv4, so an allow entry `10.0.0.0/8` also
/// covers `::ffff:10.0.0.1`, and a block of `127/8` cannot be dodged by mapping.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn canonical_net(net: IpNet) -> IpNet {
    net.trunc()
}

/// Names that by convention mean "this machine" or "this network", judged without DNS.
fn classify_name(host: &str) -> Option<BlockReason> {
    let name = normalize_name(host);
    const METADATA_NAMES: &[&str] = &[
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
    ];
    const INTERNAL_SUFFIXES: &[&str] = &[
        ".localhost",
        ".local",
        ".localdomain",
        ".internal",
        ".home.arpa",
        ".lan",
        ".intranet",
        ".corp",
    ];
    if METADATA_NAMES.contains(&name.as_str()) {
        return Some(BlockReason::Metadata);
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return Some(BlockReason::Loopback);
    }
    let internal = !name.contains('.') || INTERNAL_SUFFIXES.iter().any(|s| name.ends_with(s));
    internal.then_some(BlockReason::InternalName)
}

/// The class of a non-global address, or `None` for a global unicast one.
pub fn classify_ip(ip: IpAddr) -> Option<BlockReason> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// `(network, prefix length, class)`, most specific first: the first match wins.
const V4_TABLE: &[(u32, u8, BlockReason)] = &[
    (0xA9FE_A9FE, 32, BlockReason::Metadata), // 169.254.169.254 AWS/GCP/Azure
    (0xA9FE_AA02, 32, BlockReason::Metadata), // 169.254.170.2 ECS task metadata
    (0x6464_64C8, 32, BlockReason::Metadata), // 100.100.100.200 Alibaba
    (0xC000_00C0, 32, BlockReason::Metadata), // 192.0.0.192 Oracle
    (0xFFFF_FFFF, 32, BlockReason::Broadcast), // 255.255.255.255
    (0x0000_0000, 8, BlockReason::Unspecified),
    (0x0A00_0000, 8, BlockReason::Private),
    (0x6440_0000, 10, BlockReason::Cgnat),
    (0x7F00_0000, 8, BlockReason::Loopback),
    (0xA9FE_0000, 16, BlockReason::LinkLocal),
    (0xAC10_0000, 12, BlockReason::Private),
    (0xC000_0000, 24, BlockReason::IetfProtocol),
    (0xC000_0200, 24, BlockReason::Documentation), // TEST-NET-1
    (0xC058_6300, 24, BlockReason::Reserved),      // 6to4 relay anycast (deprecated)
    (0xC0A8_0000, 16, BlockReason::Private),
    (0xC612_0000, 15, BlockReason::Benchmarking),
    (0xC633_6400, 24, BlockReason::Documentation), // TEST-NET-2
    (0xCB00_7100, 24, BlockReason::Documentation), // TEST-NET-3
    (0xE000_0000, 4, BlockReason::Multicast),
    (0xF000_0000, 4, BlockReason::Reserved),
];

/// Like [`V4_TABLE`]. Prefixes that embed IPv4 are handled in [`classify_v6`] before this.
const V6_TABLE: &[(u128, u8, BlockReason)] = &[
    (
        0xfd00_0ec2_0000_0000_0000_0000_0000_0254,
        128,
        BlockReason::Metadata,
    ), // AWS IMDS v6
    (0, 128, BlockReason::Unspecified),
    (1, 128, BlockReason::Loopback),
    (0, 96, BlockReason::Reserved), // IPv4-compatible (deprecated)
    (0x0064_ff9b_0001 << 80, 48, BlockReason::Private), // local-use NAT64 (RFC 8215)
    (0x0100 << 112, 64, BlockReason::Discard),
    (0x2001 << 112, 23, BlockReason::IetfProtocol),
    (0x2001_0db8 << 96, 32, BlockReason::Documentation),
    (0x3fff << 112, 20, BlockReason::Documentation),
    (0xfc00 << 112, 7, BlockReason::UniqueLocal),
    (0xfe80 << 112, 10, BlockReason::LinkLocal),
    (0xfec0 << 112, 10, BlockReason::Reserved), // site-local (deprecated)
    (0xff00 << 112, 8, BlockReason::Multicast),
];

fn classify_v4(ip: Ipv4Addr) -> Option<BlockReason> {
    let bits = u32::from(ip);
    V4_TABLE
        .iter()
        .find(|(net, len, _)| prefix_match_u32(bits, *net, *len))
        .map(|(_, _, reason)| *reason)
}

fn classify_v6(ip: Ipv6Addr) -> Option<BlockReason> {
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let bits = u128::from(ip);
    let listed = V6_TABLE
        .iter()
        .find(|(net, len, _)| prefix_match_u128(bits, *net, *len))
        .map(|(_, _, reason)| *reason);
    // Only 2000::/3 is global unicast; everything else is unassigned or special.
    listed.or_else(|| (bits >> 125 != 1).then_some(BlockReason::Reserved))
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:0:0/96`), NAT64
/// well-known prefix (`64:ff9b::/96`) and 6to4 (`2002::/16`, bits 16..48).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from(bits as u32);
    if prefix_match_u128(bits, 0xffff << 32, 96) || prefix_match_u128(bits, 0x0064_ff9b << 96, 96) {
        return Some(low32);
    }
    if prefix_match_u128(bits, 0x2002 << 112, 16) {
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    None
}

fn prefix_match_u32(bits: u32, net: u32, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    bits & mask == net & mask
}

fn prefix_match_u128(bits: u128, net: u128, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    bits & mask == net & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> EgressPolicy {
        EgressPolicy::default()
    }

    fn policy(allow: &str, http: bool) -> EgressPolicy {
        EgressPolicy::from_env_values(allow, http).unwrap()
    }

    fn reason_of(p: &EgressPolicy, url: &str) -> Option<BlockReason> {
        p.check_url(url).err().and_then(|e| e.block_reason())
    }

    #[test]
    fn ipv4_classes() {
        let table: &[(&str, Option<BlockReason>)] = &[
            ("0.0.0.0", Some(BlockReason::Unspecified)),
            ("0.1.2.3", Some(BlockReason::Unspecified)),
            ("10.0.0.1", Some(BlockReason::Private)),
            ("10.255.255.255", Some(BlockReason::Private)),
            ("100.64.0.1", Some(BlockReason::Cgnat)),
            ("100.127.255.255", Some(BlockReason::Cgnat)),
            ("100.128.0.0", None),
            ("100.100.100.200", Some(BlockReason::Metadata)),
            ("127.0.0.1", Some(BlockReason::Loopback)),
            ("127.255.0.9", Some(BlockReason::Loopback)),
            ("169.254.169.254", Some(BlockReason::Metadata)),
            ("169.254.170.2", Some(BlockReason::Metadata)),
            ("169.254.1.1", Some(BlockReason::LinkLocal)),
            ("172.15.255.255", None),
            ("172.16.0.1", Some(BlockReason::Private)),
            ("172.31.255.255", Some(BlockReason::Private)),
            ("172.32.0.0", None),
            ("192.0.0.1", Some(BlockReason::IetfProtocol)),
            ("192.0.0.192", Some(BlockReason::Metadata)),
            ("192.0.2.1", Some(BlockReason::Documentation)),
            ("192.88.99.1", Some(BlockReason::Reserved)),
            ("192.168.1.1", Some(BlockReason::Private)),
            ("198.18.0.1", Some(BlockReason::Benchmarking)),
            ("198.19.255.255", Some(BlockReason::Benchmarking)),
            ("198.20.0.0", None),
            ("198.51.100.7", Some(BlockReason::Documentation)),
            ("203.0.113.9", Some(BlockReason::Documentation)),
            ("224.0.0.1", Some(BlockReason::Multicast)),
            ("239.255.255.255", Some(BlockReason::Multicast)),
            ("240.0.0.1", Some(BlockReason::Reserved)),
            ("255.255.255.254", Some(BlockReason::Reserved)),
            ("255.255.255.255", Some(BlockReason::Broadcast)),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("104.18.6.192", None),
        ];
        for (ip, want) in table {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(classify_ip(ip), *want, "{ip}");
        }
    }

    #[test]
    fn ipv6_classes() {
        let table: &[(&str, Option<BlockReason>)] = &[
            ("::", Some(BlockReason::Unspecified)),
            ("::1", Some(BlockReason::Loopback)),
            ("::7f00:1", Some(BlockReason::Reserved)),
            ("::ffff:127.0.0.1", Some(BlockReason::Loopback)),
            ("::ffff:7f00:1", Some(BlockReason::Loopback)),
            ("::ffff:10.0.0.1", Some(BlockReason::Private)),
            ("::ffff:169.254.169.254", Some(BlockReason::Metadata)),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::10.0.0.1", Some(BlockReason::Private)),
            ("64:ff9b::127.0.0.1", Some(BlockReason::Loopback)),
            ("64:ff9b::8.8.8.8", None),
            ("64:ff9b:1::1", Some(BlockReason::Private)),
            ("2002:7f00:1::", Some(BlockReason::Loopback)),
            ("2002:a9fe:a9fe::1", Some(BlockReason::Metadata)),
            ("2002:808:808::1", None),
            ("100::1", Some(BlockReason::Discard)),
            ("2001::1", Some(BlockReason::IetfProtocol)),
            ("2001:db8::1", Some(BlockReason::Documentation)),
            ("3fff::1", Some(BlockReason::Documentation)),
            ("fc00::1", Some(BlockReason::UniqueLocal)),
            ("fd12:3456::1", Some(BlockReason::UniqueLocal)),
            ("fd00:ec2::254", Some(BlockReason::Metadata)),
            ("fe80::1", Some(BlockReason::LinkLocal)),
            ("febf::1", Some(BlockReason::LinkLocal)),
            ("fec0::1", Some(BlockReason::Reserved)),
            ("ff02::1", Some(BlockReason::Multicast)),
            ("4000::1", Some(BlockReason::Reserved)),
            ("2606:4700::1111", None),
            ("2a00:1450:4001::200e", None),
        ];
        for (ip, want) in table {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(classify_ip(ip), *want, "{ip}");
        }
    }

    #[test]
    fn urls_refused_by_the_strict_policy() {
        let table: &[(&str, BlockReason)] = &[
            ("https://127.0.0.1/", BlockReason::Loopback),
            ("https://127.1/", BlockReason::Loopback),
            ("https://2130706433/", BlockReason::Loopback),
            ("https://0x7f000001/", BlockReason::Loopback),
            ("https://0x7f.1/", BlockReason::Loopback),
            ("https://017700000001/", BlockReason::Loopback),
            ("https://0177.0.0.1/", BlockReason::Loopback),
            ("https://127.0.0.1./", BlockReason::Loopback),
            ("https://%31%32%37.0.0.1/", BlockReason::Loopback),
            ("https://[::1]/", BlockReason::Loopback),
            ("https://[::ffff:127.0.0.1]/", BlockReason::Loopback),
            ("https://[::ffff:7f00:1]/", BlockReason::Loopback),
            ("https://[::ffff:10.0.0.1]/v1", BlockReason::Private),
            ("https://[fd00:ec2::254]/", BlockReason::Metadata),
            ("https://[fe80::1]/", BlockReason::LinkLocal),
            ("https://[64:ff9b::a00:1]/", BlockReason::Private),
            ("https://0.0.0.0/", BlockReason::Unspecified),
            ("https://0/", BlockReason::Unspecified),
            ("https://10.0.0.1/v1", BlockReason::Private),
            ("https://172.16.5.4/", BlockReason::Private),
            ("https://192.168.0.1:8443/", BlockReason::Private),
            ("https://100.64.0.1/", BlockReason::Cgnat),
            ("https://198.18.0.1/", BlockReason::Benchmarking),
            ("https://192.0.0.8/", BlockReason::IetfProtocol),
            (
                "https://169.254.169.254/latest/meta-data/",
                BlockReason::Metadata,
            ),
            ("https://localhost/", BlockReason::Loopback),
            ("https://LOCALHOST./", BlockReason::Loopback),
            ("https://api.localhost/", BlockReason::Loopback),
            ("https://metadata.google.internal/", BlockReason::Metadata),
            ("https://metadata/", BlockReason::Metadata),
            ("https://instance-data/", BlockReason::Metadata),
            ("https://intranet/", BlockReason::InternalName),
            ("https://printer.local/", BlockReason::InternalName),
            ("https://svc.example.internal/", BlockReason::InternalName),
            ("https://router.home.arpa/", BlockReason::InternalName),
        ];
        for (url, want) in table {
            assert_eq!(reason_of(&strict(), url), Some(*want), "{url}");
        }
    }

    #[test]
    fn malformed_and_smuggling_urls_are_refused() {
        let table: &[&str] = &[
            "",
            "api.openai.com",
            "https:api.openai.com",
            "https:///api.openai.com",
            "https://",
            "https://evil.org#.openai.azure.com",
            "https://127.0.0.1#.openai.azure.com",
            "https://a@b.com",
            "https://a@b",
            "https://api.openai.com@127.0.0.1/",
            "https://user:pw@api.openai.com/",
            "https://api.openai.com\\@127.0.0.1/",
            "https://api.open\tai.com/",
            "https://api.openai.com/\r\nHost: x",
            "https://api.openai.com /",
            "https://аpi.openai.com/",
            "https://api.openai.com:0/",
            "https://api.openai.com:65536/",
            "file:///etc/passwd",
            "gopher://example.com/",
            "ftp://example.com/",
            "ws://example.com/",
            "data:text/plain,hi",
            "unix:///var/run/docker.sock",
            "javascript://example.com/",
            "http://api.openai.com/",
            "http://169.254.169.254/",
        ];
        for url in table {
            assert!(strict().check_url(url).is_err(), "{url:?} was accepted");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(strict().check_url(&long).is_err());
    }

    #[test]
    fn public_https_urls_pass() {
        for url in [
            "https://api.openai.com/v1",
            "https://my-resource.openai.azure.com",
            "https://litellm.corp.example.com/v1",
            "https://8.8.8.8/",
            "https://[2606:4700::1111]/",
            "https://[::ffff:8.8.8.8]/",
            "https://example.com:8443/v1?x=1",
            "HTTPS://Example.COM/",
        ] {
            assert!(strict().check_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn error_messages_name_the_host_but_not_credentials() {
        let err = strict()
            .check_url("https://sk-secret:pw@api.openai.com/")
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("api.openai.com"), "{text}");
        assert!(
            !text.contains("sk-secret") && !text.contains("pw"),
            "{text}"
        );

        let err = strict()
            .check_url("https://10.0.0.1/?key=sk-secret")
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("10.0.0.1") && text.contains("private"),
            "{text}"
        );
        assert!(!text.contains("sk-secret"), "{text}");
    }

    #[test]
    fn http_only_when_enabled() {
        assert!(matches!(
            strict().check_url("http://api.example.com/"),
            Err(EgressError::PlainHttp { .. })
        ));
        let p = policy("", true);
        assert!(p.check_url("http://api.example.com/").is_ok());
        assert_eq!(
            reason_of(&p, "http://169.254.169.254/"),
            Some(BlockReason::Metadata)
        );
    }

    #[test]
    fn allow_entries_open_exactly_what_they_name() {
        let p = policy(
            " 127.0.0.1/32, 10.0.0.0/8,::1/128 ,,llm.svc.cluster.local, *.corp.internal ,metadata,192.168.1.5",
            true,
        );
        assert!(p.check_url("http://127.0.0.1:8080/v1").is_ok());
        assert!(p.check_url("http://2130706433:8080/v1").is_ok());
        assert!(p.check_url("http://127.0.0.2/").is_err());
        assert!(p.check_url("https://10.1.2.3/").is_ok());
        assert!(p.check_url("https://[::ffff:10.1.2.3]/").is_ok());
        assert!(p.check_url("https://[::1]/").is_ok());
        assert!(p.check_url("https://192.168.1.5/").is_ok());
        assert!(p.check_url("https://192.168.1.6/").is_err());
        assert!(p.check_url("https://LLM.svc.cluster.local./").is_ok());
        assert!(p.check_url("https://other.svc.cluster.local/").is_err());
        assert!(p.check_url("https://a.corp.internal/").is_ok());
        assert!(p.check_url("https://a.b.corp.internal/").is_ok());
        assert!(p.check_url("https://corp.internal/").is_err());
        assert!(p.check_url("https://metadata/").is_ok());
        assert!(p.check_url("https://metadata.google.internal/").is_err());
        assert!(p.check_url("https://169.254.169.254/").is_err());
    }

    #[test]
    fn check_ip_honours_name_and_cidr_entries() {
        let p = policy("llm.svc.cluster.local,10.0.0.0/8", false);
        let private: IpAddr = "172.16.0.9".parse().unwrap();
        assert!(p.check_ip("llm.svc.cluster.local", private).is_ok());
        let err = p.check_ip("api.example.com", private).unwrap_err();
        assert_eq!(err.block_reason(), Some(BlockReason::Private));
        assert!(err.to_string().contains("api.example.com"));
        assert!(
            p.check_ip("x.example.com", "10.9.9.9".parse().unwrap())
                .is_ok()
        );
        assert!(
            p.check_ip("x.example.com", "::ffff:10.9.9.9".parse().unwrap())
                .is_ok()
        );
        assert!(
            p.check_ip("x.example.com", "8.8.8.8".parse().unwrap())
                .is_ok()
        );
        let err = strict()
            .check_ip("rebind.example.com", "127.0.0.1".parse().unwrap())
            .unwrap_err();
        assert_eq!(err.block_reason(), Some(BlockReason::Loopback));
    }

    #[test]
    fn invalid_allow_entries_are_refused() {
        for entry in [
            "*",
            "*.",
            "10.0.0.0/33",
            "exa mple.com",
            "a..b",
            "https://x.com",
            "*.*.x",
        ] {
            let err = EgressPolicy::from_env_values(entry, false).unwrap_err();
            assert!(
                matches!(err, EgressError::InvalidAllowEntry { .. }),
                "{entry}"
            );
        }
        assert_eq!(EgressPolicy::from_env_values("", false), Ok(strict()));
        assert_eq!(EgressPolicy::from_env_values(" , ", false), Ok(strict()));
    }

    #[test]
    fn check_name_handles_ip_text() {
        let p = strict();
        assert!(p.check_name("[::1]").is_err());
        assert!(p.check_name("127.0.0.1").is_err());
        assert!(p.check_name("api.openai.com").is_ok());
    }
}
