//! Invocation records as the API shows them (CONTRACT §4): provider and model as recorded,
//! content only while it is kept and within the organization's retention.

use serde_json::{Value, json};
use switchboard_core::records::Timestamp;
use switchboard_store::InvocationRecord;

/// The JSON of one record. `retention_days` hides content the purge has not reached yet.
pub fn record_json(record: &InvocationRecord, retention_days: u32, now: Timestamp) -> Value {
    let expires = record.created_at.datetime() + time::Duration::days(i64::from(retention_days));
    let content = record
        .content
        .as_ref()
        .filter(|_| expires > now.datetime())
        .map(|c| json!({ "prompt": c.prompt, "response": c.response }));
    json!({
        "id": record.id,
        "surface": record.surface,
        "provider": record.provider.map(|p| p.as_str()),
        "model": record.model,
        "status": record.status.as_str(),
        "errorName": record.error_name,
        "userId": record.user_id,
        "createdAt": record.created_at,
        "finishedAt": record.finished_at,
        "requestId": record.request_id,
        "labels": record.labels,
        "tools": record.tools,
        "usage": { "inputTokens": record.input_tokens, "outputTokens": record.output_tokens },
        "timings": { "firstTokenMs": record.first_token_ms, "totalMs": record.total_ms },
        "content": content,
    })
}
