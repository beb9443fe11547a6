//! First-come coupon campaigns: `POST /campaigns` (operators only: a new
//! campaign; the use case is [`create_campaign`]), `GET
//! /campaigns/{campaignId}` (public: the terms and what remains) and `POST
//! /campaigns/{campaignId}/claim` (the caller's one coupon, with an
//! `Idempotency-Key`; the use case is [`claim_coupon`]).

use crate::App;
use crate::http::coupons::CouponView;
use crate::http::idempotency;
use crate::http::{self, Problem, RequestCtx};
use crate::usecases::campaigns::{ClaimError, Created, claim_coupon, create_campaign};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shop_domain::campaign::{ClaimRefused, CouponTerms, InvalidCampaign};
use shop_domain::json::Integer;
use shop_domain::{Campaign, CampaignId, Coupon, CouponKind, Money, Timestamp};
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
        let (kind, value) = c.coupon.kind.name_and_value();
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
        let campaign = app.store.campaigns().get(&id).await.map_err(http::internal)?.ok_or_else(campaign_not_found)?;
        Ok(http::cacheable(&req, &CampaignView::of(&campaign, app.clock.now()), CACHE_CONTROL, &ctx))
    })
    .await
}

/// `POST /campaigns`'s body (the document's `CreateCampaignRequest`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateCampaignRequest {
    campaign_id: String,
    name: String,
    total: Integer,
    /// RFC 3339; now when absent.
    #[serde(default)]
    starts_at: Option<String>,
    ends_at: String,
    coupon: CouponTermsRequest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CouponTermsRequest {
    kind: KindRequest,
    value: Integer,
    #[serde(default)]
    min_order_amount: Option<Integer>,
    expires_at: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum KindRequest {
    Fixed,
    Percent,
}

const NAME_MAX_CHARS: usize = 200;

impl CreateCampaignRequest {
    /// The campaign asked for, and whether it named its start. What the
    /// document's schema refuses is a 400; a schema-valid request a rule
    /// refuses (a blank name, a window that ends before it starts, a coupon
    /// expiring before the campaign starts) is a 422 `invalid-campaign`.
    fn parse(self, now: Timestamp) -> Result<(Campaign, StartsAt), Problem> {
        let bad = |what: &str| Problem::bad_request(what.to_owned());
        let id = CampaignId::parse(self.campaign_id).map_err(|e| bad(&format!("campaignId: {e}")))?;
        if !(1..=NAME_MAX_CHARS).contains(&self.name.chars().count()) {
            return Err(bad("name must be 1 to 200 characters"));
        }
        let total = u64::try_from(self.total.0)
            .ok()
            .filter(|t| (1..=u64::from(Campaign::MAX_TOTAL)).contains(t))
            .ok_or_else(|| bad(&format!("total must be from 1 to {}", Campaign::MAX_TOTAL)))?;
        let time = |field: &str, s: &str| {
            Timestamp::parse_rfc3339(s).ok_or_else(|| bad(&format!("{field} {s:?} is not an RFC 3339 date-time")))
        };
        let (starts_at, named) = match self.starts_at.as_deref() {
            Some(s) => (time("startsAt", s)?, StartsAt::Named),
            None => (now, StartsAt::Now),
        };
        let ends_at = time("endsAt", &self.ends_at)?;
        let c = &self.coupon;
        let kind = match c.kind {
            KindRequest::Fixed => Money::new(i128::from(c.value.0))
                .ok()
                .filter(|v| !v.is_zero())
                .map(CouponKind::Fixed)
                .ok_or_else(|| bad(&format!("coupon.value: a FIXED coupon takes 1 to {} won", Money::MAX.won())))?,
            KindRequest::Percent => u8::try_from(c.value.0)
                .ok()
                .filter(|p| (1..=100).contains(p))
                .map(CouponKind::Percent)
                .ok_or_else(|| bad("coupon.value: a PERCENT coupon takes 1 to 100"))?,
        };
        let min_order_amount = Money::new(i128::from(c.min_order_amount.map_or(0, |m| m.0)))
            .map_err(|e| bad(&format!("coupon.minOrderAmount: {e}")))?;
        let terms = CouponTerms { kind, min_order_amount, expires_at: time("coupon.expiresAt", &c.expires_at)? };
        let campaign = Campaign::new(id, self.name, total, starts_at, ends_at, terms).map_err(|e| {
            let problem = Problem::new(422, "invalid-campaign", "Invalid campaign", e.to_string());
            match e {
                InvalidCampaign::Window => problem.with("field", "endsAt"),
                InvalidCampaign::CouponExpiry => problem.with("field", "coupon.expiresAt"),
                InvalidCampaign::Name => problem.with("field", "name"),
                InvalidCampaign::Total { .. } => problem.with("field", "total"),
                InvalidCampaign::Coupon(_) => problem.with("field", "coupon"),
            }
        })?;
        Ok((campaign, named))
    }
}

/// Whether the request named its `startsAt`. One that did not ("now") is a
/// retry of the stored campaign whatever start that one got: a start of
/// "now" differs on every send, and a retry must not become a 409.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartsAt {
    Named,
    Now,
}

impl StartsAt {
    fn same_campaign(self, existing: &Campaign, asked: &Campaign) -> bool {
        match self {
            StartsAt::Named => existing.same_terms(asked),
            StartsAt::Now => existing.same_terms(&Campaign { starts_at: existing.starts_at, ..asked.clone() }),
        }
    }
}

/// `POST /campaigns` (operators only): 201 with the new campaign and its
/// `Location`. The campaign id is the request's identity: sending the same
/// campaign again answers 200 with it as it stands (so a retry is safe), the
/// same id with other terms a 409 `campaign-exists`; nothing is changed
/// either way.
pub async fn create(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("create_campaign", req, |req, ctx| async move {
        let operator = http::operator(&req)?;
        let now = app.clock.now();
        let (asked, starts) = http::parse::<CreateCampaignRequest>(http::json_body(&req)?)?.parse(now)?;
        match create_campaign(app, &asked).await.map_err(http::internal)? {
            Created::New => {
                tracing::info!(%operator, campaign_id = %asked.id, "campaign created by an operator");
                let mut resp = http::json(201, &CampaignView::of(&asked, now), &ctx);
                if let Ok(location) = lambda_http::http::HeaderValue::from_str(&format!("/campaigns/{}", asked.id)) {
                    resp.headers_mut().insert(lambda_http::http::header::LOCATION, location);
                }
                Ok(resp)
            }
            Created::Existing(existing) if starts.same_campaign(&existing, &asked) => {
                Ok(http::json(200, &CampaignView::of(&existing, now), &ctx))
            }
            Created::Existing(existing) => Err(Problem::new(
                409,
                "campaign-exists",
                "Campaign exists",
                format!("campaign {} exists with other terms; it is kept as it is", existing.id),
            )
            .with("campaignId", existing.id.as_str())),
        }
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
    let ticket = idempotency::ticket(app, &format!("claims#{user}"), &key, &payload);
    let now = app.clock.now();
    let render = |coupon: &Coupon| -> anyhow::Result<StoredResponse> {
        Ok(StoredResponse { status: 201, body: serde_json::to_string(&CouponView::of(coupon, now))? })
    };
    match claim_coupon(app, &user, &id, &ticket, &ctx.correlation_id, &render).await {
        Ok((_, stored)) => Ok(http::raw(stored.status, "application/json", stored.body, &ctx)),
        Err(e) => {
            let unexpected = match &e {
                ClaimError::Unexpected(err) => Some(err),
                _ => None,
            };
            idempotency::refused(app, &ticket, &ctx, &e, unexpected, "claim coupon").await
        }
    }
}

impl From<&ClaimError> for Problem {
    fn from(e: &ClaimError) -> Problem {
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
            ClaimError::KeyUsed => idempotency::in_progress(),
            ClaimError::Unexpected(_) => Problem::internal(),
        }
    }
}
