//! Flash sales behind the waiting room (docs/adr/0027-the-waiting-room.md):
//! the sale (its terms and the admitter's state in `doc`, its `version`
//! native), the sharded entry, pre-queue and released counters, and one
//! ticket per user. A ticket sits in `byDue` while something is due on it:
//! `WAIT#<sale>#<n>` at its number while it waits, `PRE#<sale>#<n>` at its
//! draw while it waits in the pre-queue, `SESSION#<n>` at its session's
//! end while it is admitted without an order; nothing after.

use crate::attr::{Item, get_n, get_s, item, key, n, s, with_key};
use crate::error::{Result, StoreError};
use crate::tx::{TxItem, TxOp, put, put_over_version};
use crate::{Store, keys};
use anyhow::Context;
use aws_sdk_dynamodb::types::{ReturnValue, TransactWriteItem, Update};
use shop_domain::sale::place::shard_of;
use shop_domain::sale::{Place, Sale, Ticket, TicketStatus};
use shop_domain::{SaleId, Timestamp, UserId};

/// Sales and tickets (see [`Store::sales`]).
#[derive(Clone, Copy)]
pub struct Sales<'a>(pub(crate) &'a Store);

/// Released-slot counter shards per sale: releases come at the admission
/// rate (≤ 10,000/s by the terms), spread over these.
pub const FREED_SHARDS: u32 = 16;

pub fn to_item(sale: &Sale) -> anyhow::Result<Item> {
    Ok(with_key(
        item([
            ("type", s("SALE")),
            ("saleId", s(sale.id.as_str())),
            ("version", n(sale.version)),
            ("doc", s(serde_json::to_string(sale)?)),
            // Listed in `byDue` by its end: the sales still running are a
            // query of what has not ended ([`Sales::live`]).
            ("dueShard", s(keys::SALES_DUE)),
            ("dueAt", n(sale.terms.ends_at.millis())),
        ]),
        keys::sale(&sale.id),
    ))
}

pub fn from_item(it: &Item) -> anyhow::Result<Sale> {
    serde_json::from_str(get_s(it, "doc")?).context("sale document")
}

/// One more on a counter shard, read back (entries) or inside a
/// transaction (releases): the same update either way.
const COUNT_ONE: &str = "ADD seq :one SET #type = :type";

fn count_one_names() -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([("#type".to_owned(), "type".to_owned())])
}

fn count_one_values() -> Item {
    count_values(1)
}

fn count_values(delta: i64) -> Item {
    item([(":one", n(delta)), (":type", s("COUNTER"))])
}

/// The `byDue` key a ticket is listed under, if any (see the module docs).
fn due_of(t: &Ticket, entry_shards: u32) -> Option<(String, i64)> {
    let shard = shard_of(&t.user, entry_shards);
    match (t.status, t.place, &t.admission) {
        (TicketStatus::Waiting, Place::Early { lottery }, _) => {
            Some((keys::sale_queue_shard(keys::PRE_PREFIX, &t.sale, shard), i64::try_from(lottery).ok()?))
        }
        (TicketStatus::Waiting, Place::Counted { number }, _) => {
            Some((keys::sale_queue_shard(keys::WAIT_PREFIX, &t.sale, shard), i64::try_from(number).ok()?))
        }
        (TicketStatus::Admitted, _, Some(a)) => Some((keys::session_shard(&t.user), a.session_ends_at.millis())),
        (TicketStatus::Admitted, _, None)
        | (TicketStatus::Ordered, _, _)
        | (TicketStatus::Done, _, _)
        | (TicketStatus::Left, _, _)
        | (TicketStatus::Expired, _, _) => None,
    }
}

pub fn ticket_to_item(t: &Ticket, entry_shards: u32) -> anyhow::Result<Item> {
    let mut it = with_key(
        item([
            ("type", s("TICKET")),
            ("saleId", s(t.sale.as_str())),
            ("userId", s(t.user.as_str())),
            ("status", s(t.status.as_str())),
            ("version", n(t.version)),
            ("entryShards", n(entry_shards)),
            ("doc", s(serde_json::to_string(t)?)),
        ]),
        keys::ticket(&t.sale, &t.user),
    );
    if let Some((shard, at)) = due_of(t, entry_shards) {
        it.insert("dueShard".into(), s(shard));
        it.insert("dueAt".into(), n(at));
    }
    Ok(it)
}

pub fn ticket_from_item(it: &Item) -> anyhow::Result<Ticket> {
    serde_json::from_str(get_s(it, "doc")?).context("ticket document")
}

impl Sales<'_> {
    pub async fn get(&self, id: &SaleId) -> Result<Option<Sale>> {
        self.0.get(keys::sale(id)).await?.map(|it| from_item(&it)).transpose().map_err(Into::into)
    }

    /// A new sale; fails if the id is taken.
    pub fn op_create(&self, sale: &Sale) -> anyhow::Result<TxOp> {
        put(self.0.table(), to_item(sale)?, "attribute_not_exists(pk)", TxItem::Sale(sale.id.to_string()))
    }

    /// `next` over a sale still at `prev_version`: the admitter's one
    /// writer at a time.
    pub fn op_update(&self, prev_version: u64, next: &Sale) -> anyhow::Result<TxOp> {
        put_over_version(self.0.table(), to_item(next)?, prev_version, TxItem::Sale(next.id.to_string()))
    }

    /// Takes the next value of one counter (an UpdateItem that returns it).
    async fn take(&self, at: (String, String)) -> Result<u64> {
        let (pk, sk) = at;
        let out = self
            .0
            .client()
            .update_item()
            .table_name(self.0.table())
            .set_key(Some(key(pk, sk)))
            .update_expression(COUNT_ONE)
            .set_expression_attribute_names(Some(count_one_names()))
            .set_expression_attribute_values(Some(count_one_values()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(StoreError::unexpected("UpdateItem counter"))?;
        let attrs = out.attributes.unwrap_or_default();
        Ok(get_n(&attrs, "seq")?)
    }

    /// A counted place for `user` after the start: the next number of
    /// their entry shard. A number drawn for a user who holds a ticket
    /// already is a gap, which the admitter skips.
    pub async fn take_number(&self, sale: &Sale, user: &UserId) -> Result<Place> {
        let shards = sale.terms.entry_shards;
        let shard = shard_of(user, shards);
        let seq = self.take(keys::sale_counter(keys::ENTRY_COUNTER, &sale.id, shard)).await?;
        Place::counted(seq, shard, shards)
            .ok_or_else(|| StoreError::Unexpected(anyhow::anyhow!("counter {shard} of sale {} at {seq}", sale.id)))
    }

    /// Counts a pre-queue entry of `user`, in the transaction that puts its
    /// ticket (the estimate of pre-queue positions is made from the total,
    /// and the admitter stops reading the pre-queue once it admitted them all).
    pub fn op_count_early(&self, sale: &Sale, user: &UserId) -> anyhow::Result<TxOp> {
        let at = keys::sale_counter(keys::EARLY_COUNTER, &sale.id, shard_of(user, sale.terms.entry_shards));
        self.op_count_one(at, &sale.id)
    }

    /// One more on the counter shard `at`, as a transaction's action.
    fn op_count_one(&self, at: (String, String), sale: &SaleId) -> anyhow::Result<TxOp> {
        self.op_count(at, sale, 1)
    }

    /// `delta` on the counter shard `at`, as a transaction's action.
    fn op_count(&self, (pk, sk): (String, String), sale: &SaleId, delta: i64) -> anyhow::Result<TxOp> {
        let update = Update::builder()
            .table_name(self.0.table())
            .set_key(Some(key(pk, sk)))
            .update_expression(COUNT_ONE)
            .set_expression_attribute_names(Some(count_one_names()))
            .set_expression_attribute_values(Some(count_values(delta)))
            .build()?;
        Ok(TxOp { item: TransactWriteItem::builder().update(update).build(), label: TxItem::Sale(sale.to_string()) })
    }

    /// The sum of `kind`'s counter shards of `sale` (one BatchGetItem).
    async fn sum(&self, kind: &str, sale: &SaleId, shards: u32) -> Result<u64> {
        let wanted = (0..shards).map(|n| keys::sale_counter(kind, sale, n)).collect();
        // Signed: a shard of `HOLDING` written before its +1 was counted
        // (a sale older than the counter) may stand below zero; the sum is
        // never less than nothing.
        let mut total: i64 = 0;
        for it in self.0.batch_get(wanted).await? {
            total = total.saturating_add(get_n::<i64>(&it, "seq")?);
        }
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// Pre-queue entries so far.
    pub async fn early_total(&self, sale: &Sale) -> Result<u64> {
        self.sum(keys::EARLY_COUNTER, &sale.id, sale.terms.entry_shards).await
    }

    /// Entries so far, the pre-queue's and the counted queue's (a number
    /// drawn by a user who held a ticket already counts too: an upper
    /// bound, by at most the concurrent double entries).
    pub async fn entered(&self, sale: &Sale) -> Result<u64> {
        let (counted, early) = self.entries(sale).await?;
        Ok(counted.saturating_add(early))
    }

    /// Entries so far: the counted queue's numbers drawn, and the
    /// pre-queue's tickets.
    pub async fn entries(&self, sale: &Sale) -> Result<(u64, u64)> {
        let counted = self.sum(keys::ENTRY_COUNTER, &sale.id, sale.terms.entry_shards).await?;
        Ok((counted, self.early_total(sale).await?))
    }

    /// Slots released so far (`active = admitted − freed`).
    pub async fn freed(&self, sale: &SaleId) -> Result<u64> {
        self.sum(keys::FREED_COUNTER, sale, FREED_SHARDS).await
    }

    /// One more slot released, in the transaction that ends the ticket.
    pub fn op_free(&self, sale: &SaleId, user: &UserId) -> anyhow::Result<TxOp> {
        self.op_count_one(keys::sale_counter(keys::FREED_COUNTER, sale, shard_of(user, FREED_SHARDS)), sale)
    }

    /// Orders placed by an admission of `sale` whose slot is still held:
    /// admitted shoppers who already took their units.
    pub async fn holding(&self, sale: &SaleId) -> Result<u64> {
        self.sum(keys::HOLDING_COUNTER, sale, FREED_SHARDS).await
    }

    /// `user`'s admission placed its order (+1, in the placing transaction)
    /// or its order ended and freed the slot (−1, in the releasing one).
    /// Both land on the user's shard, so no shard ever goes below zero.
    pub fn op_hold(&self, sale: &SaleId, user: &UserId, delta: i64) -> anyhow::Result<TxOp> {
        self.op_count(keys::sale_counter(keys::HOLDING_COUNTER, sale, shard_of(user, FREED_SHARDS)), sale, delta)
    }

    pub async fn ticket(&self, sale: &SaleId, user: &UserId) -> Result<Option<Ticket>> {
        self.0.get(keys::ticket(sale, user)).await?.map(|it| ticket_from_item(&it)).transpose().map_err(Into::into)
    }

    /// A new ticket; fails if the user holds one for this sale.
    pub fn op_put_ticket(&self, t: &Ticket, sale: &Sale) -> anyhow::Result<TxOp> {
        let item = ticket_to_item(t, sale.terms.entry_shards)?;
        put(self.0.table(), item, "attribute_not_exists(pk)", TxItem::Ticket(t.user.to_string()))
    }

    /// `next` over a ticket still at `prev_version`.
    pub fn op_update_ticket(&self, prev_version: u64, next: &Ticket, sale: &Sale) -> anyhow::Result<TxOp> {
        let item = ticket_to_item(next, sale.terms.entry_shards)?;
        put_over_version(self.0.table(), item, prev_version, TxItem::Ticket(next.user.to_string()))
    }

    /// `ordered` (a ticket that placed its order) over a ticket still at
    /// `prev_version`: written in the order's placing transaction without
    /// reading the sale, since an ordered ticket sits in no queue.
    pub fn op_order_ticket(&self, prev_version: u64, ordered: &Ticket) -> anyhow::Result<TxOp> {
        anyhow::ensure!(ordered.status == TicketStatus::Ordered, "op_order_ticket of a {:?} ticket", ordered.status);
        // The shard count only places WAITING tickets in the queue.
        let item = ticket_to_item(ordered, 1)?;
        put_over_version(self.0.table(), item, prev_version, TxItem::Ticket(ordered.user.to_string()))
    }

    /// The tickets at the `limit` lowest waiting places of `sale`, as they
    /// are now: the pre-queue's, then the counted queue's, each shard
    /// queried from its lowest entry (a ticket leaves the index when
    /// admitted, so a query costs what it returns, whatever the sale's
    /// history).
    pub async fn waiting(&self, sale: &Sale, limit: u32) -> Result<Vec<Ticket>> {
        let mut found: Vec<Ticket> = Vec::new();
        let per_shard = i32::try_from(limit).unwrap_or(i32::MAX).max(1);
        for prefix in [keys::PRE_PREFIX, keys::WAIT_PREFIX] {
            // Every pre-queue ticket counted at the opening was admitted:
            // its shards are not read (`early` counts those who left too).
            if prefix == keys::PRE_PREFIX && sale.early <= sale.early_admitted {
                continue;
            }
            for shard in 0..sale.terms.entry_shards {
                let out = self
                    .0
                    .client()
                    .query()
                    .table_name(self.0.table())
                    .index_name(keys::GSI_DUE)
                    .key_condition_expression("dueShard = :shard")
                    .expression_attribute_values(":shard", s(keys::sale_queue_shard(prefix, &sale.id, shard)))
                    .limit(per_shard)
                    .send()
                    .await
                    .map_err(StoreError::unexpected("Query a sale's queue"))?;
                // The index is eventually consistent: a ticket admitted or
                // gone a moment ago may still be listed. Each is read by key
                // and kept only while it waits.
                for it in self.0.items_of(&out.items.unwrap_or_default()).await? {
                    let t = ticket_from_item(&it)?;
                    if t.status == TicketStatus::Waiting {
                        found.push(t);
                    }
                }
            }
            // The pre-queue comes first: counted places only once it is empty here.
            if found.len() >= limit as usize {
                break;
            }
        }
        found.sort_by(|a, b| (a.place, &a.user).cmp(&(b.place, &b.user)));
        found.truncate(limit as usize);
        Ok(found)
    }

    /// The sales that have not ended at `now`, at most `limit`, soonest to
    /// end first: what the admitter steps (ended sales are never read).
    pub async fn live(&self, now: Timestamp, limit: i32) -> Result<Vec<SaleId>> {
        let out = self
            .0
            .client()
            .query()
            .table_name(self.0.table())
            .index_name(keys::GSI_DUE)
            .key_condition_expression("dueShard = :shard AND dueAt > :now")
            .expression_attribute_values(":shard", s(keys::SALES_DUE))
            .expression_attribute_values(":now", n(now.millis()))
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::unexpected("Query live sales"))?;
        let mut ids = Vec::new();
        for it in out.items.unwrap_or_default() {
            ids.push(SaleId::parse(get_s(&it, "saleId")?).context("saleId")?);
        }
        Ok(ids)
    }

    /// Admitted tickets whose session ended by `now` (any sale), at most
    /// `limit` per shard.
    pub async fn sessions_ended(&self, now: Timestamp, limit: i32) -> Result<Vec<Ticket>> {
        let mut found = Vec::new();
        for it in self.0.due(keys::SESSION_PREFIX, now, limit).await? {
            found.push(ticket_from_item(&it)?);
        }
        Ok(found)
    }
}
