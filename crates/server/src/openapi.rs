//! The OpenAPI 3.1 description of the HTTP API, served at `/openapi.json` and printed by
//! `switchboard openapi`. Kept as a reviewed JSON document; a test checks that it describes
//! every route the router serves.

pub const DOCUMENT: &str = include_str!("openapi.json");
