//! Flash sales behind the waiting room (docs/waiting-room.md): `POST
//! /sales` (operators), `GET /sales/{saleId}` (public: the figures),
//! `POST /sales/{saleId}/queue` (enter), `GET /sales/{saleId}/queue/me`
//! (one's ticket: position, and once admitted the admission token) and
//! `DELETE /sales/{saleId}/queue/me` (leave). The use cases are in
//! [`crate::usecases::sales`]; the token in [`crate::admission`].

use crate::App;
use crate::admission::{self, AdmissionToken};
use crate::http::{self, Problem, RequestCtx};
use crate::usecases::sales::{self as uc, CreateSaleError, Created, EnterError, LeaveError, SaleStatus, TicketView};
use lambda_http::http::HeaderValue;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shop_domain::json::Integer;
use shop_domain::sale::{InvalidSale, Sale, SaleTerms, Shown, TicketError};
use shop_domain::{ProductId, SaleId, Timestamp};

/// The figures move every second of a sale: shared caches may keep them
/// that long (`GET /sales/{id}` costs four reads, whoever asks).
pub const SALE_CACHE_CONTROL: &str = "public, max-age=1";
/// One's ticket: never in a shared cache; revalidated (a `304` while
/// nothing changed).
pub const TICKET_CACHE_CONTROL: &str = "private, no-cache";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SaleView {
    pub sale_id: String,
    pub name: String,
    pub products: Vec<String>,
    pub state: &'static str,
    pub starts_at: String,
    pub ends_at: String,
    pub capacity: u32,
    pub max_admissions_per_sec: u32,
    pub session_secs: u32,
    /// Entries so far (an upper bound: a double entry's second number counts).
    pub entered: u64,
    /// Waiting now, about (entered less admitted; 0 once sold out or ended).
    pub waiting: u64,
    /// Holding a slot now.
    pub active: u64,
    pub admitted: u64,
    /// Units the sale's orders took, paid or being paid.
    pub sold: u64,
    pub units_left: u64,
    /// Admissions per second in force (the adaptive rule's choice).
    pub admission_rate: f64,
    /// Seconds a shopper entering now would wait, about.
    pub estimated_wait_secs: u64,
}

impl SaleView {
    pub fn of(s: &SaleStatus) -> SaleView {
        let t = &s.sale.terms;
        SaleView {
            sale_id: s.sale.id.to_string(),
            name: t.name.clone(),
            products: t.products.iter().map(ToString::to_string).collect(),
            state: s.state.as_str(),
            starts_at: t.starts_at.to_rfc3339(),
            ends_at: t.ends_at.to_rfc3339(),
            capacity: t.capacity,
            max_admissions_per_sec: t.max_admissions_per_sec,
            session_secs: t.session_secs,
            entered: s.entered,
            waiting: s.waiting,
            active: s.active,
            admitted: s.sale.admitted,
            sold: s.sold,
            units_left: s.units_left,
            admission_rate: (s.sale.rate * 100.0).round() / 100.0,
            estimated_wait_secs: s.wait_secs,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketBody {
    pub sale_id: String,
    pub status: Shown,
    pub sale_state: &'static str,
    pub entered_at: String,
    /// Entered before the start: placed by the opening's draw.
    pub pre_queue: bool,
    /// While waiting: shoppers ahead (a bound; an estimate in the pre-queue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ahead: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_secs: Option<u64>,
    /// While admitted: send `token` as the `Admission` header of `POST /orders`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission: Option<AdmissionBody>,
    /// The order the admission placed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// While waiting: opens a WebSocket to this ticket's live position for
    /// five minutes (docs/waiting-room.md; offered as a subprotocol).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionBody {
    pub token: String,
    pub expires_at: String,
}

impl TicketBody {
    /// The view, signing the admission token of an admitted ticket.
    pub fn of(app: &App, v: &TicketView) -> Result<TicketBody, Problem> {
        let t = &v.ticket;
        let admission = match (v.shown, &t.admission) {
            (Shown::Admitted, Some(a)) => {
                let secret = app.config.admission_secret.as_deref().ok_or_else(|| {
                    tracing::error!("ADMISSION_SECRET is not set: admitted shoppers get no token");
                    Problem::internal()
                })?;
                let grant = AdmissionToken {
                    sale: t.sale.clone(),
                    user: t.user.clone(),
                    id: a.id.clone(),
                    expires_at: a.session_ends_at,
                };
                let token = admission::sign(secret, &grant).map_err(http::internal)?;
                Some(AdmissionBody { token, expires_at: a.session_ends_at.to_rfc3339() })
            }
            _ => None,
        };
        let live_token = match (v.shown, app.config.admission_secret.as_deref()) {
            (Shown::Waiting, Some(secret)) => {
                // From the minute's start: the same token all minute, so a
                // poll's ETag still matches while the position stands.
                let minute = Timestamp::from_millis(v.at.millis() - v.at.millis().rem_euclid(60_000));
                let until = minute.plus_secs(admission::LIVE_TTL_SECS);
                Some(admission::sign_live(secret, &t.sale, &t.user, until).map_err(http::internal)?)
            }
            _ => None,
        };
        Ok(TicketBody {
            live_token,
            sale_id: t.sale.to_string(),
            status: v.shown,
            sale_state: v.sale.state(v.at).as_str(),
            entered_at: t.entered_at.to_rfc3339(),
            pre_queue: matches!(t.place, shop_domain::sale::Place::Early { .. }),
            ahead: v.position.map(|p| p.ahead),
            estimated_wait_secs: v.wait_secs,
            admission,
            order_id: t.order.as_ref().map(ToString::to_string),
        })
    }
}

fn sale_param(req: &Request) -> Result<SaleId, Problem> {
    http::path_param(req, "saleId").and_then(|s| SaleId::parse(s).ok()).ok_or_else(sale_not_found)
}

fn sale_not_found() -> Problem {
    Problem::not_found("sale-not-found", "Sale not found", "no such sale")
}

fn ticket_not_found() -> Problem {
    Problem::not_found("ticket-not-found", "No ticket", "you hold no ticket for this sale; POST to its queue to enter")
}

/// `GET /sales/{saleId}`.
pub async fn get_sale(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("get_sale", req, |req, ctx| async move {
        let id = sale_param(&req)?;
        let status = uc::status(app, &id).await.map_err(http::internal)?.ok_or_else(sale_not_found)?;
        Ok(http::cacheable(&req, &SaleView::of(&status), SALE_CACHE_CONTROL, &ctx))
    })
    .await
}

/// How long a waiting shopper should leave before asking again: a tenth of
/// the estimated wait, from 1 to 30 seconds (the WebSocket pushes sooner).
fn retry_after(wait_secs: Option<u64>) -> Option<u64> {
    wait_secs.map(|w| (w / 10).clamp(1, 30))
}

fn with_retry_after(mut resp: Response<Body>, v: &TicketView) -> Response<Body> {
    if let Some(secs) = retry_after(v.wait_secs)
        && let Ok(h) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(lambda_http::http::header::RETRY_AFTER, h);
    }
    resp
}

/// `GET /sales/{saleId}/queue/me`: two reads whatever the queue's length;
/// an `ETag` (304 while nothing changed) and, while waiting, `Retry-After`.
pub async fn my_ticket(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("my_ticket", req, |req, ctx| async move {
        let user = http::caller(&req)?;
        let id = sale_param(&req)?;
        let view = uc::my_ticket(app, &id, &user).await.map_err(http::internal)?.ok_or_else(ticket_not_found)?;
        let body = TicketBody::of(app, &view)?;
        Ok(with_retry_after(http::cacheable(&req, &body, TICKET_CACHE_CONTROL, &ctx), &view))
    })
    .await
}

/// `POST /sales/{saleId}/queue`: 201 with a new ticket, 200 with the one
/// the caller holds (entering again never gives a better place).
pub async fn enter_queue(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("enter_queue", req, |req, ctx| async move {
        let user = http::caller(&req)?;
        let id = sale_param(&req)?;
        let entered = uc::enter(app, &id, &user).await.map_err(|e| Problem::from(&e))?;
        let view = TicketView::of(entered.ticket, entered.sale, app.clock.now());
        let body = TicketBody::of(app, &view)?;
        let mut resp = http::json(if entered.new { 201 } else { 200 }, &body, &ctx);
        if let Ok(location) = HeaderValue::from_str(&format!("/sales/{id}/queue/me")) {
            resp.headers_mut().insert(lambda_http::http::header::LOCATION, location);
        }
        Ok(with_retry_after(resp, &view))
    })
    .await
}

impl From<&EnterError> for Problem {
    fn from(e: &EnterError) -> Problem {
        match e {
            EnterError::UnknownSale(_) => sale_not_found(),
            EnterError::Closed { state, .. } => {
                Problem::new(409, "sale-closed", "Sale closed", e.to_string()).with("state", state.as_str())
            }
            EnterError::Contention(c) => http::contention(*c, "too many concurrent entries; retry"),
            EnterError::Unexpected(err) => {
                tracing::error!(error = ?err, "entering the queue failed");
                Problem::internal()
            }
        }
    }
}

/// `DELETE /sales/{saleId}/queue/me`: 200 with the ticket, now LEFT; an
/// admitted shopper gives the slot back. Leaving twice is leaving once.
pub async fn leave_queue(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("leave_queue", req, |req, ctx| async move {
        let user = http::caller(&req)?;
        let id = sale_param(&req)?;
        let ticket = uc::leave(app, &id, &user).await.map_err(|e| Problem::from(&e))?;
        let sale = app.store.sales().get(&id).await.map_err(http::internal)?.ok_or_else(sale_not_found)?;
        let view = TicketView::of(ticket, sale, app.clock.now());
        Ok(http::json(200, &TicketBody::of(app, &view)?, &ctx))
    })
    .await
}

impl From<&LeaveError> for Problem {
    fn from(e: &LeaveError) -> Problem {
        match e {
            LeaveError::NoTicket => ticket_not_found(),
            LeaveError::Refused(TicketError::Status { is, .. }) => Problem::new(
                409,
                "ticket-used",
                "Ticket used",
                format!("the ticket is {}: nothing to leave", is.as_str()),
            )
            .with("status", is.as_str()),
            LeaveError::Refused(r) => Problem::new(409, "ticket-used", "Ticket used", r.to_string()),
            LeaveError::Contention(c) => http::contention(*c, "the ticket changed meanwhile; retry"),
            LeaveError::Unexpected(err) => {
                tracing::error!(error = ?err, "leaving the queue failed");
                Problem::internal()
            }
        }
    }
}

/// `POST /sales`'s body (the document's `CreateSaleRequest`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateSaleRequest {
    pub sale_id: String,
    pub name: String,
    pub products: Vec<String>,
    pub starts_at: String,
    pub ends_at: String,
    pub capacity: Integer,
    pub max_admissions_per_sec: Integer,
    pub session_secs: Integer,
    #[serde(default)]
    pub entry_shards: Option<Integer>,
}

impl CreateSaleRequest {
    /// The sale asked for (its draw secret from `salt`). A value the
    /// document's schema refuses is a 400; terms a rule refuses a 422
    /// `invalid-sale` naming the field.
    pub fn parse(self, salt: u64) -> Result<Sale, Problem> {
        let bad = |what: String| Problem::bad_request(what);
        let id = SaleId::parse(&self.sale_id).map_err(|e| bad(format!("saleId: {e}")))?;
        let mut products = Vec::with_capacity(self.products.len());
        for p in &self.products {
            products.push(ProductId::parse(p).map_err(|e| bad(format!("products: {e}")))?);
        }
        let time = |field: &str, s: &str| {
            Timestamp::parse_rfc3339(s).ok_or_else(|| bad(format!("{field} {s:?} is not an RFC 3339 date-time")))
        };
        let count = |i: Integer| u64::try_from(i.0).unwrap_or(0);
        let terms = SaleTerms::new(
            self.name,
            products,
            time("startsAt", &self.starts_at)?,
            time("endsAt", &self.ends_at)?,
            count(self.capacity),
            count(self.max_admissions_per_sec),
            count(self.session_secs),
            self.entry_shards.map(count),
        )
        .map_err(|e| {
            let field = match &e {
                InvalidSale::Name => "name",
                InvalidSale::Products => "products",
                InvalidSale::Window => "endsAt",
                InvalidSale::Range { field, .. } => field,
            };
            Problem::new(422, "invalid-sale", "Invalid sale", e.to_string()).with("field", field)
        })?;
        Ok(Sale::new(id, terms, salt))
    }
}

/// A fresh secret for a sale's pre-queue draw: a hash of a new id.
pub fn fresh_salt(app: &App) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(app.ids.tx_id().as_bytes());
    digest.iter().take(8).fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// `POST /sales` (operators only): 201 with the sale and its `Location`;
/// the same sale again 200 as it stands (a retry is safe); the same id
/// with other terms 409 `sale-exists`. A product must exist (422
/// `unknown-product`) and be in no other running sale (409
/// `product-in-sale`).
pub async fn create_sale(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("create_sale", req, |req, ctx| create_inner(app, req, ctx)).await
}

async fn create_inner(app: &App, req: Request, ctx: RequestCtx) -> Result<Response<Body>, Problem> {
    let operator = http::operator(&req)?;
    let asked = http::parse::<CreateSaleRequest>(http::json_body(&req)?)?.parse(fresh_salt(app))?;
    match uc::create_sale(app, &asked).await.map_err(|e| Problem::from(&e))? {
        Created::New(sale) => {
            tracing::info!(%operator, sale_id = %sale.id, "sale created by an operator");
            let mut resp = http::json(201, &shown(app, &sale.id).await?, &ctx);
            if let Ok(location) = HeaderValue::from_str(&format!("/sales/{}", sale.id)) {
                resp.headers_mut().insert(lambda_http::http::header::LOCATION, location);
            }
            Ok(resp)
        }
        Created::Existing(existing) if existing.terms == asked.terms => {
            Ok(http::json(200, &shown(app, &existing.id).await?, &ctx))
        }
        Created::Existing(existing) => Err(Problem::new(
            409,
            "sale-exists",
            "Sale exists",
            format!("sale {} exists with other terms; it is kept as it is", existing.id),
        )
        .with("saleId", existing.id.as_str())),
    }
}

/// The sale's figures as `GET /sales/{id}` shows them.
async fn shown(app: &App, id: &SaleId) -> Result<SaleView, Problem> {
    let status = uc::status(app, id).await.map_err(http::internal)?.ok_or_else(sale_not_found)?;
    Ok(SaleView::of(&status))
}

impl From<&CreateSaleError> for Problem {
    fn from(e: &CreateSaleError) -> Problem {
        match e {
            CreateSaleError::UnknownProduct(p) => {
                Problem::new(422, "unknown-product", "Unknown product", e.to_string()).with("productId", p.as_str())
            }
            CreateSaleError::ProductInSale { product, sale, until } => {
                Problem::new(409, "product-in-sale", "Product in another sale", e.to_string())
                    .with("productId", product.as_str())
                    .with("saleId", sale.as_str())
                    .with("until", until.to_rfc3339())
            }
            CreateSaleError::Unexpected(err) => {
                tracing::error!(error = ?err, "creating a sale failed");
                Problem::internal()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pollers_are_told_to_come_back_in_a_tenth_of_their_wait() {
        assert_eq!(retry_after(None), None);
        assert_eq!(retry_after(Some(0)), Some(1));
        assert_eq!(retry_after(Some(120)), Some(12));
        assert_eq!(retry_after(Some(86_400)), Some(30));
    }
}
