//! The web UI over HTTP, as a browser without JavaScript would use it: sign-in, session
//! cookie, CSRF checks, read-only members, forms that change what the JSON API reports,
//! connection validation explained per model, invocations and usage with the API's
//! visibility rules, and the security headers. On both store back ends.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use switchboard_sim::SimConfig;

use crate::gateway::Gateway;
use crate::harness::{CANARY, Server, backends};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
const ADMIN_PASSWORD: &str = "admin-password-1";
const MEMBER_PASSWORD: &str = "member-password-1";

/// A cookie-keeping client that does not follow redirects, so tests see each step.
pub(crate) struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The CSRF token of the first form on the page.
    pub(crate) fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a csrf field") + marker.len();
        let end = self.body[start..].find('"').expect("closing quote");
        self.body[start..start + end].to_owned()
    }

    pub(crate) fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

impl Browser {
    pub(crate) fn new(server: &Server) -> Self {
        Self {
            base: server.base_url.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
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
    pub(crate) async fn sign_in(&mut self, email: &str, password: &str) -> Page {
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
    pub(crate) async fn csrf(&mut self) -> String {
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

/// A user with a password in the gateway's organization (its own users have none); returns
/// the user's id and API token.
fn ui_user(gateway: &Gateway, email: &str, role: &str, password: &str) -> (String, String) {
    let created = gateway.server.cli_json(&[
        "user",
        "create",
        "--org",
        &gateway.org.name,
        "--email",
        email,
        "--role",
        role,
        "--password",
        password,
    ]);
    (
        created["user"]["id"].as_str().expect("id").to_owned(),
        created["token"].as_str().expect("token").to_owned(),
    )
}

/// The `<tr data-provider="…">` row of the AI tab, as text.
fn provider_row<'a>(page: &'a Page, provider: &str) -> &'a str {
    let start = page
        .body
        .find(&format!("<tr data-provider=\"{provider}\">"))
        .expect("the provider's row");
    let end = page.body[start..].find("</tr>").expect("row end");
    &page.body[start..start + end]
}

/// The openai form with its catalog model enabled, optionally validating.
async fn post_openai_form(browser: &mut Browser, csrf: &str, validate: bool) -> Page {
    let mut form = vec![
        ("csrf", csrf),
        ("apiKeySecretName", "openai-key"),
        ("enabled", "true"),
        ("model_listed", "gpt-5"),
        ("model_enabled", "gpt-5"),
    ];
    if validate {
        form.push(("validate", "true"));
    }
    browser.post("/providers/openai", &form).await
}

#[tokio::test]
async fn validation_results_are_explained_and_kept() {
    for backend in backends() {
        // This simulator takes one OpenAI key, so the organization's key is refused.
        let sim = SimConfig {
            openai_key: Some("sk-the-right-key".into()),
            ..SimConfig::default()
        };
        let gateway = Gateway::start_with(backend, sim, Vec::new()).await;
        ui_user(&gateway, "ui-admin@acme.test", "admin", ADMIN_PASSWORD);
        let mut browser = Browser::new(&gateway.server);
        browser.sign_in("ui-admin@acme.test", ADMIN_PASSWORD).await;
        let csrf = browser.csrf().await;
        let before = browser.get("/settings/ai").await;
        assert!(provider_row(&before, "openai").contains("not validated"));
        let form = browser.get("/providers/openai").await;
        assert!(form.body.contains("id=\"validate-provider\""));

        let refused = post_openai_form(&mut browser, &csrf, true).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.body.contains("id=\"form-error\""));
        assert!(refused.body.contains("Connection test failed"));
        assert!(
            refused
                .body
                .contains("<li data-model=\"gpt-5\" class=\"fail\">"),
            "{}",
            refused.body
        );
        assert!(refused.body.contains("Invalid API key"));
        // Kept although nothing was saved, and shown on the AI tab with its time.
        let tab = browser.get("/settings/ai").await;
        let row = provider_row(&tab, "openai");
        assert!(row.contains("failed: 1 of 1 models"), "{row}");
        assert!(row.contains("Invalid API key"), "{row}");
        assert!(row.contains("<time datetime=\"20"), "{row}");
        let audit = gateway
            .server
            .get("/v1/audit-log", &gateway.org.admin)
            .await
            .expect(200);
        let updates =
            audit.result().as_array().unwrap().iter().filter(|e| {
                e["action"] == "provider.update" && e["resource"] == "llm-provider:openai"
            });
        assert_eq!(updates.count(), 0, "a refused validation saves nothing");

        // The right key: every model answers, the provider is saved, the result replaced.
        gateway
            .server
            .patch(
                "/v1/organization/secrets/openai-key",
                &gateway.org.admin,
                json!({ "secretValue": "sk-the-right-key" }),
            )
            .await
            .expect(200);
        let passed = post_openai_form(&mut browser, &csrf, true).await;
        assert_eq!(passed.status, StatusCode::SEE_OTHER, "{}", passed.body);
        assert_eq!(
            passed.location(),
            "/providers/openai?done=provider-validated"
        );
        let page = browser.get(passed.location()).await;
        assert!(page.body.contains("id=\"last-validation\""));
        assert!(page.body.contains("✓ passed"));
        assert!(
            page.body
                .contains("<li data-model=\"gpt-5\" class=\"pass\">")
        );
        let tab = browser.get("/settings/ai").await;
        assert!(provider_row(&tab, "openai").contains("✓ passed"));
        // A plain save does not test anything and keeps the last result.
        let saved = post_openai_form(&mut browser, &csrf, false).await;
        assert_eq!(saved.location(), "/providers/openai?done=provider-saved");
        gateway.server.stop();
    }
}

/// Waits until the recorder has written the invocation.
async fn recorded(gateway: &Gateway, id: &str) {
    for _ in 0..100 {
        let path = format!("/v1/ai/invocations/{id}");
        if gateway.server.get(&path, &gateway.org.admin).await.status == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("invocation {id} was never recorded");
}

/// One chat completion with `token`; returns its invocation id once recorded.
async fn chat(gateway: &Gateway, token: &str, prompt: &str) -> String {
    let body = json!({ "provider": "openai", "model": "gpt-5",
        "messages": [{ "role": "user", "content": prompt }] });
    let response = reqwest::Client::new()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-switchboard-invocation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    recorded(gateway, &id).await;
    id
}

fn count(page: &Page, needle: &str) -> usize {
    page.body.matches(needle).count()
}

#[tokio::test]
async fn invocations_and_usage_follow_the_api_visibility() {
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        ui_user(&gateway, "ui-admin@acme.test", "admin", ADMIN_PASSWORD);
        let (member_id, member_token) =
            ui_user(&gateway, "ui-member@acme.test", "member", MEMBER_PASSWORD);
        let kept = chat(&gateway, &member_token, "<b>the member asks</b>").await;
        gateway.keep_no_content().await;
        let unkept = chat(&gateway, &gateway.org.admin, "the admin asks").await;

        let mut admin = Browser::new(&gateway.server);
        admin.sign_in("ui-admin@acme.test", ADMIN_PASSWORD).await;
        let all = admin.get("/invocations").await;
        assert_eq!(all.status, StatusCode::OK);
        assert_eq!(count(&all, "<tr data-invocation"), 2, "{}", all.body);
        assert!(all.body.contains("ui-member@acme.test"));
        assert!(all.body.contains("id=\"filter-user\""));
        let own = admin.get(&format!("/invocations?user={member_id}")).await;
        assert_eq!(count(&own, "<tr data-invocation"), 1);
        let failed = admin
            .get("/invocations?status=Failed&provider=openai")
            .await;
        assert!(failed.body.contains("id=\"no-invocations\""));
        let by_model = admin.get("/invocations?model=gpt-5&status=Completed").await;
        assert_eq!(count(&by_model, "<tr data-invocation"), 2);
        let bad = admin.get("/invocations?provider=nope").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);

        let detail = admin.get(&format!("/invocations/{kept}")).await;
        assert_eq!(detail.status, StatusCode::OK);
        assert!(
            detail.body.contains("&#60;b&#62;the member asks"),
            "the stored prompt, escaped: {}",
            detail.body
        );
        assert!(!detail.body.contains("<b>the member asks"));
        assert!(detail.body.contains("id=\"content-response\""));
        let without = admin.get(&format!("/invocations/{unkept}")).await;
        assert!(without.body.contains("id=\"content-not-stored\""));

        let usage = admin.get("/usage?window=7d").await;
        assert_eq!(usage.status, StatusCode::OK);
        assert!(usage.body.contains("<svg id=\"usage-chart\""));
        assert!(usage.body.contains("data-usage=\"openai/gpt-5\""));
        assert!(usage.body.contains("openai / gpt-5: 2 requests, 0 failed"));
        assert!(!usage.body.contains("<script>"));

        let mut member = Browser::new(&gateway.server);
        member.sign_in("ui-member@acme.test", MEMBER_PASSWORD).await;
        let mine = member.get("/invocations").await;
        assert_eq!(count(&mine, "<tr data-invocation"), 1);
        assert!(!mine.body.contains("id=\"filter-user\""));
        // A user filter naming someone else changes nothing for a member.
        let admin_id = gateway.server.cli_json(&[
            "user",
            "create",
            "--org",
            "acme",
            "--email",
            "other@acme.test",
            "--role",
            "admin",
        ])["user"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let forced = member.get(&format!("/invocations?user={admin_id}")).await;
        assert_eq!(count(&forced, "<tr data-invocation"), 1);
        let hidden = member.get(&format!("/invocations/{unkept}")).await;
        assert_eq!(hidden.status, StatusCode::NOT_FOUND);
        assert_eq!(
            member.get(&format!("/invocations/{kept}")).await.status,
            StatusCode::OK
        );
        let member_usage = member.get("/usage").await;
        assert!(
            member_usage
                .body
                .contains("openai / gpt-5: 1 requests, 0 failed")
        );
        gateway.server.stop();
    }
}
