//! One function per command.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;
use switchboard_core::{Role, SecretValue};
use switchboard_providers::EgressClient;
use switchboard_server::dataplane::Snapshots;
use switchboard_server::{AppState, bootstrap};
use switchboard_sim::SimConfig;
use switchboard_store::{Actor, Store, StoreError, TokenSpec, UserChange};
use tracing_subscriber::EnvFilter;

use crate::cli::{
    AuditCommand, Cli, Command, KeysCommand, MockArgs, OrgCommand, TokenCommand, UserCommand,
};
use crate::config::{self, Resolved};
use crate::keys;

/// How often the server looks for configuration written by the CLI or other replicas.
/// How often the allocator's free memory is checked (and returned after a burst).
const MEMORY_TRIM_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let settings = config::resolve(cli.settings)?;
    let serving = matches!(
        cli.command,
        Command::Serve | Command::Demo | Command::Mock(_)
    );
    let _log_guard = init_logging(settings.log.as_deref(), serving);
    crate::panic_log::install();
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Demo => demo(settings).await,
        Command::Mock(args) => mock(args).await,
        Command::Migrate => migrate(&settings).await,
        Command::Openapi => {
            println!("{}", switchboard_server::openapi::DOCUMENT);
            Ok(ExitCode::SUCCESS)
        }
        Command::Org(command) => org(&settings, command).await,
        Command::User(command) => user(&settings, command).await,
        Command::Token(command) => token(&settings, command).await,
        Command::Audit(command) => audit(&settings, command).await,
        Command::Keys(command) => rotate(&settings, command).await,
    }
}

/// JSON lines on stderr, written in batches by a background thread ([`crate::logwriter`]) so
/// that request threads never block on the terminal or a pipe, nor wake a thread per line. The server logs at `info` by default; one-shot commands
/// only warn, so their stdout stays clean for scripts. The returned guard flushes on drop.
fn init_logging(filter: Option<&str>, serving: bool) -> crate::logwriter::FlushGuard {
    let default = if serving { "info" } else { "warn" };
    let filter =
        EnvFilter::try_new(filter.unwrap_or(default)).unwrap_or_else(|_| EnvFilter::new(default));
    let (writer, guard) = crate::logwriter::batched(std::io::stderr());
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .init();
    guard
}

async fn open_store(settings: &Resolved) -> Result<Arc<dyn Store>> {
    let keys = keys::load(settings)?;
    switchboard_store::open(&settings.database_url, keys)
        .await
        .context("cannot open the database")
}

/// The server's store: every call made while serving has the database deadline.
async fn open_serving_store(settings: &Resolved) -> Result<Arc<dyn Store>> {
    let keys = keys::load(settings)?;
    let options = switchboard_store::StoreOptions {
        call_timeout: Some(settings.database_timeout),
    };
    switchboard_store::open_with(&settings.database_url, keys, options)
        .await
        .context("cannot open the database")
}

async fn serve(settings: Resolved) -> Result<ExitCode> {
    // First: a misconfigured exporter stops the start before anything else happens.
    let tracing =
        switchboard_telemetry::Tracing::from_env(settings.server.telemetry.capture_content)
            .context("cannot start OpenTelemetry tracing (check the OTEL_* variables)")?;
    let store = open_serving_store(&settings).await?;
    if let Some(first) = bootstrap::ensure_default_org(store.as_ref()).await? {
        println!("{}", first.banner());
    }
    let listener = tokio::net::TcpListener::bind(settings.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
    let addr = listener.local_addr()?;
    let ops = match settings.server.ops_listen {
        Some(ops_addr) => Some(
            tokio::net::TcpListener::bind(ops_addr)
                .await
                .with_context(|| format!("cannot listen on {ops_addr}"))?,
        ),
        None => None,
    };
    let ops_addr = ops.as_ref().map(|l| l.local_addr()).transpose()?;
    let snapshots = Snapshots::new(store.clone()).await?;
    snapshots.spawn_refresher(settings.config_poll);
    snapshots.spawn_listener();
    crate::memory::spawn_trimmer(MEMORY_TRIM_CHECK);
    let egress = EgressClient::new(settings.server.egress.clone(), settings.server.timeouts)
        .context("cannot build the outbound HTTP client")?;
    let ops_addr = ops_addr.map(|a| a.to_string());
    tracing::info!(%addr, ops_addr, backend = store.backend(), traces = tracing.is_some(), "listening");
    let state = AppState::new(store, snapshots, egress, settings.server, tracing)
        .context("cannot open the managed-provider limit counters")?;
    start_interactions(&state).await?;
    let listeners = switchboard_server::Listeners {
        main: listener,
        ops,
    };
    switchboard_server::serve(listeners, state.clone(), shutdown_signal()).await;
    drain_interactions(&state).await;
    if let Some(tracing) = &state.tracing {
        tracing.shutdown();
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Restores the managed-provider counters from stored records and starts the purge.
async fn start_interactions(state: &AppState) -> Result<()> {
    state
        .interactions
        .start(
            state.store.clone(),
            &state.settings.interactions,
            state.settings.max_retention_days,
        )
        .await
        .context("cannot restore managed-provider usage from invocation records")
}

/// After the last request finished: writes every queued invocation record.
async fn drain_interactions(state: &AppState) {
    const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);
    if tokio::time::timeout(DRAIN_LIMIT, state.interactions.shutdown())
        .await
        .is_err()
    {
        tracing::error!("invocation records were still queued after 30 s; some are lost");
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

/// `serve` with the provider simulator on loopback as the managed provider's upstream, so
/// every feature works offline.
async fn demo(mut settings: Resolved) -> Result<ExitCode> {
    let sim = switchboard_sim::start(SimConfig::default(), "127.0.0.1:0".parse()?)
        .await
        .context("cannot start the provider simulator")?;
    let base = sim.url();
    tracing::info!(url = %base, "provider simulator started");
    let upstream = &mut settings.server.upstream;
    upstream.openai_base_url = format!("{base}/v1");
    upstream.anthropic_base_url = base;
    upstream.managed_openai_key = Some(SecretValue::new("sk-demo-openai".into()));
    upstream.managed_anthropic_key = Some(SecretValue::new("sk-ant-demo".into()));
    settings.server.egress = settings
        .server
        .egress
        .with_allowed(&format!("{}/32", sim.addr.ip()), true)
        .context("cannot allow the simulator's address")?;
    let result = serve(settings).await;
    sim.shutdown().await;
    result
}

/// The provider simulator alone.
async fn mock(args: MockArgs) -> Result<ExitCode> {
    let config = SimConfig {
        openai_key: args.openai_key,
        anthropic_key: args.anthropic_key,
        azure_key: args.azure_key,
        latency: std::time::Duration::from_millis(args.latency_ms),
        chunk_delay: std::time::Duration::from_millis(args.chunk_delay_ms),
        chunks: args.chunks,
        aws_access_key_id: args.aws_access_key_id,
        aws_secret_access_key: args.aws_secret_access_key,
        bedrock_api_key: args.bedrock_api_key,
        google_service_account_public_key_pem: args
            .google_public_key_file
            .map(std::fs::read_to_string)
            .transpose()
            .context("cannot read --google-public-key-file")?,
        google_api_key: args.google_api_key,
        ..SimConfig::default()
    };
    let sim = switchboard_sim::start(
        config,
        args.listen.parse().context("--listen must be ADDR:PORT")?,
    )
    .await
    .context("cannot start the provider simulator")?;
    tracing::info!(addr = %sim.addr, "provider simulator listening");
    println!("provider simulator listening on {}", sim.url());
    shutdown_signal().await;
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn migrate(settings: &Resolved) -> Result<ExitCode> {
    let applied = switchboard_store::migrate(&settings.database_url).await?;
    println!("applied {applied} migration(s)");
    Ok(ExitCode::SUCCESS)
}

async fn org(settings: &Resolved, command: OrgCommand) -> Result<ExitCode> {
    let OrgCommand::Create {
        name,
        admin_email,
        admin_password,
        json,
    } = command;
    let store = open_store(settings).await?;
    let email = switchboard_server::routes::users::check_email(&admin_email)
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let password = admin_password.map(SecretValue::new);
    let created = store.create_org(&name, &email, password.as_ref()).await?;
    let admin = &created.admin;
    let out = json!({
        "org": { "id": created.org.id, "name": created.org.name },
        "user": { "id": admin.user.id, "email": admin.user.email, "role": admin.user.role },
        "token": admin.token.token.expose(),
        "clientId": admin.credentials.client_id,
        "clientSecret": admin.credentials.client_secret.expose(),
    });
    print_created(
        json,
        &out,
        &format!("created organization '{}'", created.org.name),
    );
    Ok(ExitCode::SUCCESS)
}

async fn user(settings: &Resolved, command: UserCommand) -> Result<ExitCode> {
    match command {
        UserCommand::Create {
            org,
            email,
            role,
            password,
            json,
        } => user_create(settings, &org, &email, &role, password, json).await,
        UserCommand::Update {
            org,
            email,
            role,
            disabled,
            json,
        } => user_update(settings, &org, &email, role.as_deref(), disabled, json).await,
    }
}

async fn user_create(
    settings: &Resolved,
    org: &str,
    email: &str,
    role: &str,
    password: Option<String>,
    json: bool,
) -> Result<ExitCode> {
    let role: Role = role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let store = open_store(settings).await?;
    let org = find_org(store.as_ref(), org).await?;
    let email = switchboard_server::routes::users::check_email(email)
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let password = password.map(SecretValue::new);
    let created = store
        .create_user(org.id, &Actor::cli(), &email, role, password.as_ref())
        .await?;
    let out = json!({
        "org": { "id": org.id, "name": org.name },
        "user": { "id": created.user.id, "email": created.user.email, "role": created.user.role },
        "token": created.token.token.expose(),
        "clientId": created.credentials.client_id,
        "clientSecret": created.credentials.client_secret.expose(),
    });
    print_created(
        json,
        &out,
        &format!("created user '{}'", created.user.email),
    );
    Ok(ExitCode::SUCCESS)
}

/// The same store call as `PATCH /v1/users/{id}`: audited as `cli`, the last-admin rule
/// applies, and running servers drop the user's cached tokens at their next poll.
async fn user_update(
    settings: &Resolved,
    org: &str,
    email: &str,
    role: Option<&str>,
    disabled: Option<bool>,
    json: bool,
) -> Result<ExitCode> {
    let role = role
        .map(|r| r.parse::<Role>().map_err(|e: String| anyhow::anyhow!(e)))
        .transpose()?;
    if role.is_none() && disabled.is_none() {
        bail!("nothing to change: give --role, --disabled or both");
    }
    let store = open_store(settings).await?;
    let org = find_org(store.as_ref(), org).await?;
    let user = find_user(store.as_ref(), &org, email).await?;
    let change = UserChange { role, disabled };
    let updated = store
        .update_user(org.id, &Actor::cli(), user.id, change)
        .await?;
    let out = json!({
        "ok": true,
        "user": switchboard_server::routes::users::user_view(&updated),
    });
    print_created(json, &out, &format!("updated user '{}'", updated.email));
    Ok(ExitCode::SUCCESS)
}

async fn token(settings: &Resolved, command: TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Create {
            org,
            email,
            name,
            expires_in_days,
            json,
        } => {
            let spec = TokenSpec {
                name,
                expires_in_days,
            };
            token_create(settings, &org, &email, &spec, json).await
        }
        TokenCommand::Revoke { org, id, json } => token_revoke(settings, &org, &id, json).await,
    }
}

async fn token_create(
    settings: &Resolved,
    org: &str,
    email: &str,
    spec: &TokenSpec,
    json: bool,
) -> Result<ExitCode> {
    let store = open_store(settings).await?;
    let org = find_org(store.as_ref(), org).await?;
    let user = find_user(store.as_ref(), &org, email).await?;
    let (meta, issued) = store
        .create_token(org.id, &Actor::cli(), user.id, spec)
        .await?;
    let mut out = switchboard_server::routes::tokens::created_json(&meta, &issued);
    out["id"] = json!(meta.id);
    print_created(json, &out, "created API token");
    Ok(ExitCode::SUCCESS)
}

async fn token_revoke(settings: &Resolved, org: &str, id: &str, json: bool) -> Result<ExitCode> {
    let store = open_store(settings).await?;
    let org = find_org(store.as_ref(), org).await?;
    let revoked = match store.revoke_token(org.id, &Actor::cli(), id).await {
        Err(StoreError::NotFound) => bail!("no token '{id}' in organization '{}'", org.name),
        other => other?,
    };
    let out = json!({
        "ok": true,
        "revoked": switchboard_server::routes::tokens::token_view(&revoked),
    });
    print_created(json, &out, &format!("revoked token '{}'", revoked.id));
    Ok(ExitCode::SUCCESS)
}

async fn find_user(
    store: &dyn Store,
    org: &switchboard_core::records::Organization,
    email: &str,
) -> Result<switchboard_core::records::User> {
    store
        .user_by_email(&email.trim().to_ascii_lowercase())
        .await?
        .filter(|u| u.org_id == org.id)
        .with_context(|| format!("no user '{email}' in organization '{}'", org.name))
}

async fn audit(settings: &Resolved, command: AuditCommand) -> Result<ExitCode> {
    let AuditCommand::Verify { org, json } = command;
    let store = open_store(settings).await?;
    let orgs = match org {
        Some(name) => vec![find_org(store.as_ref(), &name).await?],
        None => store.list_orgs().await?,
    };
    for org in &orgs {
        if let Some(broken) = store.verify_audit(org.id).await? {
            if json {
                println!(
                    "{}",
                    json!({ "ok": false, "org": org.name, "brokenEntry": broken.entry_id,
                            "seq": broken.seq, "reason": broken.reason })
                );
            } else {
                println!(
                    "audit chain of organization '{}' is broken at entry {} (seq {}): {}",
                    org.name, broken.entry_id, broken.seq, broken.reason
                );
            }
            return Ok(ExitCode::FAILURE);
        }
    }
    if json {
        println!("{}", json!({ "ok": true, "organizations": orgs.len() }));
    } else {
        println!("audit chains verified for {} organization(s)", orgs.len());
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate(settings: &Resolved, command: KeysCommand) -> Result<ExitCode> {
    let KeysCommand::Rotate {
        no_new_version,
        batch,
        json,
    } = command;
    if !no_new_version {
        if settings.master_key.is_some() {
            bail!(
                "the master key comes from SWITCHBOARD_MASTER_KEY: add a new `version:base64` \
                 entry there and run `switchboard keys rotate --no-new-version`"
            );
        }
        switchboard_store::MasterKeyRing::add_generated_version(&settings.master_key_file)
            .context("cannot add a master-key version")?;
    }
    let store = open_store(settings).await?;
    let mut total = 0;
    loop {
        let report = store.rotate_keys(batch.max(1)).await?;
        total += report.rewrapped;
        if report.remaining == 0 {
            let out =
                json!({ "ok": true, "currentVersion": report.current_version, "rewrapped": total });
            print_created(
                json,
                &out,
                &format!(
                    "re-wrapped {total} data key(s) under master-key version {}",
                    report.current_version
                ),
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
}

async fn find_org(
    store: &dyn Store,
    name: &str,
) -> Result<switchboard_core::records::Organization> {
    store
        .org_by_name(name)
        .await?
        .with_context(|| format!("no organization named '{name}'"))
}

fn print_created(json: bool, value: &serde_json::Value, human: &str) {
    if json {
        println!("{value}");
    } else {
        println!("{human}");
        if let Ok(pretty) = serde_json::to_string_pretty(value) {
            println!("{pretty}");
        }
    }
}
