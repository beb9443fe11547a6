//! Orders: the item (its document in `doc`, with the fields conditions and
//! indexes need projected), its conditional writes, a user's orders page by
//! page from `byUser`, the ones due to expire from `byDue`, and the one
//! consistent read placing an order decides on.

use crate::attr::{Item, get_s, item, key, n, s, with_key};
use crate::error::{Result, StoreError};
use crate::tx::{TxItem, TxOp, put, put_over_version};
use crate::{Store, keys};
use anyhow::Context;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Get, TransactGetItem, TransactWriteItem};
use shop_domain::sale::{Gate, Ticket};
use shop_domain::{
    Coupon, CouponId, Money, Order, OrderId, OrderStatus, Product, ProductId, SaleId, Timestamp, UserId,
};
use std::collections::HashMap;

/// Items a filtered page of a user's orders examines at most. A filter
/// that matches rarely answers a short page (even an empty one) with a
/// position to go on from, instead of reading the whole history.
pub const ORDERS_EXAMINED: i32 = 500;

/// Orders (see [`Store::orders`]).
#[derive(Clone, Copy)]
pub struct Orders<'a>(pub(crate) &'a Store);

/// What placing an order reads, in one consistent snapshot.
#[derive(Debug, Clone)]
pub struct PlacementInputs {
    /// In the order asked for; `None` for an unknown product.
    pub products: Vec<Option<Product>>,
    /// `None` when no coupon was asked for; `Some(None)` when it does not exist.
    pub coupon: Option<Option<Coupon>>,
    pub points_balance: Money,
    /// Each product's sale gate, in the order asked for.
    pub gates: Vec<Option<Gate>>,
    /// `None` when no ticket was asked for; `Some(None)` when there is none.
    pub ticket: Option<Option<Ticket>>,
}

/// Where a page of a user's orders ends: `<createdAt ms, 13 digits>#<orderId>`
/// (the `byUser` sort key without its `ORDER#` prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPosition(pub String);

impl OrderPosition {
    /// A position as a client may send it back; `None` if it cannot be one.
    pub fn parse(s: &str) -> Option<OrderPosition> {
        let (ms, id) = s.split_once('#')?;
        let ok = ms.len() == 13 && ms.bytes().all(|b| b.is_ascii_digit()) && OrderId::parse(id).is_ok();
        ok.then(|| OrderPosition(s.to_owned()))
    }

    fn of(order: &Order) -> OrderPosition {
        OrderPosition(format!("{:013}#{}", order.created_at.millis(), order.id))
    }

    /// The `byUser` start key: the index key and the table key of the order.
    fn start_key(&self, user: &UserId) -> HashMap<String, AttributeValue> {
        let order = self.0.split_once('#').map(|(_, id)| id).unwrap_or_default();
        let mut k = key(format!("ORDER#{order}"), "ORDER");
        k.insert("userPk".into(), s(keys::user_pk(user)));
        k.insert("userSk".into(), s(format!("ORDER#{}", self.0)));
        k
    }

    fn from_key(k: &HashMap<String, AttributeValue>) -> Result<OrderPosition> {
        let sk = get_s(k, "userSk")?;
        Ok(OrderPosition(sk.strip_prefix("ORDER#").unwrap_or(sk).to_owned()))
    }
}

pub fn to_item(o: &Order) -> anyhow::Result<Item> {
    let mut it = with_key(
        item([
            ("type", s("ORDER")),
            ("orderId", s(o.id.as_str())),
            ("userId", s(o.user_id.as_str())),
            ("status", s(o.status.as_str())),
            ("version", n(o.version)),
            ("createdAt", n(o.created_at.millis())),
            ("doc", s(serde_json::to_string(o)?)),
            ("userPk", s(keys::user_pk(&o.user_id))),
            ("userSk", s(format!("ORDER#{:013}#{}", o.created_at.millis(), o.id))),
        ]),
        keys::order(&o.id),
    );
    // In the expiry index only while it can expire.
    match o.status {
        OrderStatus::PendingPayment => {
            it.insert("dueShard".into(), s(keys::expiry_shard(&o.id)));
            it.insert("dueAt".into(), n(o.expires_at.millis()));
        }
        OrderStatus::Confirming
        | OrderStatus::AwaitingDeposit
        | OrderStatus::Paid
        | OrderStatus::PartiallyRefunded
        | OrderStatus::Expired
        | OrderStatus::Cancelled
        | OrderStatus::RefundPending
        | OrderStatus::Refunded => {}
    }
    Ok(it)
}

pub fn from_item(it: &Item) -> anyhow::Result<Order> {
    serde_json::from_str(get_s(it, "doc")?).context("order document")
}

impl Orders<'_> {
    pub async fn get(&self, id: &OrderId) -> Result<Option<Order>> {
        self.0.get(keys::order(id)).await?.map(|it| from_item(&it)).transpose().map_err(Into::into)
    }

    /// A new order; fails if the id is taken.
    pub fn op_create(&self, order: &Order) -> anyhow::Result<TxOp> {
        put(self.0.table(), to_item(order)?, "attribute_not_exists(pk)", TxItem::Order(order.id.to_string()))
    }

    /// The order after a transition, only over the version it was decided on.
    pub fn op_update(&self, prev_version: u64, order: &Order) -> anyhow::Result<TxOp> {
        put_over_version(self.0.table(), to_item(order)?, prev_version, TxItem::Order(order.id.to_string()))
    }

    /// Asserts the order is still at `version` without writing it.
    pub fn op_check_version(&self, order: &Order) -> anyhow::Result<TxOp> {
        let (pk, sk) = keys::order(&order.id);
        let check = ConditionCheck::builder()
            .table_name(self.0.table())
            .set_key(Some(key(pk, sk)))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(order.version))
            .build()?;
        Ok(TxOp {
            item: TransactWriteItem::builder().condition_check(check).build(),
            label: TxItem::Order(order.id.to_string()),
        })
    }

    /// Products, coupon and points balance in one TransactGetItems call, so
    /// the decision is made on a consistent snapshot.
    pub async fn load_placement(
        &self,
        user: &UserId,
        products: &[ProductId],
        coupon: Option<&CouponId>,
        ticket: Option<&SaleId>,
    ) -> Result<PlacementInputs> {
        let mut keys_wanted: Vec<(String, String)> = products.iter().map(keys::product).collect();
        keys_wanted.push(keys::points(user));
        if let Some(c) = coupon {
            keys_wanted.push(keys::coupon(c));
        }
        if let Some(sale) = ticket {
            keys_wanted.push(keys::ticket(sale, user));
        }
        let gets = keys_wanted
            .iter()
            .map(|(pk, sk)| {
                let get =
                    Get::builder().table_name(self.0.table()).set_key(Some(key(pk.clone(), sk.clone()))).build()?;
                Ok(TransactGetItem::builder().get(get).build())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let out = self
            .0
            .client()
            .transact_get_items()
            .set_transact_items(Some(gets))
            .send()
            .await
            .map_err(StoreError::unexpected("TransactGetItems"))?;
        let mut responses = out.responses.unwrap_or_default().into_iter().map(|r| r.item);
        let mut found = Vec::with_capacity(products.len());
        let mut gates = Vec::with_capacity(products.len());
        for _ in products {
            let it = responses.next().flatten();
            gates.push(it.as_ref().map(crate::catalog::gate_from).transpose()?.flatten());
            found.push(it.map(|it| crate::catalog::product_from(&it)).transpose()?);
        }
        let points_balance = match responses.next().flatten() {
            Some(it) => crate::points::balance_from(&it)?,
            None => Money::ZERO,
        };
        let coupon = match coupon {
            Some(_) => Some(responses.next().flatten().map(|it| crate::coupons::from_item(&it)).transpose()?),
            None => None,
        };
        let ticket = match ticket {
            Some(_) => Some(responses.next().flatten().map(|it| crate::sales::ticket_from_item(&it)).transpose()?),
            None => None,
        };
        Ok(PlacementInputs { products: found, coupon, points_balance, gates, ticket })
    }

    /// Orders still PENDING_PAYMENT whose `expiresAt <= now`, at most `limit`.
    /// Queries the sparse `byDue` index; never scans.
    pub async fn due_to_expire(&self, now: Timestamp, limit: i32) -> Result<Vec<OrderId>> {
        let mut ids = Vec::new();
        for it in self.0.due("EXPIRY", now, limit).await? {
            ids.push(OrderId::parse(get_s(&it, "orderId")?).context("orderId")?);
        }
        ids.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(ids)
    }

    /// The orders of `ids` that exist, in `ids`' order (BatchGetItem, 100
    /// keys a call).
    pub async fn get_many(&self, ids: &[OrderId]) -> Result<Vec<Order>> {
        let items = self.0.batch_get(ids.iter().map(keys::order).collect()).await?;
        let mut by_id = HashMap::new();
        for it in &items {
            let o = from_item(it)?;
            by_id.insert(o.id.clone(), o);
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// A user's latest `limit` orders (newest first) from the `byUser` index.
    pub async fn of_user(&self, user: &UserId, limit: usize) -> Result<Vec<Order>> {
        Ok(self.page(user, None, limit, None).await?.0)
    }

    /// One page of `user`'s orders, newest first: their keys from the
    /// `byUser` index (eventually consistent: an order placed a moment ago
    /// may show on the next read), then the orders themselves by key, as
    /// they are now. The index projects keys only, so an order's status
    /// changes write no index entry (docs/deploy.md, "What an order costs").
    /// With `status`, only orders in it; such a page examines at most
    /// [`ORDERS_EXAMINED`] orders and may hold fewer than `limit` (even
    /// none) with a next position.
    pub async fn page(
        &self,
        user: &UserId,
        status: Option<OrderStatus>,
        limit: usize,
        after: Option<&OrderPosition>,
    ) -> Result<(Vec<Order>, Option<OrderPosition>)> {
        let mut found: Vec<Order> = Vec::new();
        let mut start = after.map(|p| p.start_key(user));
        let mut examined: i32 = 0;
        let per_call = match status {
            Some(_) => ORDERS_EXAMINED,
            None => i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX),
        };
        loop {
            let out = self
                .0
                .client()
                .query()
                .table_name(self.0.table())
                .index_name(keys::GSI_USER)
                .key_condition_expression("userPk = :u AND begins_with(userSk, :p)")
                .expression_attribute_values(":u", s(keys::user_pk(user)))
                .expression_attribute_values(":p", s("ORDER#"))
                // Keys only, whatever the index projects (a table made
                // before the index was keys-only projects every attribute).
                .projection_expression("pk, sk, userPk, userSk")
                .scan_index_forward(false)
                .limit((per_call - examined).max(1))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::unexpected("Query byUser"))?;
            examined = examined.saturating_add(out.count);
            for it in self.0.items_of(&out.items.unwrap_or_default()).await? {
                let order = from_item(&it)?;
                if status.is_none_or(|st| order.status == st) {
                    found.push(order);
                }
            }
            let last: Option<Item> = out.last_evaluated_key.filter(|k| !k.is_empty());
            if found.len() > limit {
                found.truncate(limit);
                let next = found.last().map(OrderPosition::of);
                return Ok((found, next));
            }
            match last {
                None => return Ok((found, None)),
                // Out of budget: a short page, and where to go on from.
                Some(k) if examined >= per_call => return Ok((found, Some(OrderPosition::from_key(&k)?))),
                Some(k) => start = Some(k),
            }
        }
    }
}
