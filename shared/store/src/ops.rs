//! Transaction actions, one function per kind of conditional write. Use cases
//! compose them into a [`Tx`](crate::Tx); each carries its label for conflict
//! mapping.

use crate::attr::{Item, key, n, s};
use crate::entities;
use crate::tx::{TxItem, TxOp};
use crate::{Store, keys};
use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};
use shop_domain::campaign::CouponIssued;
use shop_domain::points::LedgerEntry;
use shop_domain::{
    Campaign, CampaignId, Coupon, Money, Order, OrderEvent, Payment, Product, ProductId, Quantity, Timestamp,
};

fn put(table: &str, item: Item, condition: &str, label: TxItem) -> anyhow::Result<TxOp> {
    let put = Put::builder().table_name(table).set_item(Some(item)).condition_expression(condition).build()?;
    Ok(TxOp { item: TransactWriteItem::builder().put(put).build(), label })
}

impl Store {
    /// Reserve `qty` units: only if that many are available and the price is
    /// still the one the order was priced at.
    pub fn op_reserve_stock(&self, product: &Product, qty: Quantity) -> anyhow::Result<TxOp> {
        let (pk, sk) = keys::product(&product.id);
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key(pk, sk)))
            .update_expression("SET available = available - :q")
            .condition_expression("available >= :q AND price = :price")
            .expression_attribute_values(":q", n(qty.get()))
            .expression_attribute_values(":price", n(product.price.won()))
            .build()?;
        Ok(TxOp {
            item: TransactWriteItem::builder().update(update).build(),
            label: TxItem::Stock(product.id.to_string()),
        })
    }

    /// Return `qty` reserved units.
    pub fn op_release_stock(&self, product: &ProductId, qty: Quantity) -> anyhow::Result<TxOp> {
        let (pk, sk) = keys::product(product);
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key(pk, sk)))
            .update_expression("SET available = available + :q")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":q", n(qty.get()))
            .build()?;
        Ok(TxOp {
            item: TransactWriteItem::builder().update(update).build(),
            label: TxItem::Stock(product.to_string()),
        })
    }

    /// Write `next` over a coupon that must still be exactly `prev` (status,
    /// owner and holding order).
    pub fn op_coupon_transition(&self, prev: &Coupon, next: &Coupon) -> anyhow::Result<TxOp> {
        let mut condition = "#status = :prevStatus AND ownerId = :owner".to_owned();
        let mut values = vec![(":prevStatus", s(prev.status.name())), (":owner", s(prev.owner.as_str()))];
        match prev.status.order_id() {
            Some(o) => {
                condition.push_str(" AND orderId = :prevOrder");
                values.push((":prevOrder", s(o.as_str())));
            }
            None => condition.push_str(" AND attribute_not_exists(orderId)"),
        }
        let mut builder = Put::builder()
            .table_name(self.table())
            .set_item(Some(entities::coupon_item(next)))
            .condition_expression(condition)
            .expression_attribute_names("#status", "status");
        for (k, v) in values {
            builder = builder.expression_attribute_values(k, v);
        }
        Ok(TxOp {
            item: TransactWriteItem::builder().put(builder.build()?).build(),
            label: TxItem::Coupon(next.id.to_string()),
        })
    }

    /// Change a balance from exactly `expected` to `entry.balance_after`, with
    /// its ledger row. The exact-match condition keeps `balanceAfter` true on
    /// every ledger row; a concurrent change makes the caller re-read and retry.
    pub fn ops_points(&self, expected: Money, entry: &LedgerEntry) -> anyhow::Result<[TxOp; 2]> {
        let (pk, sk) = keys::points(&entry.user_id);
        let balance = if expected.is_zero() {
            // A user with no points item has a zero balance.
            Put::builder()
                .table_name(self.table())
                .set_item(Some(entities::points_item(&entry.user_id, entry.balance_after)))
                .condition_expression("attribute_not_exists(pk) OR balance = :expected")
                .expression_attribute_values(":expected", n(0))
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())?
        } else {
            Update::builder()
                .table_name(self.table())
                .set_key(Some(key(pk, sk)))
                .update_expression("SET balance = :after")
                .condition_expression("balance = :expected")
                .expression_attribute_values(":after", n(entry.balance_after.won()))
                .expression_attribute_values(":expected", n(expected.won()))
                .build()
                .map(|u| TransactWriteItem::builder().update(u).build())?
        };
        Ok([
            TxOp { item: balance, label: TxItem::Points(entry.user_id.to_string()) },
            put(
                self.table(),
                entities::ledger_item(entry),
                "attribute_not_exists(pk)",
                TxItem::Ledger(entry.tx_id.clone()),
            )?,
        ])
    }

    /// A new order; fails if the id is taken.
    pub fn op_create_order(&self, order: &Order) -> anyhow::Result<TxOp> {
        put(self.table(), entities::order_item(order)?, "attribute_not_exists(pk)", TxItem::Order(order.id.to_string()))
    }

    /// The order after a transition, only over the version it was decided on.
    pub fn op_update_order(&self, prev_version: u64, order: &Order) -> anyhow::Result<TxOp> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(entities::order_item(order)?))
            .condition_expression("version = :prev")
            .expression_attribute_values(":prev", n(prev_version))
            .build()?;
        Ok(TxOp { item: TransactWriteItem::builder().put(put).build(), label: TxItem::Order(order.id.to_string()) })
    }

    /// The outbox item of `event`; its key is the event id, so it is written once.
    pub fn op_put_event(
        &self,
        event: &OrderEvent,
        correlation_id: &str,
        traceparent: Option<&str>,
        before: &entities::Before,
    ) -> anyhow::Result<TxOp> {
        put(
            self.table(),
            entities::event_item(event, correlation_id, traceparent, before)?,
            "attribute_not_exists(pk)",
            TxItem::Event(event.event_id().to_string()),
        )
    }

    /// Asserts the order is still at `version` without writing it.
    pub fn op_check_order_version(&self, order: &Order) -> anyhow::Result<TxOp> {
        let (pk, sk) = keys::order(&order.id);
        let check = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(key(pk, sk)))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(order.version))
            .build()?;
        Ok(TxOp {
            item: TransactWriteItem::builder().condition_check(check).build(),
            label: TxItem::Order(order.id.to_string()),
        })
    }

    /// Seeding: a product with its stock (overwrites), and its catalog
    /// listing entry.
    pub fn ops_seed_product(&self, product: &Product) -> anyhow::Result<[TxOp; 2]> {
        Ok([
            put(
                self.table(),
                entities::product_item(product),
                "attribute_exists(pk) OR attribute_not_exists(pk)",
                TxItem::Seed(product.id.to_string()),
            )?,
            put(
                self.table(),
                entities::catalog_entry_item(&product.id),
                "attribute_exists(pk) OR attribute_not_exists(pk)",
                TxItem::Seed(format!("catalog entry {}", product.id)),
            )?,
        ])
    }

    /// A new coupon; fails if its id is taken (seeding never resets a coupon
    /// in use, and a claim never overwrites one).
    pub fn op_create_coupon(&self, coupon: &Coupon) -> anyhow::Result<TxOp> {
        put(
            self.table(),
            entities::coupon_item(coupon),
            "attribute_not_exists(pk)",
            TxItem::Coupon(coupon.id.to_string()),
        )
    }

    /// A new campaign; fails if the id is taken (a campaign's counter is never reset).
    pub fn op_create_campaign(&self, campaign: &Campaign) -> anyhow::Result<TxOp> {
        put(
            self.table(),
            entities::campaign_item(campaign)?,
            "attribute_not_exists(pk)",
            TxItem::Campaign(campaign.id.to_string()),
        )
    }

    /// Counts one more coupon issued by the campaign, only while fewer than
    /// its total are. Not pinned to the count that was read: concurrent
    /// claims conflict only when the last coupon is at stake.
    pub fn op_count_claim(&self, campaign: &CampaignId) -> anyhow::Result<TxOp> {
        let (pk, sk) = keys::campaign(campaign);
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key(pk, sk)))
            .update_expression("SET issued = issued + :one")
            .condition_expression("issued < #total")
            .expression_attribute_names("#total", "total")
            .expression_attribute_values(":one", n(1))
            .build()?;
        Ok(TxOp {
            item: TransactWriteItem::builder().update(update).build(),
            label: TxItem::Campaign(campaign.to_string()),
        })
    }

    /// The user's claim marker; fails if the user claimed this campaign before.
    pub fn op_put_claim(&self, campaign: &CampaignId, coupon: &Coupon, at: Timestamp) -> anyhow::Result<TxOp> {
        put(
            self.table(),
            entities::claim_item(campaign, coupon, at),
            "attribute_not_exists(pk)",
            TxItem::Claim(coupon.owner.to_string()),
        )
    }

    /// The claim's `CouponIssued` outbox event.
    pub fn op_put_coupon_issued(&self, event: &CouponIssued, at: Timestamp) -> anyhow::Result<TxOp> {
        let pk = keys::claim_pk(&event.campaign_id, &event.data.user_id);
        put(
            self.table(),
            entities::coupon_issued_item(event, pk, at)?,
            "attribute_not_exists(pk)",
            TxItem::Event(event.event_id.clone()),
        )
    }

    /// A new payment record; fails if the PG's payment key was seen before.
    pub fn op_create_payment(&self, payment: &Payment) -> anyhow::Result<TxOp> {
        put(
            self.table(),
            entities::payment_item(payment)?,
            "attribute_not_exists(pk)",
            TxItem::Payment(payment.payment_key.to_string()),
        )
    }

    /// The payment after a transition, only over the version it was decided on.
    pub fn op_update_payment(&self, prev_version: u64, payment: &Payment) -> anyhow::Result<TxOp> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(entities::payment_item(payment)?))
            .condition_expression("version = :prev")
            .expression_attribute_values(":prev", n(prev_version))
            .build()?;
        Ok(TxOp {
            item: TransactWriteItem::builder().put(put).build(),
            label: TxItem::Payment(payment.payment_key.to_string()),
        })
    }
}
