//! First-come coupon campaigns: `GET /campaigns/{campaignId}` (public: the
//! terms and what remains) and `POST /campaigns/{campaignId}/claim` (the
//! caller's one coupon, with an `Idempotency-Key`; the use case is
//! [`claim_coupon`]).

use crate::App;
use crate::http::idempotency::{self, Admission};
use crate::http::views::CouponView;
use crate::http::{self, Problem, RequestCtx};
use crate::usecases::campaigns::{ClaimError, claim_coupon};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shop_domain::campaign::ClaimRefused;
use shop_domain::{Campaign, CampaignId, Coupon, CouponKind};
use shop_store::idempotency::StoredResponse;

/// What remains moves with every claim: caches revalidate each time (the
/// `ETag` makes that a `304` while nothing changed).
pub const CACHE_CONTROL: &str = "public, no-cache";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignView {
    pub campaign_id: String,
    pub name: String,
    pub total: u32,
    pub issued: u32,
    pub remaining: u32,
    pub starts_at: String,
    pub ends_at: String,
    /// Whether a claim would be taken now (inside the window, not sold out).
    pub open: bool,
    pub coupon: CouponTermsView,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponTermsView {
    pub kind: &'static str,
    pub value: u64,
    pub min_order_amount: u64,
    pub expires_at: String,
}

impl CampaignView {
    pub fn of(c: &Campaign, now: shop_domain::Timestamp) -> Self {
        let (kind, value) = match c.coupon.kind {
            CouponKind::Fixed(v) => ("FIXED", v.won()),
            CouponKind::Percent(p) => ("PERCENT", u64::from(p)),
        };
        CampaignView {
            campaign_id: c.id.to_string(),
            name: c.name.clone(),
            total: c.total,
            issued: c.issued,
            remaining: c.remaining(),
            starts_at: c.starts_at.to_rfc3339(),
            ends_at: c.ends_at.to_rfc3339(),
            open: c.is_open(now),
            coupon: CouponTermsView {
                kind,
                value,
                min_order_amount: c.coupon.min_order_amount.won(),
                expires_at: c.coupon.expires_at.to_rfc3339(),
            },
        }
    }
}

fn campaign_param(req: &Request) -> Result<CampaignId, Problem> {
    http::path_param(req, "campaignId").and_then(|s| CampaignId::parse(s).ok()).ok_or_else(campaign_not_found)
}

fn campaign_not_found() -> Problem {
    Problem::not_found("campaign-not-found", "Campaign not found", "no such campaign")
}

/// `GET /campaigns/{campaignId}`.
pub async fn get_campaign(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("get_campaign", req, |req, ctx| async move {
        let id = campaign_param(&req)?;
        let campaign = app.store.get_campaign(&id).await.map_err(http::internal)?.ok_or_else(campaign_not_found)?;
        Ok(http::cacheable(&req, &CampaignView::of(&campaign, app.clock.now()), CACHE_CONTROL, &ctx))
    })
    .await
}

/// `POST /campaigns/{campaignId}/claim`: 201 with the coupon.
pub async fn claim(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("claim_coupon", req, |req, ctx| claim_inner(app, req, ctx)).await
}

async fn claim_inner(app: &App, req: Request, ctx: RequestCtx) -> Result<Response<Body>, Problem> {
    let user = http::caller(&req)?;
    let key = idempotency::key(&req)?;
    let id = campaign_param(&req)?;
    // The request is the campaign: the same key for another campaign is a reuse.
    let payload = serde_json::json!({ "campaignId": id.as_str() });
    let lock = match idempotency::admit(app, &format!("claims#{user}"), &key, &payload, &ctx).await? {
        Admission::Run(lock) => lock,
        Admission::Replay(answer) => return Ok(answer),
    };
    let now = app.clock.now();
    let render = |coupon: &Coupon| -> anyhow::Result<StoredResponse> {
        Ok(StoredResponse { status: 201, body: serde_json::to_string(&CouponView::of(coupon, now))? })
    };
    match claim_coupon(app, &user, &id, &lock, &ctx.correlation_id, &render).await {
        Ok((_, stored)) => Ok(http::raw(stored.status, "application/json", stored.body, &ctx)),
        Err(e) => {
            if let ClaimError::Unexpected(err) = &e {
                tracing::error!(error = ?err, "claim failed");
            } else {
                tracing::info!(reason = %e, "claim refused");
            }
            idempotency::release(app, &lock).await;
            Err(problem(&e))
        }
    }
}

fn problem(e: &ClaimError) -> Problem {
    let detail = e.to_string();
    match e {
        ClaimError::UnknownCampaign(_) => campaign_not_found(),
        ClaimError::Refused(r) => match r {
            ClaimRefused::NotStarted { starts_at, .. } => {
                Problem::new(409, "campaign-not-started", "Campaign not started", detail)
                    .with("startsAt", starts_at.to_rfc3339())
            }
            ClaimRefused::Ended { ends_at, .. } => {
                Problem::new(409, "campaign-ended", "Campaign ended", detail).with("endsAt", ends_at.to_rfc3339())
            }
            ClaimRefused::SoldOut { total, .. } => {
                Problem::new(409, "campaign-sold-out", "Campaign sold out", detail).with("total", *total)
            }
            ClaimRefused::AlreadyClaimed { .. } => {
                Problem::new(409, "campaign-already-claimed", "Already claimed", detail)
            }
        },
        ClaimError::Contention(c) => http::contention(*c, "too many concurrent claims; retry"),
        ClaimError::Unexpected(_) => Problem::internal(),
    }
}
