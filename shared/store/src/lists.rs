//! The paged reads behind the list routes (`GET /products`, `GET /orders`)
//! and the campaign reads. Each page costs a bounded number of items read,
//! whatever the length of the list behind it: a position (the last key
//! handed out) is where the next page starts.

use crate::attr::{Item, get_s, key, s};
use crate::{Result, Store, StoreError, entities, keys};
use aws_sdk_dynamodb::types::AttributeValue;
use shop_domain::{Campaign, CampaignId, CouponId, Order, OrderStatus, Product, ProductId, UserId};
use std::collections::HashMap;

/// Items a filtered page of a user's orders examines at most. A filter
/// that matches rarely answers a short page (even an empty one) with a
/// position to go on from, instead of reading the whole history.
pub const ORDERS_EXAMINED: i32 = 500;

/// Where a page of a user's orders ends: `<createdAt ms, 13 digits>#<orderId>`
/// (the `byUser` sort key without its `ORDER#` prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPosition(pub String);

impl OrderPosition {
    /// A position as a client may send it back; `None` if it cannot be one.
    pub fn parse(s: &str) -> Option<OrderPosition> {
        let (ms, id) = s.split_once('#')?;
        let ok = ms.len() == 13 && ms.bytes().all(|b| b.is_ascii_digit()) && shop_domain::OrderId::parse(id).is_ok();
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

impl Store {
    /// One page of the catalog in product id order: at most `limit`
    /// products after `after`, and the position of the next page when
    /// there is one. Name, price and stock come from each product's item
    /// (one BatchGetItem, consistent), so the stock shown is the stock now.
    pub async fn catalog_page(
        &self,
        limit: usize,
        after: Option<&ProductId>,
    ) -> Result<(Vec<Product>, Option<ProductId>)> {
        let fetch = i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX);
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::CATALOG_PK))
            .expression_attribute_values(":prefix", s(keys::CATALOG_PREFIX))
            .consistent_read(true)
            .limit(fetch)
            .set_exclusive_start_key(after.map(|p| {
                let (pk, sk) = keys::catalog_entry(p);
                key(pk, sk)
            }))
            .send()
            .await
            .map_err(StoreError::unexpected("Query catalog"))?;
        let entries = out.items.unwrap_or_default();
        let more = entries.len() > limit;
        let ids = entries
            .iter()
            .take(limit)
            .map(|it| Ok(ProductId::parse(get_s(it, "productId")?)?))
            .collect::<anyhow::Result<Vec<ProductId>>>()?;
        let mut found: HashMap<ProductId, Product> = HashMap::new();
        for it in self.batch_get(ids.iter().map(keys::product).collect()).await? {
            let p = entities::product_from(&it)?;
            found.insert(p.id.clone(), p);
        }
        let next = if more { ids.last().cloned() } else { None };
        // An entry whose product is gone is skipped, never shown half.
        Ok((ids.iter().filter_map(|id| found.remove(id)).collect(), next))
    }

    /// One page of `user`'s orders, newest first, from the `byUser` index
    /// (eventually consistent: an order placed a moment ago may show on the
    /// next read). With `status`, only orders in it; such a page examines
    /// at most [`ORDERS_EXAMINED`] orders and may hold fewer than `limit`
    /// (even none) with a next position.
    pub async fn orders_page(
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
            let mut q = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(keys::GSI_USER)
                .key_condition_expression("userPk = :u AND begins_with(userSk, :p)")
                .expression_attribute_values(":u", s(keys::user_pk(user)))
                .expression_attribute_values(":p", s("ORDER#"))
                .scan_index_forward(false)
                .limit((per_call - examined).max(1))
                .set_exclusive_start_key(start.take());
            if let Some(st) = status {
                q = q
                    .filter_expression("#status = :status")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":status", s(st.as_str()));
            }
            let out = q.send().await.map_err(StoreError::unexpected("Query byUser"))?;
            examined = examined.saturating_add(out.scanned_count);
            for it in out.items.unwrap_or_default() {
                found.push(entities::order_from(&it)?);
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

    pub async fn get_campaign(&self, id: &CampaignId) -> Result<Option<Campaign>> {
        self.get(keys::campaign(id)).await?.map(|it| entities::campaign_from(&it)).transpose().map_err(Into::into)
    }

    /// The coupon `user`'s claim of the campaign issued, if they claimed it.
    pub async fn claimed_coupon(&self, campaign: &CampaignId, user: &UserId) -> Result<Option<CouponId>> {
        match self.get(keys::claim(campaign, user)).await? {
            Some(it) => Ok(Some(CouponId::parse(get_s(&it, "couponId")?).map_err(anyhow::Error::from)?)),
            None => Ok(None),
        }
    }
}
