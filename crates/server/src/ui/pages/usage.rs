//! `/usage`: requests, tokens, errors and latency per provider and model over the last
//! 24 hours or 7 days, as a server-drawn SVG bar chart and a table. Aggregated by the store
//! (`Store::usage`). Members see their own usage only, the same rule as invocations.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::records::Timestamp;
use switchboard_store::UsageRow;

use crate::state::AppState;
use crate::ui::auth::Session;
use crate::ui::chart::Chart;
use crate::ui::render::{Layout, failure, html};

/// The windows offered, as `(query value, label, hours)`.
const WINDOWS: &[(&str, &str, i64)] = &[("24h", "Last 24 hours", 24), ("7d", "Last 7 days", 168)];

#[derive(Template)]
#[template(path = "usage.html")]
struct UsagePage {
    layout: Layout,
    windows: Vec<WindowLink>,
    /// The chosen window's label.
    window: &'static str,
    chart: Chart,
    rows: Vec<UsageRow>,
    totals: UsageRow,
}

struct WindowLink {
    value: &'static str,
    label: &'static str,
    current: bool,
}

#[derive(Deserialize)]
pub struct WindowQuery {
    window: Option<String>,
}

/// `GET /usage?window=24h|7d` (24 hours by default).
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<WindowQuery>,
) -> Response {
    let chosen = WINDOWS
        .iter()
        .find(|(value, _, _)| Some(*value) == query.window.as_deref())
        .unwrap_or(&WINDOWS[0]);
    let since =
        Timestamp::from_datetime(Timestamp::now().datetime() - time::Duration::hours(chosen.2));
    let principal = &session.principal;
    let only = (!principal.is_admin()).then_some(principal.user_id);
    let rows = match state.store.usage(principal.org_id, since, only).await {
        Ok(rows) => rows,
        Err(error) => return failure(&session, error.into()),
    };
    let page = UsagePage {
        layout: Layout::new(&session, "usage", "Usage"),
        windows: WINDOWS
            .iter()
            .map(|(value, label, _)| WindowLink {
                value,
                label,
                current: value == &chosen.0,
            })
            .collect(),
        window: chosen.1,
        chart: Chart::new(rows.iter().map(bar).collect()),
        totals: totals(&rows),
        rows,
    };
    html(StatusCode::OK, &page)
}

/// A row as a bar: requests, with the failed part.
fn bar(row: &UsageRow) -> (String, u64, u64) {
    (label(row), row.requests, row.errors)
}

/// `provider / model`, with a dash for what failed before it was known.
fn label(row: &UsageRow) -> String {
    format!(
        "{} / {}",
        row.provider.as_deref().unwrap_or("—"),
        row.model.as_deref().unwrap_or("—")
    )
}

/// Sums over every row (percentiles do not add up, so they stay 0 and are not shown).
fn totals(rows: &[UsageRow]) -> UsageRow {
    rows.iter().fold(UsageRow::default(), |mut sum, row| {
        sum.requests += row.requests;
        sum.errors += row.errors;
        sum.input_tokens += row.input_tokens;
        sum.output_tokens += row.output_tokens;
        sum
    })
}
