//! Payments: the item (its document in `doc`), its conditional writes, and
//! the two due lists in `byDue` — payments whose PG outcome is in doubt,
//! and virtual accounts whose next deposit check is due.

use crate::attr::{Item, get_s, item, n, s, with_key};
use crate::error::Result;
use crate::tx::{TxItem, TxOp, put, put_over_version};
use crate::{Store, keys};
use anyhow::Context;
use shop_domain::{Payment, PaymentKey, PaymentStatus, Timestamp};

/// Payments (see [`Store::payments`]).
#[derive(Clone, Copy)]
pub struct Payments<'a>(pub(crate) &'a Store);

pub fn to_item(p: &Payment) -> anyhow::Result<Item> {
    let mut it = with_key(
        item([
            ("type", s("PAYMENT")),
            ("paymentKey", s(p.payment_key.as_str())),
            ("orderId", s(p.order_id.as_str())),
            ("status", s(p.status.as_str())),
            ("version", n(p.version)),
            ("doc", s(serde_json::to_string(p)?)),
        ]),
        keys::payment(&p.payment_key),
    );
    // In the due index while only the PG can tell how it ended (at its last
    // update), or while a virtual account waits for its deposit (at its next check).
    match p.status {
        PaymentStatus::Confirming | PaymentStatus::Unknown => {
            it.insert("dueShard".into(), s(keys::reconcile_shard(&p.payment_key)));
            it.insert("dueAt".into(), n(p.updated_at.millis()));
        }
        PaymentStatus::WaitingForDeposit => {
            it.insert("dueShard".into(), s(keys::deposit_shard(&p.payment_key)));
            it.insert("dueAt".into(), n(p.check_at.unwrap_or(p.updated_at).millis()));
        }
        PaymentStatus::Done | PaymentStatus::Aborted | PaymentStatus::Canceled | PaymentStatus::PartialCanceled => {}
    }
    Ok(it)
}

pub fn from_item(it: &Item) -> anyhow::Result<Payment> {
    serde_json::from_str(get_s(it, "doc")?).context("payment document")
}

impl Payments<'_> {
    pub async fn get(&self, key: &PaymentKey) -> Result<Option<Payment>> {
        self.0.get(keys::payment(key)).await?.map(|it| from_item(&it)).transpose().map_err(Into::into)
    }

    /// A new payment record; fails if the PG's payment key was seen before.
    pub fn op_create(&self, payment: &Payment) -> anyhow::Result<TxOp> {
        put(
            self.0.table(),
            to_item(payment)?,
            "attribute_not_exists(pk)",
            TxItem::Payment(payment.payment_key.to_string()),
        )
    }

    /// The payment after a transition, only over the version it was decided on.
    pub fn op_update(&self, prev_version: u64, payment: &Payment) -> anyhow::Result<TxOp> {
        put_over_version(
            self.0.table(),
            to_item(payment)?,
            prev_version,
            TxItem::Payment(payment.payment_key.to_string()),
        )
    }

    /// Payments CONFIRMING or UNKNOWN not updated since `before`, at most `limit`.
    pub async fn in_doubt(&self, before: Timestamp, limit: i32) -> Result<Vec<Payment>> {
        let mut found = Vec::new();
        for it in self.0.due("RECONCILE", before, limit).await? {
            found.push(from_item(&it)?);
        }
        found.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(found)
    }

    /// Virtual accounts waiting for their deposit whose next check is due
    /// (`checkAt <= now`), least recently checked first, at most `limit`.
    pub async fn deposits_due(&self, now: Timestamp, limit: i32) -> Result<Vec<Payment>> {
        let mut found = Vec::new();
        for it in self.0.due("DEPOSIT", now, limit).await? {
            found.push(from_item(&it)?);
        }
        found.sort_by_key(|p| p.check_at.unwrap_or(p.updated_at));
        found.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(found)
    }
}
