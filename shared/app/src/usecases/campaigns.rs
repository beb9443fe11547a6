//! First-come coupon campaigns: creating one ([`create_campaign`]: the
//! operator's `POST /campaigns`, the catalog file, `shop campaign create`) and
//! claiming its coupon ([`claim_coupon`]).
//!
//! Claiming a first-come campaign's coupon: one DynamoDB transaction counts
//! the claim on the campaign (only while fewer than its total are issued),
//! writes the user's claim marker (only if absent: one coupon per user),
//! the new ISSUED coupon, its `CouponIssued` outbox event, and completes the
//! idempotency record with the response. Either all of it happens or none.
//!
//! The read before it (campaign, the user's claim) refuses a sold-out,
//! closed or already-claimed request without writing anything, so a rush
//! past the total costs one read each; the conditions make the answer true
//! when claims race.

use crate::App;
use crate::usecases::retry::{Step, retry};
use shop_domain::campaign::{ClaimRefused, CouponIssued};
use shop_domain::{Campaign, CampaignId, Coupon, CouponId, UserId};
use shop_store::idempotency::{StoredResponse, Ticket};
use shop_store::{ConflictReason, StoreError, Tx, TxItem, keys};

/// What [`create_campaign`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The campaign is new: written as asked, nothing issued.
    New,
    /// A campaign with its id exists (this one, as stored now): it is kept
    /// as it is, its counter never reset. The caller decides whether the
    /// terms asked for are the same ([`Campaign::same_terms`]).
    Existing(Campaign),
}

/// Creates `campaign` (nothing issued yet): one conditional put, so two
/// operators creating the same id at once get one campaign.
pub async fn create_campaign(app: &App, campaign: &Campaign) -> Result<Created, StoreError> {
    let mut tx = Tx::new();
    tx.push(app.store.campaigns().op_create(campaign)?);
    match app.store.transact(tx).await {
        Ok(()) => {
            tracing::info!(campaign_id = %campaign.id, total = campaign.total, "campaign created");
            Ok(Created::New)
        }
        Err(StoreError::Conflict { item: TxItem::Campaign(_), reason: ConflictReason::ConditionFailed }) => {
            // The put's condition saw it, so a strongly consistent read does.
            let existing = app.store.campaigns().get(&campaign.id).await?.ok_or_else(|| {
                StoreError::Unexpected(anyhow::anyhow!("campaign {} refused as existing, then not found", campaign.id))
            })?;
            Ok(Created::Existing(existing))
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("unknown campaign {0}")]
    UnknownCampaign(CampaignId),
    #[error(transparent)]
    Refused(#[from] ClaimRefused),
    /// The request's idempotency key was recorded by another request first.
    #[error("the idempotency key was used by another request")]
    KeyUsed,
    #[error(transparent)]
    Contention(crate::usecases::retry::Contended),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::usecases::retry::use_case_error!(ClaimError);

/// How the caller shows the issued coupon; stored with the idempotency
/// record so a replay answers exactly the same.
pub type Render<'a> = &'a (dyn Fn(&Coupon) -> anyhow::Result<StoredResponse> + Sync);

#[tracing::instrument(skip_all, fields(campaign_id = %campaign))]
pub async fn claim_coupon(
    app: &App,
    user: &UserId,
    campaign: &CampaignId,
    ticket: &Ticket,
    correlation_id: &str,
    render: Render<'_>,
) -> Result<(Coupon, StoredResponse), ClaimError> {
    retry(user.as_str(), |_| attempt(app, user, campaign, ticket, correlation_id, render)).await
}

async fn attempt(
    app: &App,
    user: &UserId,
    id: &CampaignId,
    ticket: &Ticket,
    correlation_id: &str,
    render: Render<'_>,
) -> Result<(Coupon, StoredResponse), Step<ClaimError>> {
    let campaign =
        app.store.campaigns().get(id).await?.ok_or_else(|| Step::Fail(ClaimError::UnknownCampaign(id.clone())))?;
    if app.store.campaigns().claimed_coupon(id, user).await?.is_some() {
        return Err(Step::Fail(ClaimRefused::AlreadyClaimed { id: id.clone() }.into()));
    }
    let now = app.clock.now();
    let coupon_id = CouponId::parse(app.ids.tx_id()).map_err(|e| Step::Fail(anyhow::Error::from(e).into()))?;
    let coupon = campaign.claim(user, coupon_id, now).map_err(|r| Step::Fail(r.into()))?;
    let event_id = format!("{}#1", keys::claim_pk(id, user));
    let event = CouponIssued::new(event_id, id, &coupon, now, correlation_id);
    let response = render(&coupon)?;

    let mut tx = Tx::new();
    tx.push(app.store.campaigns().op_count_claim(id)?);
    tx.push(app.store.campaigns().op_put_claim(id, &coupon, now)?);
    tx.push(app.store.coupons().op_create(&coupon)?);
    tx.push(app.store.outbox().op_put_coupon_issued(&event, now)?);
    tx.push(app.store.idempotency().op_record(ticket, &response)?);
    match app.store.transact(tx).await {
        Ok(()) => {
            tracing::info!(coupon_id = %coupon.id, "coupon issued");
            Ok((coupon, response))
        }
        // The same user claimed with another key a moment ago.
        Err(StoreError::Conflict { item: TxItem::Claim(_), reason: ConflictReason::ConditionFailed }) => {
            Err(Step::Fail(ClaimRefused::AlreadyClaimed { id: id.clone() }.into()))
        }
        Err(StoreError::Conflict { item: TxItem::Idempotency, .. }) => Err(Step::Fail(ClaimError::KeyUsed)),
        // The last coupons went to others between our read and write (the
        // re-read answers SoldOut), or a concurrent transaction: retried.
        Err(e) => Err(e.into()),
    }
}
