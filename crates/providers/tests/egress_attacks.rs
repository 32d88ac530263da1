//! The egress client against a hostile network (security catalogue items 4 and 5): a DNS
//! server that rebinds a public name to loopback, between two connections or in one
//! answer, and an upstream that redirects to an internal address. A loopback listener
//! counts every connection it is offered: the protection holds only if it stays at zero
//! (and the allowlisted control case proves the listener would have seen one).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Method;
use reqwest::dns::{Addrs, Resolving};
use switchboard_core::egress::EgressPolicy;
use switchboard_providers::{EgressClient, EgressFailure, NameLookup, Timeouts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A public address (no route from the test machine; the connection just fails).
const PUBLIC: [u8; 4] = [93, 184, 215, 14];

/// A loopback HTTP listener that counts connections and answers each request with
/// `response`; returns its port and the counter.
async fn listener(response: String) -> (u16, Arc<AtomicUsize>) {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = socket.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let response = response.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, seen)
}

fn ok_response() -> String {
    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".to_owned()
}

/// A DNS server under the attacker's control: each lookup gets the next answer (the last
/// one repeats).
struct Rebinding {
    answers: Vec<Vec<[u8; 4]>>,
    asked: AtomicUsize,
}

impl NameLookup for Rebinding {
    fn lookup(&self, _host: &str) -> Resolving {
        let n = self.asked.fetch_add(1, Ordering::SeqCst);
        let answer = self.answers[n.min(self.answers.len() - 1)].clone();
        Box::pin(async move {
            let addrs: Addrs = Box::new(
                answer
                    .into_iter()
                    .map(|ip| SocketAddr::from((ip, 0)))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(addrs)
        })
    }
}

fn client(policy: EgressPolicy, answers: Vec<Vec<[u8; 4]>>) -> (EgressClient, Arc<Rebinding>) {
    let lookup = Arc::new(Rebinding {
        answers,
        asked: AtomicUsize::new(0),
    });
    let timeouts = Timeouts {
        connect: Duration::from_millis(500),
        first_byte: Duration::from_secs(5),
        ..Timeouts::default()
    };
    let client = EgressClient::with_lookup(policy, timeouts, lookup.clone()).unwrap();
    (client, lookup)
}

fn strict() -> EgressPolicy {
    EgressPolicy::new(&[], true).unwrap()
}

async fn get(client: &EgressClient, url: &str) -> Result<reqwest::Response, EgressFailure> {
    client.send(client.request(Method::GET, url)?).await
}

#[tokio::test]
async fn a_name_rebound_to_loopback_between_connections_is_never_dialled() {
    let (port, seen) = listener(ok_response()).await;
    let (client, dns) = client(strict(), vec![vec![PUBLIC], vec![[127, 0, 0, 1]]]);
    let url = format!("http://rebind.example.com:{port}/v1/models");
    // First connection: the public answer (which cannot be reached from here).
    assert!(get(&client, &url).await.is_err());
    // Second connection: the name now points at loopback; the resolver refuses it.
    let second = get(&client, &url).await;
    assert!(
        matches!(second, Err(EgressFailure::Blocked(_))),
        "{second:?}"
    );
    assert_eq!(
        dns.asked.load(Ordering::SeqCst),
        2,
        "each connection resolves once"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 0, "loopback was dialled");
}

#[tokio::test]
async fn an_answer_mixing_public_and_loopback_addresses_is_refused_whole() {
    let (port, seen) = listener(ok_response()).await;
    let (client, _) = client(strict(), vec![vec![PUBLIC, [127, 0, 0, 1]]]);
    let answer = get(&client, &format!("http://both.example.com:{port}/")).await;
    assert!(
        matches!(answer, Err(EgressFailure::Blocked(_))),
        "{answer:?}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_same_lookup_reaches_an_allowlisted_address() {
    // The control case: with loopback allowlisted the listener sees the connection, so the
    // zero counts above are the policy's doing.
    let (port, seen) = listener(ok_response()).await;
    let policy = EgressPolicy::new(&["127.0.0.1/32".to_owned()], true).unwrap();
    let (client, _) = client(policy, vec![vec![[127, 0, 0, 1]]]);
    let answer = get(&client, &format!("http://allowed.example.com:{port}/"))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_redirect_to_an_internal_address_is_not_followed_and_gets_no_credential() {
    let (internal, internal_seen) = listener(ok_response()).await;
    let redirect = format!(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{internal}/steal\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let (upstream, upstream_seen) = listener(redirect).await;
    // Loopback is allowed here (the upstream lives there), so only the no-redirect rule
    // stands between the credential and the internal address.
    let policy = EgressPolicy::new(&["127.0.0.1/32".to_owned()], true).unwrap();
    let client = EgressClient::new(policy, Timeouts::default()).unwrap();
    let request = client
        .request(
            Method::POST,
            &format!("http://127.0.0.1:{upstream}/v1/chat/completions"),
        )
        .unwrap()
        .bearer_auth("sk-canary-redirect");
    let answer = client.send(request).await.unwrap();
    assert_eq!(answer.status(), 302, "handed back, not followed");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(upstream_seen.load(Ordering::SeqCst), 1);
    assert_eq!(
        internal_seen.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}
