//! First-come coupon campaigns: the campaign (its terms in `doc`, its
//! `issued` counter and `total` native, which the claim's conditional
//! update works on) and each user's claim marker under its own key.
//! A claim's `CouponIssued` event is the outbox's ([`crate::outbox`]).

use crate::attr::{Item, get_n, get_s, item, key, n, s, with_key};
use crate::error::Result;
use crate::tx::{TxItem, TxOp, put};
use crate::{Store, keys};
use anyhow::Context;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use shop_domain::{Campaign, CampaignId, Coupon, CouponId, Timestamp, UserId};

/// Campaigns and claims (see [`Store::campaigns`]).
#[derive(Clone, Copy)]
pub struct Campaigns<'a>(pub(crate) &'a Store);

pub fn to_item(c: &Campaign) -> anyhow::Result<Item> {
    Ok(with_key(
        item([
            ("type", s("CAMPAIGN")),
            ("campaignId", s(c.id.as_str())),
            ("total", n(c.total)),
            ("issued", n(c.issued)),
            ("doc", s(serde_json::to_string(c)?)),
        ]),
        keys::campaign(&c.id),
    ))
}

pub fn from_item(it: &Item) -> anyhow::Result<Campaign> {
    let mut c: Campaign = serde_json::from_str(get_s(it, "doc")?).context("campaign document")?;
    // The counter moves without rewriting the document.
    c.issued = get_n(it, "issued")?;
    c.total = get_n(it, "total")?;
    Ok(c)
}

/// The marker of a user's claim of a campaign: which coupon it issued.
fn claim_item(campaign: &CampaignId, coupon: &Coupon, at: Timestamp) -> Item {
    with_key(
        item([
            ("type", s("CLAIM")),
            ("campaignId", s(campaign.as_str())),
            ("userId", s(coupon.owner.as_str())),
            ("couponId", s(coupon.id.as_str())),
            ("at", n(at.millis())),
        ]),
        keys::claim(campaign, &coupon.owner),
    )
}

impl Campaigns<'_> {
    pub async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>> {
        self.0.get(keys::campaign(id)).await?.map(|it| from_item(&it)).transpose().map_err(Into::into)
    }

    /// The coupon `user`'s claim of the campaign issued, if they claimed it.
    pub async fn claimed_coupon(&self, campaign: &CampaignId, user: &UserId) -> Result<Option<CouponId>> {
        match self.0.get(keys::claim(campaign, user)).await? {
            Some(it) => Ok(Some(CouponId::parse(get_s(&it, "couponId")?).map_err(anyhow::Error::from)?)),
            None => Ok(None),
        }
    }

    /// A new campaign; fails if the id is taken (a campaign's counter is never reset).
    pub fn op_create(&self, campaign: &Campaign) -> anyhow::Result<TxOp> {
        put(self.0.table(), to_item(campaign)?, "attribute_not_exists(pk)", TxItem::Campaign(campaign.id.to_string()))
    }

    /// Counts one more coupon issued by the campaign, only while fewer than
    /// its total are. Not pinned to the count that was read: concurrent
    /// claims conflict only when the last coupon is at stake.
    pub fn op_count_claim(&self, campaign: &CampaignId) -> anyhow::Result<TxOp> {
        let (pk, sk) = keys::campaign(campaign);
        let update = Update::builder()
            .table_name(self.0.table())
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
            self.0.table(),
            claim_item(campaign, coupon, at),
            "attribute_not_exists(pk)",
            TxItem::Claim(coupon.owner.to_string()),
        )
    }
}
