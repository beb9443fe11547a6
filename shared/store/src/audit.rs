//! The audit trail: one item per action an operator took by hand (a
//! redrive, a replay, a republish, a fault armed), from the console or the
//! command line, locally or against a deployed stack — so it lives in the
//! table, in AWS too.
//!
//! All entries share one partition (`AUDIT`), sorted by `<at ms>#<id>`:
//! a page of the newest is one query however long the trail. Actions are
//! human-paced and a bulk action is one entry, far below a partition's
//! 1,000 writes a second.
//!
//! Append-only: an entry is put STARTED before the work begins (on the
//! condition that it does not exist), and its outcome set once afterwards
//! (on the condition that it is still STARTED); the entry's document never
//! changes, nothing deletes one, and it has no TTL. An entry left STARTED
//! names work whose process died in it.

use crate::attr::{Item, get_n, get_s, item, key, n, opt_s, s, with_key};
use crate::error::{Result, StoreError};
use crate::{Store, keys};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use shop_domain::Timestamp;
use shop_domain::audit::{AuditStatus, Channel, Operator, Reason};

/// Targets kept on an entry; a larger set keeps its count (an item holds
/// at most 400 KB: 1,000 ids of 64 characters are 64 KB).
pub const MAX_TARGETS: usize = 1_000;

/// What an operator set out to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub id: String,
    pub at: Timestamp,
    pub operator: Operator,
    pub channel: Channel,
    /// `local`, or the deployed stack's name.
    pub stack: String,
    /// What was done, as `noun.verb`: `dlq.redrive`, `order.replay`, …
    pub action: String,
    /// On what: `order:<id>`, `queue:<name>`, `message:<id>`, `pg:<op>/<fault>`, …
    /// (the first [`MAX_TARGETS`]).
    pub targets: Vec<String>,
    /// How many targets there were.
    pub target_count: usize,
    pub reason: Reason,
}

/// An entry of the trail: the action and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    #[serde(flatten)]
    pub action: Action,
    pub status: AuditStatus,
    pub outcome: Option<String>,
    pub finished_at: Option<Timestamp>,
}

/// Where a page of the trail ends: the sort key of its last entry. Handed
/// out as `<13 digits>.<id>` (a `#` would end a URL at its fragment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCursor(String);

impl AuditCursor {
    /// A cursor as pages hand it out (`<13 digits>.<id>`).
    pub fn parse(s: &str) -> Option<AuditCursor> {
        let (at, id) = s.split_once('.')?;
        let well_formed = at.len() == 13
            && at.bytes().all(|b| b.is_ascii_digit())
            && !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        well_formed.then(|| AuditCursor(format!("{at}#{id}")))
    }

    /// The cursor to hand out (a query parameter, a command's argument).
    pub fn to_param(&self) -> String {
        self.0.replacen('#', ".", 1)
    }
}

/// The audit trail (see [`Store::audit`]).
#[derive(Clone, Copy)]
pub struct Audit<'a>(pub(crate) &'a Store);

fn to_item(a: &Action) -> anyhow::Result<Item> {
    Ok(with_key(
        item([
            ("type", s("AUDIT")),
            ("doc", s(serde_json::to_string(a)?)),
            ("status", s(AuditStatus::Started.as_str())),
        ]),
        keys::audit(a.at, &a.id),
    ))
}

fn from_item(it: &Item) -> anyhow::Result<AuditEntry> {
    let action: Action = serde_json::from_str(get_s(it, "doc")?).context("audit document")?;
    let status = match get_s(it, "status")? {
        "STARTED" => AuditStatus::Started,
        "SUCCEEDED" => AuditStatus::Succeeded,
        "FAILED" => AuditStatus::Failed,
        other => anyhow::bail!("audit status {other}"),
    };
    let finished_at = match it.contains_key("finishedAt") {
        true => Some(Timestamp::from_millis(get_n(it, "finishedAt")?)),
        false => None,
    };
    Ok(AuditEntry { action, status, outcome: opt_s(it, "outcome").map(str::to_owned), finished_at })
}

impl Audit<'_> {
    /// Records `a` as started: before the work, so that a crash in it
    /// still leaves the entry.
    pub async fn begin(&self, a: &Action) -> Result<()> {
        self.0
            .client()
            .put_item()
            .table_name(self.0.table())
            .set_item(Some(to_item(a)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(StoreError::unexpected("PutItem audit"))?;
        Ok(())
    }

    /// Sets how `a` ended, once.
    pub async fn finish(&self, a: &Action, status: AuditStatus, outcome: &str, at: Timestamp) -> Result<()> {
        let (pk, sk) = keys::audit(a.at, &a.id);
        self.0
            .client()
            .update_item()
            .table_name(self.0.table())
            .set_key(Some(key(pk, sk)))
            .update_expression("SET #status = :status, outcome = :outcome, finishedAt = :at")
            .condition_expression("#status = :started")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":started", s(AuditStatus::Started.as_str()))
            .expression_attribute_values(":outcome", s(outcome))
            .expression_attribute_values(":at", n(at.millis()))
            .send()
            .await
            .map_err(StoreError::unexpected("UpdateItem audit outcome"))?;
        Ok(())
    }

    /// The newest `limit` entries, or those before `before`: newest first,
    /// and where the next page starts if there is one.
    pub async fn page(
        &self,
        limit: usize,
        before: Option<&AuditCursor>,
    ) -> Result<(Vec<AuditEntry>, Option<AuditCursor>)> {
        let after = before.map(|c| (keys::AUDIT_PK.to_owned(), c.0.clone()));
        let (items, more) = self.0.prefix_page(keys::AUDIT_PK, "", limit, false, after).await?;
        let entries = items.iter().map(from_item).collect::<anyhow::Result<Vec<_>>>()?;
        let next = match (more, items.last()) {
            (true, Some(last)) => Some(AuditCursor(get_s(last, "sk")?.to_owned())),
            _ => None,
        };
        Ok((entries, next))
    }

    /// The entries among the newest `read_cap` that name `target` (as
    /// `order:<id>`, say, or a bulk action's `order:<id>#<version>@<consumer>`),
    /// newest first, and whether older entries went unread: a bounded read
    /// of the one partition, whatever the trail's length.
    pub async fn naming(&self, target: &str, read_cap: i32) -> Result<(Vec<AuditEntry>, bool)> {
        let out = self
            .0
            .client()
            .query()
            .table_name(self.0.table())
            .key_condition_expression("pk = :pk")
            .filter_expression("contains(doc, :t)")
            .expression_attribute_values(":pk", s(keys::AUDIT_PK))
            .expression_attribute_values(":t", s(format!("\"{target}")))
            .scan_index_forward(false)
            .limit(read_cap)
            .send()
            .await
            .map_err(StoreError::unexpected("Query the audit trail"))?;
        let capped = out.last_evaluated_key.is_some();
        let mut found = Vec::new();
        for it in out.items() {
            let e = from_item(it)?;
            // `order:o-1` is also the start of `order:o-12`: the target must end there.
            let names =
                e.action.targets.iter().any(|t| {
                    t.strip_prefix(target).is_some_and(|rest| rest.is_empty() || rest.starts_with(['#', '/']))
                });
            if names {
                found.push(e);
            }
        }
        Ok((found, capped))
    }
}
