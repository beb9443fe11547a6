//! Live positions over WebSocket (docs/adr/0027-the-waiting-room.md): a
//! shopper connects with the live token of their ticket, and is told
//! their position as it falls and their admission when it comes, without
//! polling.
//!
//! A connection records the ticket's place, which never changes, so a
//! position is computed from the sale's serving watermark alone: a
//! broadcast reads the sale and its connections, never a ticket per
//! shopper, and writes nothing. Only a connection whose place the
//! watermark passed reads its ticket, once, to say what became of it.
//!
//! Cadence ([`PushMemory`]): a waiting shopper is told when their position
//! moved by at least a hundredth of it, or by anything once 5 s passed
//! since the last message, or when under 100 are ahead; a status change at
//! once. A sale's connections are listed again every 5 s, not every
//! broadcast. ADR 0027 prices a 100,000-shopper sale.

use crate::App;
use crate::admission;
use crate::ports::{PushError, Pusher};
use serde::Serialize;
use shop_domain::sale::{Sale, Shown};
use shop_domain::{SaleId, Timestamp};
use shop_store::StoreError;
use shop_store::connections::Connection;
use std::collections::HashMap;

/// What a connection is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveMessage {
    /// Always `ticket`: the message's kind, for clients that add others.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub sale_id: String,
    /// As `GET /sales/{saleId}/queue/me` says it. On ADMITTED, that route
    /// gives the admission token.
    pub status: Shown,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ahead: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_secs: Option<u64>,
}

impl LiveMessage {
    pub fn to_json(&self) -> String {
        // A struct of strings and numbers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the live token is not valid: {0}")]
    BadToken(&'static str),
    #[error("no ticket for this sale")]
    NoTicket,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for ConnectError {
    fn from(e: StoreError) -> Self {
        ConnectError::Unexpected(e.into())
    }
}

/// Whom `token` lets connect at `now` (the REQUEST authorizer's check, and
/// the local stack's before it upgrades).
pub fn authorize(app: &App, token: &str) -> Result<admission::LiveGrant, ConnectError> {
    let secret = app.config.admission_secret.as_deref().ok_or(ConnectError::BadToken("this stack issues none"))?;
    admission::verify_live(secret, token, app.clock.now()).map_err(ConnectError::BadToken)
}

/// Connection `id`, opened under `grant` (what [`authorize`] found in its
/// live token): recorded with its ticket's place. Returns the connection
/// and the first message to send it.
pub async fn connect(
    app: &App,
    grant: admission::LiveGrant,
    id: &str,
) -> Result<(Connection, LiveMessage), ConnectError> {
    let sales = app.store.sales();
    let (Some(sale), Some(ticket)) = (sales.get(&grant.sale).await?, sales.ticket(&grant.sale, &grant.user).await?)
    else {
        return Err(ConnectError::NoTicket);
    };
    let c = Connection {
        id: id.to_owned(),
        sale: grant.sale,
        user: grant.user,
        place: ticket.place,
        connected_at: app.clock.now(),
    };
    app.store.connections().put(&c).await?;
    let now = app.clock.now();
    let message = ticket_message(&crate::usecases::sales::TicketView::of(ticket, sale, now));
    Ok((c, message))
}

/// What connection `id` should be told now (API Gateway's `$default`: any
/// message from the client asks for it). `None` for an unknown connection.
pub async fn current(app: &App, id: &str) -> Result<Option<LiveMessage>, StoreError> {
    let Some(c) = app.store.connections().get(id).await? else { return Ok(None) };
    let view = crate::usecases::sales::my_ticket(app, &c.sale, &c.user).await?;
    Ok(view.as_ref().map(ticket_message))
}

/// Connection `id` closed.
pub async fn disconnect(app: &App, id: &str) -> Result<(), StoreError> {
    match app.store.connections().get(id).await? {
        Some(c) => app.store.connections().delete(&c).await,
        None => Ok(()),
    }
}

fn ticket_message(v: &crate::usecases::sales::TicketView) -> LiveMessage {
    LiveMessage {
        kind: "ticket",
        sale_id: v.ticket.sale.to_string(),
        status: v.shown,
        ahead: v.position.map(|p| p.ahead),
        estimated_wait_secs: v.wait_secs,
    }
}

/// What a pusher told each connection last (kept by the process that
/// pushes: a Lambda invocation, the local stack).
#[derive(Debug, Default)]
pub struct PushMemory {
    told: HashMap<String, Told>,
    /// Each sale's connections as last listed, and when: a broadcast lists
    /// them again after [`LIST_EVERY_SECS`] (a new connection is told its
    /// position on its own, at connect or by asking).
    listed: HashMap<SaleId, (Vec<Connection>, Timestamp)>,
}

/// How long a broadcast reuses a sale's list of connections, once there
/// are [`LIST_EVERY_PASS_BELOW`] or more (fewer are listed every pass:
/// sixteen one-page queries).
pub const LIST_EVERY_SECS: i64 = 5;
pub const LIST_EVERY_PASS_BELOW: usize = 1_000;

#[derive(Debug, Clone, Copy)]
struct Told {
    status: Shown,
    ahead: Option<u64>,
    at: Timestamp,
}

/// A waiting shopper is told again after this long if anything moved.
pub const PUSH_EVERY_SECS: i64 = 5;
/// Under this many ahead, every move is told.
pub const NEAR_THE_FRONT: u64 = 100;

impl PushMemory {
    /// Whether `m` is worth sending to `id` at `now`.
    fn worth_telling(&self, id: &str, m: &LiveMessage, now: Timestamp) -> bool {
        let Some(last) = self.told.get(id) else { return true };
        if last.status != m.status {
            return true;
        }
        match (last.ahead, m.ahead) {
            (Some(before), Some(ahead)) if ahead != before => {
                ahead < NEAR_THE_FRONT
                    || before.abs_diff(ahead) >= (before / 100).max(1)
                    || now.millis().saturating_sub(last.at.millis()) >= PUSH_EVERY_SECS * 1000
            }
            (Some(_), Some(_)) | (None, _) | (_, None) => false,
        }
    }

    fn told(&mut self, id: &str, m: &LiveMessage, now: Timestamp) {
        self.told.insert(id.to_owned(), Told { status: m.status, ahead: m.ahead, at: now });
    }
}

/// What one broadcast did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushReport {
    pub connections: usize,
    pub pushed: usize,
    pub gone: usize,
    pub failed: usize,
}

/// One broadcast to the connections of `sales`: each is told its position
/// if it moved enough ([`PushMemory`]), or what became of its ticket once
/// the watermark passed it. Gone connections are forgotten.
pub async fn push_positions(
    app: &App,
    pusher: &dyn Pusher,
    memory: &mut PushMemory,
    sales: &[SaleId],
) -> Result<PushReport, StoreError> {
    let mut report = PushReport::default();
    let now = app.clock.now();
    for id in sales {
        let Some(sale) = app.store.sales().get(id).await? else { continue };
        let fresh = memory.listed.get(id).is_some_and(|(listed, at)| {
            listed.len() >= LIST_EVERY_PASS_BELOW && now.millis().saturating_sub(at.millis()) < LIST_EVERY_SECS * 1000
        });
        if !fresh {
            let listed = app.store.connections().of_sale(id).await?;
            memory.listed.insert(id.clone(), (listed, now));
        }
        let connections = memory.listed.get(id).map(|(c, _)| c.clone()).unwrap_or_default();
        for c in connections {
            report.connections += 1;
            let Some(message) = message_for(app, &sale, &c, now).await? else { continue };
            if !memory.worth_telling(&c.id, &message, now) {
                continue;
            }
            match pusher.push(&c.id, &message.to_json()).await {
                Ok(()) => {
                    report.pushed += 1;
                    memory.told(&c.id, &message, now);
                }
                Err(PushError::Gone) => {
                    report.gone += 1;
                    memory.told.remove(&c.id);
                    if let Some((listed, _)) = memory.listed.get_mut(id) {
                        listed.retain(|l| l.id != c.id);
                    }
                    app.store.connections().delete(&c).await?;
                }
                Err(PushError::Failed(e)) => {
                    report.failed += 1;
                    tracing::warn!(connection = %c.id, error = %e, "push failed; the next broadcast tries again");
                }
            }
        }
    }
    if report.pushed > 0 {
        app.count("PositionsPushed", u64::try_from(report.pushed).unwrap_or(u64::MAX));
    }
    Ok(report)
}

/// `c`'s message: its position from the watermark while the watermark has
/// not reached it, else its ticket as it stands (one read).
async fn message_for(
    app: &App,
    sale: &Sale,
    c: &Connection,
    now: Timestamp,
) -> Result<Option<LiveMessage>, StoreError> {
    let reached = sale.served.is_some_and(|served| served >= c.place);
    let closed =
        !matches!(sale.state(now), shop_domain::sale::SaleState::Open | shop_domain::sale::SaleState::Scheduled);
    if !reached && !closed {
        let ahead = sale.position_of(c.place).ahead;
        return Ok(Some(LiveMessage {
            kind: "ticket",
            sale_id: c.sale.to_string(),
            status: Shown::Waiting,
            ahead: Some(ahead),
            estimated_wait_secs: Some(crate::usecases::sales::estimated_wait(sale, ahead, now)),
        }));
    }
    let Some(ticket) = app.store.sales().ticket(&c.sale, &c.user).await? else { return Ok(None) };
    Ok(Some(ticket_message(&crate::usecases::sales::TicketView::of(ticket, sale.clone(), now))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(status: Shown, ahead: Option<u64>) -> LiveMessage {
        LiveMessage { kind: "ticket", sale_id: "s".into(), status, ahead, estimated_wait_secs: None }
    }

    #[test]
    fn a_position_is_told_when_it_moved_enough_or_a_while_ago_and_a_status_at_once() {
        let mut mem = PushMemory::default();
        let t = |s: i64| Timestamp::from_millis(s * 1000);
        assert!(mem.worth_telling("c", &m(Shown::Waiting, Some(10_000)), t(0)), "first");
        mem.told("c", &m(Shown::Waiting, Some(10_000)), t(0));
        assert!(!mem.worth_telling("c", &m(Shown::Waiting, Some(10_000)), t(60)), "unchanged");
        assert!(!mem.worth_telling("c", &m(Shown::Waiting, Some(9_950)), t(1)), "under 1 %");
        assert!(mem.worth_telling("c", &m(Shown::Waiting, Some(9_900)), t(1)), "1 %");
        assert!(mem.worth_telling("c", &m(Shown::Waiting, Some(9_990)), t(5)), "5 s later");
        mem.told("c", &m(Shown::Waiting, Some(120)), t(10));
        assert!(mem.worth_telling("c", &m(Shown::Waiting, Some(99)), t(10)), "near the front");
        assert!(mem.worth_telling("c", &m(Shown::Admitted, None), t(10)), "admitted");
    }
}
