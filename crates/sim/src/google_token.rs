//! Google's OAuth token endpoint for service accounts (`POST /token`, JWT-bearer grant):
//! verifies the assertion's RS256 signature against the configured public key, its
//! audience (this endpoint's URL), its lifetime and its scope, and issues an access token
//! the Vertex endpoints then accept.

use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;

use crate::auth::header;
use crate::{Sim, ids, reply};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google rejects assertions valid for longer than an hour.
const MAX_LIFETIME: u64 = 3600;

#[derive(Deserialize)]
struct Claims {
    iss: String,
    scope: Option<String>,
    aud: String,
    iat: u64,
    exp: u64,
}

fn invalid_grant(description: &str) -> Response {
    let body = json!({"error": "invalid_grant", "error_description": description});
    reply::json(StatusCode::BAD_REQUEST, no_cache(), &body)
}

fn no_cache() -> HeaderMap {
    reply::headers([
        (
            "cache-control",
            "no-cache, no-store, max-age=0, must-revalidate",
        ),
        ("pragma", "no-cache"),
    ])
}

/// `POST /token`.
pub(crate) async fn token(
    State(sim): State<Sim>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some(GRANT_TYPE) {
        let body =
            json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "});
        return reply::json(StatusCode::BAD_REQUEST, no_cache(), &body);
    }
    let Some(assertion) = get("assertion") else {
        return invalid_grant("Invalid JWT: missing assertion");
    };
    let audience = format!(
        "http://{}{}",
        header(&headers, "host").unwrap_or_default(),
        uri.path()
    );
    let claims = match verify(&sim, assertion, &audience) {
        Ok(claims) => claims,
        Err(description) => return invalid_grant(description),
    };
    if claims.iss.is_empty()
        || claims
            .scope
            .as_deref()
            .is_none_or(|s| !s.split(' ').any(|x| x == SCOPE))
    {
        return invalid_grant("Invalid JWT: iss and a cloud-platform scope are required");
    }
    let token = format!("ya29.sim-{}", ids::alnum(48));
    let ttl = sim.config.google_token_ttl;
    sim.cloud
        .add_google_token(token.clone(), SystemTime::now() + ttl);
    let body = json!({"access_token": token, "expires_in": ttl.as_secs(), "token_type": "Bearer"});
    reply::json(StatusCode::OK, no_cache(), &body)
}

/// Checks the signature (when a public key is configured), the audience and the times.
fn verify(sim: &Sim, assertion: &str, audience: &str) -> Result<Claims, &'static str> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| "Invalid JWT: malformed")?;
    if header.alg != Algorithm::RS256 {
        return Err("Invalid JWT: only RS256 is accepted");
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    validation.leeway = 60;
    let claims: Claims = match &sim.config.google_service_account_public_key_pem {
        Some(pem) => {
            let key = DecodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|_| "Simulator key is not an RSA public key")?;
            jsonwebtoken::decode::<Claims>(assertion, &key, &validation)
                .map_err(|e| match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => "Invalid JWT Signature.",
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
                    jsonwebtoken::errors::ErrorKind::InvalidAudience => "Invalid JWT: audience mismatch",
                    _ => "Invalid JWT: malformed",
                })?
                .claims
        }
        None => {
            let claims = jsonwebtoken::dangerous::insecure_decode::<Claims>(assertion)
                .map_err(|_| "Invalid JWT: malformed")?
                .claims;
            if claims.aud != audience {
                return Err("Invalid JWT: audience mismatch");
            }
            claims
        }
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    if claims.exp <= now
        || claims.iat > now + 60
        || claims.exp.saturating_sub(claims.iat) > MAX_LIFETIME
    {
        return Err(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        );
    }
    Ok(claims)
}
