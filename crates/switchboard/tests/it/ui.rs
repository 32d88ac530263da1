//! The web UI over HTTP, as a browser without JavaScript would use it: sign-in, session
//! cookie, CSRF checks, read-only members, forms that change what the JSON API reports,
//! and the security headers. On both store back ends.

use std::collections::HashMap;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::Value;

use crate::harness::{CANARY, Server, backends};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
const ADMIN_PASSWORD: &str = "admin-password-1";
const MEMBER_PASSWORD: &str = "member-password-1";

/// A cookie-keeping client that does not follow redirects, so tests see each step.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The CSRF token of the first form on the page.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a csrf field") + marker.len();
        let end = self.body[start..].find('"').expect("closing quote");
        self.body[start..start + end].to_owned()
    }

    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

impl Browser {
    fn new(server: &Server) -> Self {
        Self {
            base: server.base_url.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(form));
        self.send(request).await
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let request = match cookie.is_empty() {
            true => request,
            false => request.header("cookie", cookie.join("; ")),
        };
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        for set in headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let pair = set.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                match value.is_empty() {
                    true => self.cookies.remove(name),
                    false => self.cookies.insert(name.to_owned(), value.to_owned()),
                };
            }
        }
        let body = response.text().await.expect("body");
        assert!(!body.contains(CANARY), "canary leaked into a page");
        Page {
            status,
            headers,
            body,
        }
    }

    /// Signs in through the form; returns the page the sign-in redirected to.
    async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.csrf();
        let done = self
            .post(
                "/login",
                &[("csrf", &csrf), ("email", email), ("password", password)],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        done
    }

    /// The CSRF token of the signed-in session, read from a page's forms.
    async fn csrf(&mut self) -> String {
        self.get("/settings/ai").await.csrf()
    }
}

/// `application/x-www-form-urlencoded`, as a browser sends it.
fn encode(form: &[(&str, &str)]) -> String {
    let part = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    form.iter()
        .map(|(k, v)| format!("{}={}", part(k), part(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An organization with an admin and a member who can sign in; returns the admin's token.
fn org_with_users(server: &Server, name: &str) -> (String, String, String) {
    let admin = format!("admin@{name}.test");
    let member = format!("member@{name}.test");
    let created = server.cli_json(&[
        "org",
        "create",
        name,
        "--admin-email",
        &admin,
        "--admin-password",
        ADMIN_PASSWORD,
    ]);
    server.cli_json(&[
        "user",
        "create",
        "--org",
        name,
        "--email",
        &member,
        "--role",
        "member",
        "--password",
        MEMBER_PASSWORD,
    ]);
    let token = created["token"].as_str().expect("token").to_owned();
    (admin, member, token)
}

#[tokio::test]
async fn sign_in_session_cookie_and_sign_out() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let (admin, _, _) = org_with_users(&server, "acme");
        let mut browser = Browser::new(&server);

        let root = browser.get("/").await;
        assert_eq!(root.status, StatusCode::SEE_OTHER);
        assert_eq!(root.location(), "/settings/ai");
        let anonymous = browser.get("/settings/ai").await;
        assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
        assert_eq!(anonymous.location(), "/login?next=%2Fsettings%2Fai");

        let login = browser.get("/login").await;
        assert_eq!(login.headers["content-security-policy"], CSP);
        assert_eq!(login.headers["x-content-type-options"], "nosniff");
        assert!(login.headers.contains_key("referrer-policy"));
        let wrong = browser
            .post(
                "/login",
                &[
                    ("csrf", &login.csrf()),
                    ("email", &admin),
                    ("password", "nope"),
                ],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(wrong.body.contains("email or password is incorrect"));
        assert!(!browser.cookies.contains_key("sb_session"));

        let signed_in = browser.sign_in(&admin, ADMIN_PASSWORD).await;
        assert_eq!(signed_in.location(), "/settings/ai");
        let cookie = signed_in.set_cookie("sb_session").expect("session cookie");
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(cookie.contains("Path=/;"), "{cookie}");
        assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");

        let page = browser.get("/settings/ai").await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.headers["content-security-policy"], CSP);
        assert_eq!(page.headers["cache-control"], "no-store");
        for id in [
            "default-provider",
            "default-model",
            "save-defaults",
            "providers",
            "logout",
        ] {
            assert!(page.body.contains(&format!("id=\"{id}\"")), "missing #{id}");
        }
        assert!(page.body.contains("<tr data-provider=\"managed\">"));
        assert!(
            !page.body.contains("<script>"),
            "no inline script under the CSP"
        );
        let session = browser.cookies["sb_session"].clone();

        let out = browser.post("/logout", &[("csrf", &page.csrf())]).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER);
        assert_eq!(out.location(), "/login");
        assert!(!browser.cookies.contains_key("sb_session"));
        // The old session is over on the server too, not just forgotten by the browser.
        browser.cookies.insert("sb_session".into(), session);
        let after = browser.get("/settings/ai").await;
        assert_eq!(after.status, StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn session_cookie_is_secure_behind_tls() {
    let server = Server::start(backends()[0]).await;
    let (admin, _, _) = org_with_users(&server, "acme");
    let mut browser = Browser::new(&server);
    let form = browser.get("/login").await;
    let request = browser
        .client
        .post(format!("{}/login", browser.base))
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[
            ("csrf", form.csrf().as_str()),
            ("email", &admin),
            ("password", ADMIN_PASSWORD),
        ]));
    let done = browser.send(request).await;
    let cookie = done.set_cookie("sb_session").expect("session cookie");
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}

#[tokio::test]
async fn every_post_needs_the_session_csrf_token() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let (admin, _, token) = org_with_users(&server, "acme");
        let mut browser = Browser::new(&server);

        // Sign-in itself: the double-submit token must match its cookie.
        let forged = browser
            .post("/login", &[("email", &admin), ("password", ADMIN_PASSWORD)])
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);

        browser.sign_in(&admin, ADMIN_PASSWORD).await;
        let change = [("provider", "managed"), ("model", "gpt-5")];
        let missing = browser.post("/settings/ai/defaults", &change).await;
        assert_eq!(missing.status, StatusCode::FORBIDDEN);
        let mut wrong = change.to_vec();
        wrong.push(("csrf", "0123456789abcdef"));
        let wrong = browser.post("/settings/ai/defaults", &wrong).await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN);
        let logout = browser.post("/logout", &[]).await;
        assert_eq!(logout.status, StatusCode::FORBIDDEN);

        let defaults = server
            .get("/v1/llm-providers/defaults", &token)
            .await
            .expect(200);
        assert_eq!(defaults.result()["source"], "system", "nothing changed");
        assert_eq!(
            browser.get("/settings/ai").await.status,
            StatusCode::OK,
            "still signed in"
        );
    }
}

#[tokio::test]
async fn members_see_pages_read_only_and_cannot_post() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let (_, member, token) = org_with_users(&server, "acme");
        let mut browser = Browser::new(&server);
        browser.sign_in(&member, MEMBER_PASSWORD).await;

        let page = browser.get("/settings/ai").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body
                .contains("id=\"default-provider\" name=\"provider\" disabled")
        );
        assert!(!page.body.contains("save-defaults"));
        assert!(!page.body.contains("action=\"/settings/ai/defaults\""));
        assert!(page.body.contains("id=\"logout\""));

        let csrf = page.csrf();
        let denied = browser
            .post(
                "/settings/ai/defaults",
                &[("csrf", &csrf), ("provider", "managed"), ("model", "gpt-5")],
            )
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        let connect = browser
            .post(
                "/providers/openai",
                &[("csrf", &csrf), ("apiKeySecretName", "k")],
            )
            .await;
        assert_eq!(connect.status, StatusCode::FORBIDDEN);
        assert_eq!(browser.get("/secrets").await.status, StatusCode::FORBIDDEN);
        assert_eq!(browser.get("/audit").await.status, StatusCode::FORBIDDEN);
        assert_eq!(
            browser.get("/providers/managed").await.status,
            StatusCode::OK
        );

        let defaults = server
            .get("/v1/llm-providers/defaults", &token)
            .await
            .expect(200);
        assert_eq!(defaults.result()["source"], "system");
        let audit = server.get("/v1/audit-log", &token).await.expect(200);
        let denied_update = audit.result().as_array().unwrap().iter().any(|e| {
            e["action"] == "defaults.update" && e["status"] == "denied" && e["actor"] == member
        });
        assert!(
            denied_update,
            "the member's attempt is audited: {}",
            audit.json
        );
    }
}

#[tokio::test]
async fn forms_change_what_the_api_reports() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let (admin, _, token) = org_with_users(&server, "acme");
        let mut browser = Browser::new(&server);
        browser.sign_in(&admin, ADMIN_PASSWORD).await;
        let csrf = browser.csrf().await;

        // A secret, whose value never comes back.
        let created = browser
            .post(
                "/secrets",
                &[
                    ("csrf", &csrf),
                    ("secretName", "openai-key"),
                    ("secretValue", CANARY),
                ],
            )
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let secrets = browser.get("/secrets").await;
        assert!(secrets.body.contains("openai-key"));

        // A provider through its form, then the defaults.
        let connected = browser
            .post(
                "/providers/openai",
                &[
                    ("csrf", &csrf),
                    ("apiKeySecretName", "openai-key"),
                    ("enabled", "true"),
                    ("model_listed", "gpt-5"),
                    ("model_enabled", "gpt-5"),
                ],
            )
            .await;
        assert_eq!(
            connected.status,
            StatusCode::SEE_OTHER,
            "{}",
            connected.body
        );
        let saved = browser
            .post(
                "/settings/ai/defaults",
                &[("csrf", &csrf), ("provider", "openai"), ("model", "gpt-5")],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let defaults = server
            .get("/v1/llm-providers/defaults", &token)
            .await
            .expect(200);
        assert_eq!(defaults.result()["provider"], "openai");
        assert_eq!(defaults.result()["model"], "gpt-5");
        assert_eq!(defaults.result()["source"], "organization");
        assert_eq!(defaults.result()["updatedBy"], Value::String(admin.clone()));
        let page = browser.get("/settings/ai").await;
        assert!(page.body.contains("<tr data-provider=\"openai\">"));
        assert!(page.body.contains("Chosen by your organization"));

        // A model the provider does not offer: explained inline, nothing stored.
        let refused = browser
            .post(
                "/settings/ai/defaults",
                &[("csrf", &csrf), ("provider", "openai"), ("model", "gpt-0")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(refused.body.contains("id=\"defaults-error\""));
        assert!(refused.body.contains("is not enabled for provider"));

        // A schema error from core, shown next to the form: a blocked egress address.
        let blocked = browser
            .post(
                "/providers/openai-compatible",
                &[
                    ("csrf", &csrf),
                    ("baseUrl", "https://127.0.0.1/v1"),
                    ("models", "local-model"),
                    ("enabled", "true"),
                ],
            )
            .await;
        assert_eq!(blocked.status, StatusCode::BAD_REQUEST);
        assert!(blocked.body.contains("id=\"form-error\""));
        assert!(
            blocked.body.contains("baseUrl is not allowed"),
            "{}",
            blocked.body
        );
        assert!(
            blocked.body.contains("value=\"https://127.0.0.1/v1\""),
            "keeps the input"
        );
        server
            .get("/v1/llm-providers/openai-compatible", &token)
            .await
            .expect(404);

        // Secrets in use cannot be deleted; data controls save.
        let in_use = browser
            .post("/secrets/openai-key/delete", &[("csrf", &csrf)])
            .await;
        assert_eq!(in_use.status, StatusCode::CONFLICT);
        let data = browser
            .post("/settings/data", &[("csrf", &csrf), ("retentionDays", "7")])
            .await;
        assert_eq!(data.status, StatusCode::SEE_OTHER, "{}", data.body);
        let settings = server
            .get("/v1/organization/ai-settings", &token)
            .await
            .expect(200);
        assert_eq!(settings.result()["retentionDays"], 7);
        assert_eq!(settings.result()["storeInteractionData"], false);
        let audit = browser.get("/audit").await;
        assert_eq!(audit.status, StatusCode::OK);
        assert!(audit.body.contains("defaults.update"));
    }
}

#[tokio::test]
async fn static_assets_are_served_from_the_binary() {
    let server = Server::start(backends()[0]).await;
    let mut browser = Browser::new(&server);
    let css = browser.get("/static/app.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let js = browser.get("/static/app.js").await;
    assert!(js.body.contains("default-provider"));
    assert_eq!(js.headers["x-content-type-options"], "nosniff");
    assert_eq!(
        browser.get("/static/nope.js").await.status,
        StatusCode::NOT_FOUND
    );
}
