//! The identity lifecycle over HTTP and the CLI, on both back ends: who may list, change and
//! delete users and list, create and revoke tokens (member / admin / other organization);
//! revocation, expiry, disabling and role changes failing the very next request (on one
//! process, and across two replicas on PostgreSQL); the last-admin rule; audit entries;
//! token values shown once and never again; a deleted user's records kept.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_core::records::Timestamp;

use crate::gateway::Gateway;
use crate::harness::{Backend, Server, TestOrg, backends};
use crate::interactions::{chat, database_contains, raw_exec, stored_record};
use crate::ui::Browser;

/// The id of the user with `email`, as the admin's `GET /v1/users` lists it.
async fn user_id(server: &Server, admin: &str, email: &str) -> String {
    let users = server.get("/v1/users", admin).await.expect(200);
    users
        .result()
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .and_then(|u| u["id"].as_str())
        .unwrap_or_else(|| panic!("no user {email}: {}", users.json))
        .to_owned()
}

/// Creates a token through the API with `body`; returns (id, value). The value may never
/// be shown again, anywhere.
async fn new_token(server: &Server, token: &str, body: Value) -> (String, String) {
    let created = server.post("/v1/tokens", token, body).await.expect(201);
    let value = created.json["token"].as_str().unwrap().to_owned();
    server.never_show(&value);
    let id = created.result()["id"].as_str().unwrap().to_owned();
    assert!(value.starts_with(created.result()["prefix"].as_str().unwrap()));
    (id, value)
}

fn token_ids(listing: &Value) -> Vec<String> {
    listing["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn audit(server: &Server, admin: &str) -> Vec<Value> {
    let page = server
        .get("/v1/audit-log?limit=200", admin)
        .await
        .expect(200);
    page.result().as_array().unwrap().clone()
}

fn denied<'a>(entries: &'a [Value], action: &str) -> Vec<&'a Value> {
    entries
        .iter()
        .filter(|e| e["action"] == action && e["status"] == "denied")
        .collect()
}

/// Polls `path` with `token` until it answers `status`; how long that took.
async fn until_status(server: &Server, path: &str, token: &str, status: u16) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if server.get(path, token).await.status.as_u16() == status {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{path} never answered {status}");
}

fn orgs(server: &Server) -> (TestOrg, TestOrg) {
    (server.org("acme"), server.org("other"))
}

#[tokio::test]
async fn user_routes_permission_matrix() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let (acme, other) = orgs(&server);
        let member = user_id(&server, &acme.admin, "member@acme.test").await;
        let one = format!("/v1/users/{member}");
        let routes = [
            (Method::GET, "/v1/users".to_owned(), None),
            (Method::GET, one.clone(), None),
            (Method::PATCH, one.clone(), Some(json!({ "role": "admin" }))),
            (Method::DELETE, one.clone(), None),
        ];
        for (method, path, body) in &routes {
            server
                .call(method.clone(), path, Some(&acme.member), body.as_ref())
                .await
                .expect_error(403, "llm_provider_manage_forbidden");
            server
                .call(method.clone(), path, None, body.as_ref())
                .await
                .expect_error(401, "unauthorized");
        }
        let entries = audit(&server, &acme.admin).await;
        for action in ["user.list", "user.read", "user.update", "user.delete"] {
            assert_eq!(denied(&entries, action).len(), 1, "{action}");
        }

        // Another organization's admin sees only their own users; ours are 404 there.
        let theirs = server.get("/v1/users", &other.admin).await.expect(200);
        let emails: Vec<&str> = theirs
            .result()
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap())
            .collect();
        assert_eq!(emails, ["admin@other.test", "member@other.test"]);
        for (method, path, body) in routes.iter().skip(1) {
            server
                .call(method.clone(), path, Some(&other.admin), body.as_ref())
                .await
                .expect_error(404, "not_found");
        }

        // The admin reads, changes and deletes.
        let listed = server.get("/v1/users", &acme.admin).await.expect(200);
        assert_eq!(listed.json["nextCursor"], Value::Null);
        let first = &listed.result()[0];
        assert_eq!(first["email"], "admin@acme.test");
        assert_eq!(first["disabled"], false);
        assert!(first.get("token").is_none() && first.get("clientSecret").is_none());
        let read = server.get(&one, &acme.admin).await.expect(200);
        assert_eq!(
            (&read.result()["role"], &read.result()["disabled"]),
            (&json!("member"), &json!(false))
        );
        let changed = server
            .patch(
                &one,
                &acme.admin,
                json!({ "role": "admin", "disabled": true }),
            )
            .await
            .expect(200);
        assert_eq!(
            (&changed.result()["role"], &changed.result()["disabled"]),
            (&json!("admin"), &json!(true))
        );
        for bad in [
            json!({}),
            json!({ "roles": "admin" }),
            json!({ "role": "owner" }),
            json!({ "disabled": "yes" }),
        ] {
            server
                .patch(&one, &acme.admin, bad)
                .await
                .expect_error(400, "invalid_request");
        }
        server
            .get("/v1/users/not-a-user-id", &acme.admin)
            .await
            .expect_error(404, "not_found");
        server.delete(&one, &acme.admin).await.expect(200);
        server
            .get(&one, &acme.admin)
            .await
            .expect_error(404, "not_found");
        server
            .delete(&one, &acme.admin)
            .await
            .expect_error(404, "not_found");
        server
            .get("/v1/llm-providers", &acme.member)
            .await
            .expect_error(401, "unauthorized");
        server.stop();
    }
}

#[tokio::test]
async fn token_routes_permission_matrix() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let (acme, other) = orgs(&server);
        server.never_show(&acme.admin);
        server.never_show(&acme.member);
        let admin_id = user_id(&server, &acme.admin, "admin@acme.test").await;
        let member_id = user_id(&server, &acme.admin, "member@acme.test").await;
        let foreign_member = user_id(&server, &other.admin, "member@other.test").await;

        // Everyone creates and lists their own tokens; values are never listed.
        let (member_token, member_value) =
            new_token(&server, &acme.member, json!({ "name": "laptop" })).await;
        let own = server.get("/v1/tokens", &acme.member).await.expect(200);
        let ids = token_ids(&own.json);
        assert_eq!(ids.len(), 2, "the token from user creation and the new one");
        assert_eq!(ids[0], member_token, "newest first");
        let listed = &own.result()[0];
        assert_eq!(listed["name"], "laptop");
        assert_eq!(listed["expiresAt"], Value::Null);
        assert_eq!(listed["kind"], "api");
        assert!(listed["prefix"].as_str().unwrap().starts_with("sb_"));
        assert!(listed.get("token").is_none());
        server
            .get(&format!("/v1/tokens?userId={member_id}"), &acme.member)
            .await
            .expect(200);

        // Only admins list someone else's, and only within their organization.
        server
            .get(&format!("/v1/tokens?userId={admin_id}"), &acme.member)
            .await
            .expect_error(403, "llm_provider_manage_forbidden");
        let by_admin = server
            .get(&format!("/v1/tokens?userId={member_id}"), &acme.admin)
            .await
            .expect(200);
        assert_eq!(token_ids(&by_admin.json), ids);
        server
            .get(&format!("/v1/tokens?userId={foreign_member}"), &acme.admin)
            .await
            .expect_error(404, "not_found");
        server
            .get(&format!("/v1/tokens?userId={member_id}"), &other.admin)
            .await
            .expect_error(404, "not_found");

        // Revocation: the owner or an admin of the organization; others get 404.
        let admin_tokens = token_ids(&server.get("/v1/tokens", &acme.admin).await.expect(200).json);
        let admin_token = &admin_tokens[0];
        server
            .delete(&format!("/v1/tokens/{admin_token}"), &acme.member)
            .await
            .expect_error(404, "not_found");
        server
            .delete(&format!("/v1/tokens/{member_token}"), &other.admin)
            .await
            .expect_error(404, "not_found");
        server
            .get("/v1/llm-providers", &acme.admin)
            .await
            .expect(200);
        server
            .get("/v1/llm-providers", &member_value)
            .await
            .expect(200);
        server
            .delete(&format!("/v1/tokens/{member_token}"), &acme.member)
            .await
            .expect(200);
        server
            .get("/v1/llm-providers", &member_value)
            .await
            .expect_error(401, "unauthorized");
        server
            .delete(&format!("/v1/tokens/{member_token}"), &acme.member)
            .await
            .expect_error(404, "not_found");
        let (second, second_value) = new_token(&server, &acme.member, json!({})).await;
        server
            .delete(&format!("/v1/tokens/{second}"), &acme.admin)
            .await
            .expect(200);
        server.get("/v1/models", &second_value).await.expect(401);

        // Input rules; an empty body is a plain token.
        for bad in [
            json!({ "expiresInDays": 0 }),
            json!({ "expiresInDays": 366 }),
            json!({ "name": "x".repeat(101) }),
            json!({ "nmae": "typo" }),
        ] {
            server
                .post("/v1/tokens", &acme.member, bad)
                .await
                .expect_error(400, "invalid_request");
        }
        let bare = server
            .send(
                server
                    .request(Method::POST, "/v1/tokens")
                    .bearer_auth(&acme.member),
            )
            .await
            .expect(201);
        server.never_show(bare.json["token"].as_str().unwrap());
        for (method, path) in [
            (Method::GET, "/v1/tokens"),
            (Method::POST, "/v1/tokens"),
            (Method::DELETE, "/v1/tokens/x"),
        ] {
            server
                .call(method, path, None, None)
                .await
                .expect_error(401, "unauthorized");
        }

        // Who did what, never a token value (the harness checks every response, the audit
        // log included, and the server log at stop); the database holds only hashes.
        let entries = audit(&server, &acme.admin).await;
        assert_eq!(denied(&entries, "token.list").len(), 1);
        let refused = denied(&entries, "token.revoke");
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0]["actor"], "member@acme.test");
        let revokes: Vec<&Value> = entries
            .iter()
            .filter(|e| e["action"] == "token.revoke" && e["status"] == "success")
            .collect();
        assert_eq!(revokes.len(), 2);
        assert_eq!(revokes[0]["actor"], "admin@acme.test");
        assert_eq!(revokes[0]["resource"], "user:member@acme.test");
        assert_eq!(revokes[0]["details"]["before"]["tokenId"], second.as_str());
        let created = entries
            .iter()
            .find(|e| e["action"] == "token.create" && e["details"]["after"]["name"] == "laptop")
            .unwrap();
        assert_eq!(created["actor"], "member@acme.test");
        assert!(!database_contains(&server, &member_value).await);
        server.stop();
    }
}

#[tokio::test]
async fn revoked_and_expired_tokens_fail_the_next_request() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let acme = server.org("acme");
        let (id, value) = new_token(&server, &acme.admin, json!({ "name": "ci" })).await;
        for _ in 0..2 {
            server.get("/v1/llm-providers", &value).await.expect(200);
            server.get("/v1/models", &value).await.expect(200);
        }
        // Its last use is recorded off the request path.
        let started = Instant::now();
        loop {
            let list = server.get("/v1/tokens", &acme.admin).await.expect(200);
            let mine = list
                .result()
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["id"] == id.as_str())
                .unwrap()
                .clone();
            if mine["lastUsedAt"].is_string() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "lastUsedAt never set: {mine}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
            .delete(&format!("/v1/tokens/{id}"), &acme.admin)
            .await
            .expect(200);
        server
            .get("/v1/llm-providers", &value)
            .await
            .expect_error(401, "unauthorized");
        server.get("/v1/models", &value).await.expect(401);

        // Revoked with the CLI (another process): refused within the poll interval.
        let issued = server.cli_json(&[
            "token",
            "create",
            "--org",
            "acme",
            "--email",
            "member@acme.test",
            "--name",
            "cli",
        ]);
        let cli_value = issued["token"].as_str().unwrap().to_owned();
        server.never_show(&cli_value);
        let cli_id = issued["id"].as_str().unwrap().to_owned();
        assert_eq!(issued["result"]["name"], "cli");
        server.get("/v1/models", &cli_value).await.expect(200);
        let revoked = server.cli_json(&["token", "revoke", "--org", "acme", "--id", &cli_id]);
        assert_eq!(revoked["revoked"]["id"], cli_id.as_str());
        assert!(
            until_status(&server, "/v1/models", &cli_value, 401).await < Duration::from_secs(1)
        );
        assert!(
            !server
                .cli(&["token", "revoke", "--org", "acme", "--id", &cli_id])
                .status
                .success()
        );
        assert!(
            !server
                .cli(&["token", "revoke", "--org", "other", "--id", &cli_id])
                .status
                .success()
        );

        // Expiry: a day from creation; a token cached before its expiry is refused after it.
        let (short, short_value) =
            new_token(&server, &acme.member, json!({ "expiresInDays": 1 })).await;
        let listed = server.get("/v1/tokens", &acme.member).await.expect(200);
        let meta = listed
            .result()
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == short.as_str())
            .unwrap()
            .clone();
        let at = |key: &str| {
            Timestamp::parse(meta[key].as_str().unwrap())
                .unwrap()
                .unix_seconds()
        };
        assert_eq!(at("expiresAt") - at("createdAt"), 86_400);
        let soon = Timestamp::from_datetime(
            Timestamp::now().datetime() + time::Duration::milliseconds(1500),
        );
        let sql = match server.backend {
            Backend::Sqlite => {
                "UPDATE api_tokens SET expires_at = ?1 WHERE kind = 'api' AND expires_at IS NOT NULL"
            }
            Backend::Postgres => {
                "UPDATE api_tokens SET expires_at = $1 WHERE kind = 'api' AND expires_at IS NOT NULL"
            }
        };
        assert_eq!(raw_exec(&server, sql, &soon.to_string()).await, 1);
        server.get("/v1/models", &short_value).await.expect(200);
        server
            .get("/v1/llm-providers", &short_value)
            .await
            .expect(200);
        tokio::time::sleep(Duration::from_millis(1600)).await;
        server.get("/v1/models", &short_value).await.expect(401);
        server
            .get("/v1/llm-providers", &short_value)
            .await
            .expect_error(401, "unauthorized");
        let listed = server.get("/v1/tokens", &acme.member).await.expect(200);
        assert!(
            token_ids(&listed.json).contains(&short),
            "an expired token stays listed"
        );
        server.stop();
    }
}

#[tokio::test]
async fn role_changes_and_disabling_apply_to_the_next_request() {
    const PASSWORD: &str = "dev-password-1";
    for backend in backends() {
        let server = Server::start(backend).await;
        let acme = server.org("acme");
        let dev = server.cli_json(&[
            "user",
            "create",
            "--org",
            "acme",
            "--email",
            "dev@acme.test",
            "--role",
            "member",
            "--password",
            PASSWORD,
        ]);
        let token = dev["token"].as_str().unwrap().to_owned();
        server.never_show(&token);
        let dev_id = dev["user"]["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/users/{dev_id}");
        let write = || {
            server.put(
                "/v1/organization/ai-settings",
                &token,
                json!({ "retentionDays": 7 }),
            )
        };

        write()
            .await
            .expect_error(403, "llm_provider_manage_forbidden");
        server
            .patch(&path, &acme.admin, json!({ "role": "admin" }))
            .await
            .expect(200);
        write().await.expect(200);
        write().await.expect(200);
        server
            .patch(&path, &acme.admin, json!({ "role": "member" }))
            .await
            .expect(200);
        write()
            .await
            .expect_error(403, "llm_provider_manage_forbidden");

        // Disabled: the API token, the web UI session, sign-in and client credentials.
        let mut browser = Browser::new(&server);
        browser.sign_in("dev@acme.test", PASSWORD).await;
        assert_eq!(browser.get("/tokens").await.status, 200);
        assert_eq!(
            browser.get("/users").await.status,
            403,
            "members have no Users page"
        );
        server
            .patch(&path, &acme.admin, json!({ "disabled": true }))
            .await
            .expect(200);
        server
            .get("/v1/llm-providers", &token)
            .await
            .expect_error(401, "unauthorized");
        let page = browser.get("/tokens").await;
        assert_eq!(page.status, 303);
        assert!(page.location().starts_with("/login"), "{}", page.location());
        let form = browser.get("/login").await;
        let csrf = form.csrf();
        let refused = browser
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("email", "dev@acme.test"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(refused.status, 401);
        let exchange = json!({ "clientId": dev["clientId"], "clientSecret": dev["clientSecret"] });
        server
            .call(Method::POST, "/v1/auth/access_token", None, Some(&exchange))
            .await
            .expect_error(401, "unauthorized");
        server
            .patch(&path, &acme.admin, json!({ "disabled": false }))
            .await
            .expect(200);
        server.get("/v1/llm-providers", &token).await.expect(200);

        // The CLI changes users too; running servers notice within the poll interval.
        let out = server.cli_json(&[
            "user",
            "update",
            "--org",
            "acme",
            "--email",
            "dev@acme.test",
            "--disabled",
            "true",
        ]);
        assert_eq!(out["user"]["disabled"], true);
        assert!(
            until_status(&server, "/v1/llm-providers", &token, 401).await < Duration::from_secs(1)
        );
        server.cli_json(&[
            "user",
            "update",
            "--org",
            "acme",
            "--email",
            "dev@acme.test",
            "--disabled",
            "false",
            "--role",
            "admin",
        ]);
        until_status(&server, "/v1/llm-providers", &token, 200).await;
        write().await.expect(200);
        assert!(
            !server
                .cli(&[
                    "user",
                    "update",
                    "--org",
                    "acme",
                    "--email",
                    "dev@acme.test"
                ])
                .status
                .success()
        );

        let entries = audit(&server, &acme.admin).await;
        let updates: Vec<&Value> = entries
            .iter()
            .filter(|e| e["action"] == "user.update")
            .collect();
        assert_eq!(updates.len(), 6, "four by the admin, two by the CLI");
        assert_eq!(updates[0]["actor"], "cli");
        assert_eq!(updates[0]["resource"], "user:dev@acme.test");
        let disabling = updates
            .iter()
            .find(|e| e["actor"] == "admin@acme.test" && e["details"]["after"]["disabled"] == true)
            .unwrap();
        assert_eq!(disabling["details"]["before"]["disabled"], false);
        server.stop();
    }
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted_disabled_or_deleted() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let acme = server.org("acme");
        let admin = format!(
            "/v1/users/{}",
            user_id(&server, &acme.admin, "admin@acme.test").await
        );
        let member = format!(
            "/v1/users/{}",
            user_id(&server, &acme.admin, "member@acme.test").await
        );
        for body in [json!({ "role": "member" }), json!({ "disabled": true })] {
            let refused = server
                .patch(&admin, &acme.admin, body)
                .await
                .expect_error(409, "conflict");
            assert_eq!(refused.json["details"]["reason"], "last_admin");
        }
        server
            .delete(&admin, &acme.admin)
            .await
            .expect_error(409, "conflict");
        let cli = server.cli(&[
            "user",
            "update",
            "--org",
            "acme",
            "--email",
            "admin@acme.test",
            "--role",
            "member",
        ]);
        assert!(!cli.status.success());
        assert!(String::from_utf8_lossy(&cli.stderr).contains("last active admin"));
        server.get("/v1/users", &acme.admin).await.expect(200);

        // With a second active admin the first may step down; then the second is the last.
        server
            .patch(&member, &acme.admin, json!({ "role": "admin" }))
            .await
            .expect(200);
        server
            .patch(&admin, &acme.admin, json!({ "role": "member" }))
            .await
            .expect(200);
        server
            .patch(&member, &acme.member, json!({ "disabled": true }))
            .await
            .expect_error(409, "conflict");
        server
            .delete(&member, &acme.member)
            .await
            .expect_error(409, "conflict");
        // The demoted admin lost their rights on the very next request.
        server
            .get("/v1/users", &acme.admin)
            .await
            .expect_error(403, "llm_provider_manage_forbidden");
        server.delete(&admin, &acme.member).await.expect(200);
        let entries = audit(&server, &acme.member).await;
        let deleted = entries
            .iter()
            .find(|e| e["action"] == "user.delete")
            .unwrap();
        assert_eq!(deleted["actor"], "member@acme.test");
        assert_eq!(deleted["resource"], "user:admin@acme.test");
        assert_eq!(deleted["details"]["before"]["role"], "member");
        assert_eq!(
            server
                .cli(&["audit", "verify", "--org", "acme"])
                .status
                .code(),
            Some(0)
        );
        server.stop();
    }
}

#[tokio::test]
async fn a_deleted_users_records_stay_and_read_deleted_user() {
    const PASSWORD: &str = "boss-password-1";
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        let server = &gateway.server;
        let org = &gateway.org;
        server.cli_json(&[
            "user",
            "create",
            "--org",
            "acme",
            "--email",
            "boss@acme.test",
            "--role",
            "admin",
            "--password",
            PASSWORD,
        ]);
        let member = user_id(server, &org.admin, "member@acme.test").await;
        let id = chat(&gateway, &org.member, "openai", "hello from a leaver").await;
        assert_eq!(
            stored_record(server, &org.admin, &id).await["userId"],
            member.as_str()
        );
        server
            .delete(&format!("/v1/users/{member}"), &org.admin)
            .await
            .expect(200);
        let kept = server
            .get(&format!("/v1/ai/invocations/{id}"), &org.admin)
            .await
            .expect(200);
        assert_eq!(
            kept.result()["userId"],
            member.as_str(),
            "the record keeps the user id"
        );

        let mut browser = Browser::new(server);
        browser.sign_in("boss@acme.test", PASSWORD).await;
        let list = browser.get("/invocations").await;
        assert_eq!(list.status, 200);
        assert!(list.body.contains("deleted user"), "{}", list.body);
        let detail = browser.get(&format!("/invocations/{id}")).await;
        assert!(detail.body.contains("deleted user"));
        gateway.server.stop();
    }
}

#[tokio::test]
async fn a_revocation_on_one_replica_is_refused_on_another_within_a_second() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipping: replicas share a PostgreSQL database");
        return;
    }
    let a = Server::start(Backend::Postgres).await;
    let acme = a.org("acme");
    let b = a.replica();
    let (id, value) = new_token(&a, &acme.admin, json!({ "name": "shared" })).await;
    for _ in 0..3 {
        b.get("/v1/models", &value).await.expect(200);
        b.get("/v1/llm-providers", &value).await.expect(200);
    }
    a.delete(&format!("/v1/tokens/{id}"), &acme.admin)
        .await
        .expect(200);
    let took = until_status(&b, "/v1/models", &value, 401).await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    b.get("/v1/llm-providers", &value)
        .await
        .expect_error(401, "unauthorized");

    // Disabling a user and lowering a role reach the other replica the same way.
    let member = user_id(&a, &acme.admin, "member@acme.test").await;
    b.get("/v1/models", &acme.member).await.expect(200);
    a.patch(
        &format!("/v1/users/{member}"),
        &acme.admin,
        json!({ "disabled": true }),
    )
    .await
    .expect(200);
    assert!(until_status(&b, "/v1/models", &acme.member, 401).await < Duration::from_secs(1));
    a.patch(
        &format!("/v1/users/{member}"),
        &acme.admin,
        json!({ "disabled": false, "role": "admin" }),
    )
    .await
    .expect(200);
    until_status(&b, "/v1/users", &acme.member, 200).await;
    a.patch(
        &format!("/v1/users/{member}"),
        &acme.admin,
        json!({ "role": "member" }),
    )
    .await
    .expect(200);
    assert!(until_status(&b, "/v1/users", &acme.member, 403).await < Duration::from_secs(1));
    b.stop();
    a.stop();
}

#[tokio::test]
async fn the_web_ui_forms_take_effect_on_the_next_request() {
    const PASSWORD: &str = "boss-password-1";
    for backend in backends() {
        let server = Server::start(backend).await;
        let acme = server.org("acme");
        server.cli_json(&[
            "user",
            "create",
            "--org",
            "acme",
            "--email",
            "boss@acme.test",
            "--role",
            "admin",
            "--password",
            PASSWORD,
        ]);
        let mut browser = Browser::new(&server);
        browser.sign_in("boss@acme.test", PASSWORD).await;
        let csrf = browser.csrf().await;

        // Created through the form: the value is on the answering page, once.
        let created = browser
            .post(
                "/tokens",
                &[("csrf", &csrf), ("name", "from-ui"), ("expiresInDays", "7")],
            )
            .await;
        assert_eq!(created.status, 201);
        let marker = "id=\"new-token\" type=\"text\" readonly value=\"";
        let start = created
            .body
            .find(marker)
            .expect("the new token on the page")
            + marker.len();
        let value = created.body[start..].split('"').next().unwrap().to_owned();
        server.never_show(&value);
        server.get("/v1/llm-providers", &value).await.expect(200);
        let listing = browser.get("/tokens").await;
        assert!(!listing.body.contains(&value), "shown once");
        assert!(listing.body.contains("from-ui"));
        let boss = user_id(&server, &acme.admin, "boss@acme.test").await;
        let tokens = server
            .get(&format!("/v1/tokens?userId={boss}"), &acme.admin)
            .await
            .expect(200);
        let id = tokens
            .result()
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "from-ui")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();

        // A forged form is refused; the real one revokes, and the next request fails.
        let forged = browser
            .post(&format!("/tokens/{id}/revoke"), &[("csrf", "forged")])
            .await;
        assert_eq!(forged.status, 403);
        server.get("/v1/llm-providers", &value).await.expect(200);
        let revoked = browser
            .post(&format!("/tokens/{id}/revoke"), &[("csrf", &csrf)])
            .await;
        assert_eq!(
            (revoked.status.as_u16(), revoked.location()),
            (303, "/tokens?done=token-revoked")
        );
        server
            .get("/v1/llm-providers", &value)
            .await
            .expect_error(401, "unauthorized");

        // The Users page: disabling the member refuses their token at once; the last-admin
        // rule explains itself with 409.
        let member = user_id(&server, &acme.admin, "member@acme.test").await;
        server
            .get("/v1/llm-providers", &acme.member)
            .await
            .expect(200);
        let disabled = browser
            .post(
                &format!("/users/{member}/disabled"),
                &[("csrf", &csrf), ("disabled", "true")],
            )
            .await;
        assert_eq!(disabled.status, 303);
        server
            .get("/v1/llm-providers", &acme.member)
            .await
            .expect_error(401, "unauthorized");
        let users = browser.get("/users").await;
        assert!(users.body.contains("member@acme.test") && users.body.contains("disabled"));
        let admin = user_id(&server, &acme.admin, "admin@acme.test").await;
        browser
            .post(
                &format!("/users/{admin}/role"),
                &[("csrf", &csrf), ("role", "member")],
            )
            .await;
        let refused = browser
            .post(
                &format!("/users/{boss}/role"),
                &[("csrf", &csrf), ("role", "member")],
            )
            .await;
        assert_eq!(refused.status, 409);
        assert!(refused.body.contains("last active admin"));
        let deleted = browser
            .post(&format!("/users/{member}/delete"), &[("csrf", &csrf)])
            .await;
        assert_eq!(deleted.status, 303);
        server
            .get(&format!("/v1/users/{member}"), &acme.admin)
            .await
            .expect_error(403, "llm_provider_manage_forbidden");
        server.stop();
    }
}
