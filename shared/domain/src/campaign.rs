//! First-come coupon campaigns: a limited number of coupons, one per user,
//! claimable inside a validity window.
//!
//! ```text
//! claim(user, now) ── now < startsAt ──► NotStarted
//!                  ── now ≥ endsAt ────► Ended
//!                  ── issued = total ──► SoldOut
//!                  ── otherwise ───────► a new ISSUED coupon for the user, issued + 1
//! ```
//! The decision here is made on a read; the store makes it true: the
//! claim's transaction increments `issued` only while `issued < total` and
//! writes the user's claim marker only if absent, so a rush of claims can
//! never issue more than `total` or two coupons to one user, whatever the
//! read said.

use crate::coupon::CouponError;
use crate::{CampaignId, Coupon, CouponId, CouponKind, CouponStatus, Money, Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// The coupon every claim of a campaign issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponTerms {
    pub kind: CouponKind,
    pub min_order_amount: Money,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: CampaignId,
    pub name: String,
    /// Coupons the campaign issues at most: 1..=[`Campaign::MAX_TOTAL`].
    pub total: u32,
    /// Coupons issued so far; never more than `total`.
    pub issued: u32,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub coupon: CouponTerms,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCampaign {
    #[error("total must be from 1 to {max}, got {got}", max = Campaign::MAX_TOTAL)]
    Total { got: u64 },
    #[error("name must be 1 to 200 characters")]
    Name,
    #[error("endsAt must be after startsAt")]
    Window,
    #[error("the coupon must expire after the campaign starts")]
    CouponExpiry,
    #[error(transparent)]
    Coupon(#[from] CouponError),
}

/// Why a claim issues nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimRefused {
    #[error("campaign {id} starts at {}", starts_at.to_rfc3339())]
    NotStarted { id: CampaignId, starts_at: Timestamp },
    #[error("campaign {id} ended at {}", ends_at.to_rfc3339())]
    Ended { id: CampaignId, ends_at: Timestamp },
    #[error("campaign {id} has issued all {total} of its coupons")]
    SoldOut { id: CampaignId, total: u32 },
    #[error("this user already holds campaign {id}'s coupon")]
    AlreadyClaimed { id: CampaignId },
}

impl Campaign {
    /// A campaign larger than this is a typo, not a promotion.
    pub const MAX_TOTAL: u32 = 1_000_000;

    /// A new campaign, nothing issued yet, checked.
    pub fn new(
        id: CampaignId,
        name: String,
        total: u64,
        starts_at: Timestamp,
        ends_at: Timestamp,
        coupon: CouponTerms,
    ) -> Result<Campaign, InvalidCampaign> {
        let total = u32::try_from(total)
            .ok()
            .filter(|t| (1..=Self::MAX_TOTAL).contains(t))
            .ok_or(InvalidCampaign::Total { got: total })?;
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(InvalidCampaign::Name);
        }
        if ends_at <= starts_at {
            return Err(InvalidCampaign::Window);
        }
        if coupon.expires_at <= starts_at {
            return Err(InvalidCampaign::CouponExpiry);
        }
        Coupon::validate_kind(coupon.kind)?;
        Ok(Campaign { id, name, total, issued: 0, starts_at, ends_at, coupon })
    }

    /// Whether `other` asks for this campaign: everything but what was issued.
    pub fn same_terms(&self, other: &Campaign) -> bool {
        let Campaign { id, name, total, issued: _, starts_at, ends_at, coupon } = other;
        (&self.id, &self.name, self.total, self.starts_at, self.ends_at, &self.coupon)
            == (id, name, *total, *starts_at, *ends_at, coupon)
    }

    pub fn remaining(&self) -> u32 {
        self.total.saturating_sub(self.issued)
    }

    /// Whether claims are taken at `now` (inside the window, not sold out).
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.starts_at <= now && now < self.ends_at && self.remaining() > 0
    }

    /// The coupon `user` gets by claiming at `now`, as `coupon_id`.
    pub fn claim(&self, user: &UserId, coupon_id: CouponId, now: Timestamp) -> Result<Coupon, ClaimRefused> {
        if now < self.starts_at {
            return Err(ClaimRefused::NotStarted { id: self.id.clone(), starts_at: self.starts_at });
        }
        // A coupon that would be born expired is no coupon: the campaign is over.
        if now >= self.ends_at || now >= self.coupon.expires_at {
            return Err(ClaimRefused::Ended { id: self.id.clone(), ends_at: self.ends_at.min(self.coupon.expires_at) });
        }
        if self.remaining() == 0 {
            return Err(ClaimRefused::SoldOut { id: self.id.clone(), total: self.total });
        }
        Ok(Coupon {
            id: coupon_id,
            owner: user.clone(),
            kind: self.coupon.kind,
            min_order_amount: self.coupon.min_order_amount,
            expires_at: self.coupon.expires_at,
            status: CouponStatus::Issued,
        })
    }
}

/// `source` of campaign events on the bus.
pub const SOURCE: &str = "shop.campaigns";
/// `detail-type` of the event a claim writes (events/schemas/CouponIssued.json).
pub const COUPON_ISSUED: &str = "CouponIssued";

/// The `detail` of a `CouponIssued` event. Its id is the claim's (one per
/// campaign and user), so every delivery and replay carries the same one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponIssued {
    pub event_id: String,
    pub event_version: u32,
    pub campaign_id: CampaignId,
    /// RFC 3339, UTC.
    pub occurred_at: String,
    pub correlation_id: String,
    pub data: CouponIssuedData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponIssuedData {
    pub coupon_id: CouponId,
    pub user_id: UserId,
    /// `FIXED` (won off) or `PERCENT`.
    pub kind: String,
    pub value: u64,
    pub min_order_amount: u64,
    pub expires_at: String,
}

impl CouponIssued {
    /// The event of `coupon` issued by `campaign` at `at`; `event_id` names the claim.
    pub fn new(event_id: String, campaign: &CampaignId, coupon: &Coupon, at: Timestamp, correlation_id: &str) -> Self {
        let (kind, value) = coupon.kind.name_and_value();
        CouponIssued {
            event_id,
            event_version: crate::envelope::EVENT_VERSION,
            campaign_id: campaign.clone(),
            occurred_at: at.to_rfc3339(),
            correlation_id: correlation_id.to_owned(),
            data: CouponIssuedData {
                coupon_id: coupon.id.clone(),
                user_id: coupon.owner.clone(),
                kind: kind.to_owned(),
                value,
                min_order_amount: coupon.min_order_amount.won(),
                expires_at: coupon.expires_at.to_rfc3339(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    fn campaign(total: u64) -> Campaign {
        let terms = CouponTerms {
            kind: CouponKind::Fixed(Money::new(3000).unwrap()),
            min_order_amount: Money::new(10_000).unwrap(),
            expires_at: at(500),
        };
        Campaign::new(CampaignId::parse("rush").unwrap(), "Rush".into(), total, at(100), at(200), terms).unwrap()
    }

    #[test]
    fn a_claim_inside_the_window_issues_the_campaigns_coupon() {
        let c = campaign(2);
        let user = UserId::parse("u1").unwrap();
        let coupon = c.claim(&user, CouponId::parse("k1").unwrap(), at(150)).unwrap();
        assert_eq!(coupon.owner, user);
        assert_eq!(coupon.status, CouponStatus::Issued);
        assert_eq!(coupon.kind, c.coupon.kind);
        assert_eq!(coupon.expires_at, at(500));
        assert!(c.is_open(at(150)));
    }

    #[test]
    fn the_same_terms_ignore_what_was_issued_and_nothing_else() {
        let c = campaign(2);
        let claimed = Campaign { issued: 1, ..c.clone() };
        assert!(c.same_terms(&claimed));
        assert!(!c.same_terms(&campaign(3)));
        assert!(!c.same_terms(&Campaign { name: "Other".into(), ..c.clone() }));
        assert!(!c.same_terms(&Campaign { ends_at: at(201), ..c.clone() }));
        let coupon = CouponTerms { min_order_amount: Money::ZERO, ..c.coupon.clone() };
        assert!(!c.same_terms(&Campaign { coupon, ..c.clone() }));
    }

    #[test]
    fn claims_outside_the_window_or_past_the_total_are_refused() {
        let mut c = campaign(2);
        let user = UserId::parse("u1").unwrap();
        let id = || CouponId::parse("k1").unwrap();
        assert!(matches!(c.claim(&user, id(), at(99)), Err(ClaimRefused::NotStarted { .. })));
        assert!(matches!(c.claim(&user, id(), at(200)), Err(ClaimRefused::Ended { .. })));
        c.issued = 2;
        assert_eq!(c.remaining(), 0);
        assert!(matches!(c.claim(&user, id(), at(150)), Err(ClaimRefused::SoldOut { total: 2, .. })));
        assert!(!c.is_open(at(150)));
    }

    #[test]
    fn a_campaign_is_checked_when_made() {
        let terms = campaign(1).coupon;
        let id = || CampaignId::parse("x").unwrap();
        assert!(matches!(
            Campaign::new(id(), "x".into(), 0, at(1), at(2), terms.clone()),
            Err(InvalidCampaign::Total { .. })
        ));
        assert!(matches!(
            Campaign::new(id(), "x".into(), 1, at(2), at(2), terms.clone()),
            Err(InvalidCampaign::Window)
        ));
        assert!(matches!(Campaign::new(id(), " ".into(), 1, at(1), at(2), terms.clone()), Err(InvalidCampaign::Name)));
        let born_expired = CouponTerms { expires_at: at(1), ..terms.clone() };
        assert!(matches!(
            Campaign::new(id(), "x".into(), 1, at(1), at(2), born_expired),
            Err(InvalidCampaign::CouponExpiry)
        ));
        let bad_kind = CouponTerms { kind: CouponKind::Percent(0), ..terms };
        assert!(matches!(Campaign::new(id(), "x".into(), 1, at(1), at(2), bad_kind), Err(InvalidCampaign::Coupon(_))));
    }
}
