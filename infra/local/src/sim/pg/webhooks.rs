//! The PG's webhooks to our `/webhooks/pg`: sent in the background,
//! retried on Toss's schedule ([`super::WEBHOOK_SCHEDULE`]), signed when a
//! secret is set, each attempt logged; the webhook faults apply here.

use super::state::{Delivery, FaultKind, Op, rows};
use super::{PgSim, WEBHOOK_SCHEDULE, kst};
use crate::sim::db;
use serde_json::{Value, json};
use std::sync::Arc;

impl PgSim {
    /// Sends a webhook in the background, retrying on Toss's schedule. The
    /// first attempt's fault is taken now, in the order of the changes.
    pub(super) async fn notify(
        self: &Arc<Self>,
        event_type: &'static str,
        body: Value,
        payment_key: Option<String>,
        order_id: String,
    ) {
        let Some(url) = self.opts.webhook_url.clone() else { return };
        let fault = self.take_fault(Op::Webhook).await;
        if fault == Some(FaultKind::Lost) {
            let at = Some(self.opts.clock.now().millis());
            let d = Delivery { event_type: event_type.to_owned(), payment_key, order_id, attempt: 1, status: 0, at };
            if let Err(e) = self.db.tx(move |c| rows::record_webhook(c, &d)).await {
                db::logged(&e);
            }
            return;
        }
        let sim = self.clone();
        tokio::spawn(async move {
            match fault {
                Some(FaultKind::Delay) => tokio::time::sleep(sim.opts.delay).await,
                // Held back so the next notification overtakes it.
                Some(FaultKind::Reorder) => tokio::time::sleep(sim.opts.stall).await,
                _ => {}
            }
            let copies = if fault == Some(FaultKind::Duplicate) { 2 } else { 1 };
            let mut tasks = Vec::new();
            for _ in 0..copies {
                let sim = sim.clone();
                let (url, body, pk, oid) = (url.clone(), body.clone(), payment_key.clone(), order_id.clone());
                let fail_first = matches!(fault, Some(FaultKind::Error | FaultKind::Timeout | FaultKind::LostResponse));
                tasks
                    .push(tokio::spawn(async move { sim.deliver(&url, event_type, &body, pk, oid, fail_first).await }));
            }
            // Each retry is a call of its own for the fault list (see `deliver`).
            for t in tasks {
                let _ = t.await;
            }
        });
    }

    async fn deliver(
        &self,
        url: &str,
        event_type: &str,
        body: &Value,
        payment_key: Option<String>,
        order_id: String,
        fail_first: bool,
    ) {
        let raw = body.to_string();
        for attempt in 0..=WEBHOOK_SCHEDULE.len() as u32 {
            // The first attempt's fault was taken when the webhook was queued.
            let failing = if attempt == 0 {
                fail_first
            } else {
                matches!(
                    self.take_fault(Op::Webhook).await,
                    Some(FaultKind::Error | FaultKind::Timeout | FaultKind::LostResponse)
                )
            };
            let status = if failing {
                0
            } else {
                let mut req = self.http.post(url).header("content-type", "application/json").body(raw.clone());
                if let Some(secret) = &self.opts.webhook_secret {
                    let sig = shop_app::http::webhook::sign(secret, self.opts.clock.now().seconds(), raw.as_bytes());
                    req = req.header(shop_app::http::webhook::SIGNATURE_HEADER, sig);
                }
                match req.send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                }
            };
            let d = Delivery {
                event_type: event_type.to_owned(),
                payment_key: payment_key.clone(),
                order_id: order_id.clone(),
                attempt: attempt + 1,
                status,
                at: Some(self.opts.clock.now().millis()),
            };
            if let Err(e) = self.db.tx(move |c| rows::record_webhook(c, &d)).await {
                db::logged(&e);
            }
            if status == 200 {
                return;
            }
            let Some(minutes) = WEBHOOK_SCHEDULE.get(attempt as usize) else { return };
            tokio::time::sleep(self.opts.webhook_backoff * u32::try_from(*minutes).unwrap_or(u32::MAX)).await;
        }
    }

    /// `PAYMENT_STATUS_CHANGED` for `payment` (its Toss form).
    pub(super) async fn status_changed(self: &Arc<Self>, payment: Value) {
        let pk = payment.get("paymentKey").and_then(Value::as_str).map(str::to_owned);
        let order_id = payment.get("orderId").and_then(Value::as_str).unwrap_or_default().to_owned();
        let created = kst(self.opts.clock.now().millis());
        let body = json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": created, "data": payment});
        self.notify("PAYMENT_STATUS_CHANGED", body, pk, order_id).await;
    }
}
