//! Coupons: the item, its status transitions (each conditional on the
//! exact status, owner and holding order it was decided on), and a user's
//! coupons from `byUser`.

use crate::attr::{Item, get_n, get_s, item, money, n, s, with_key};
use crate::error::Result;
use crate::tx::{TxItem, TxOp, put};
use crate::{Store, keys};
use anyhow::{Context, anyhow};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use shop_domain::{Coupon, CouponId, CouponKind, CouponStatus, Money, OrderId, Timestamp, UserId};

/// Coupons (see [`Store::coupons`]).
#[derive(Clone, Copy)]
pub struct Coupons<'a>(pub(crate) &'a Store);

pub fn to_item(c: &Coupon) -> Item {
    let (kind, value) = c.kind.name_and_value();
    let mut it = with_key(
        item([
            ("type", s("COUPON")),
            ("couponId", s(c.id.as_str())),
            ("ownerId", s(c.owner.as_str())),
            ("kind", s(kind)),
            ("value", n(value)),
            ("minOrderAmount", n(c.min_order_amount.won())),
            ("couponExpiresAt", n(c.expires_at.millis())),
            ("status", s(c.status.name())),
            ("userPk", s(keys::user_pk(&c.owner))),
            ("userSk", s(format!("COUPON#{}", c.id))),
        ]),
        keys::coupon(&c.id),
    );
    if let Some(o) = c.status.order_id() {
        it.insert("orderId".into(), s(o.as_str()));
    }
    it
}

pub fn from_item(it: &Item) -> anyhow::Result<Coupon> {
    let value: u64 = get_n(it, "value")?;
    let kind = match get_s(it, "kind")? {
        "FIXED" => CouponKind::Fixed(Money::new(i128::from(value))?),
        "PERCENT" => CouponKind::Percent(u8::try_from(value).context("percent")?),
        other => return Err(anyhow!("unknown coupon kind {other}")),
    };
    let order = || -> anyhow::Result<OrderId> { Ok(OrderId::parse(get_s(it, "orderId")?)?) };
    let status = match get_s(it, "status")? {
        "ISSUED" => CouponStatus::Issued,
        "HELD" => CouponStatus::Held { order_id: order()? },
        "USED" => CouponStatus::Used { order_id: order()? },
        "EXPIRED" => CouponStatus::Expired,
        other => return Err(anyhow!("unknown coupon status {other}")),
    };
    Ok(Coupon {
        id: CouponId::parse(get_s(it, "couponId")?)?,
        owner: UserId::parse(get_s(it, "ownerId")?)?,
        kind,
        min_order_amount: money(it, "minOrderAmount")?,
        expires_at: Timestamp::from_millis(get_n(it, "couponExpiresAt")?),
        status,
    })
}

impl Coupons<'_> {
    pub async fn get(&self, id: &CouponId) -> Result<Option<Coupon>> {
        self.0.get(keys::coupon(id)).await?.map(|it| from_item(&it)).transpose().map_err(Into::into)
    }

    /// A user's coupons: their keys from the `byUser` index (keys only, so
    /// holding, using and releasing a coupon write no index entry), then
    /// the coupons by key, as they are now.
    pub async fn of_user(&self, user: &UserId) -> Result<Vec<Coupon>> {
        let condition = "userPk = :a AND begins_with(userSk, :b)";
        let entries = self
            .0
            .query_all(Some(keys::GSI_USER), condition, [(":a", &keys::user_pk(user)), (":b", "COUPON#")])
            .await?;
        let items = self.0.items_of(&entries).await?;
        Ok(items.iter().map(from_item).collect::<anyhow::Result<_>>()?)
    }

    /// A new coupon; fails if its id is taken (seeding never resets a coupon
    /// in use, and a claim never overwrites one).
    pub fn op_create(&self, coupon: &Coupon) -> anyhow::Result<TxOp> {
        put(self.0.table(), to_item(coupon), "attribute_not_exists(pk)", TxItem::Coupon(coupon.id.to_string()))
    }

    /// Write `next` over a coupon that must still be exactly `prev` (status,
    /// owner and holding order).
    pub fn op_transition(&self, prev: &Coupon, next: &Coupon) -> anyhow::Result<TxOp> {
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
            .table_name(self.0.table())
            .set_item(Some(to_item(next)))
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
}
