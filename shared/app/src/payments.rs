//! Paying for an order: card / virtual-account confirmation against the PG,
//! paying with points, cancelling, and the one code path that turns anything
//! the PG says into state ([`apply_pg_outcome`]) — used by confirm, the
//! webhook and the reconciler alike, so they can race in any order and still
//! produce one PAID order and one `OrderPaid` event.

use crate::App;
use crate::http::{self, Problem, RequestCtx, internal};
use crate::orders::OrderView;
use crate::pg::{PgError, PgPayment, PgStatus};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use shop_domain::points::{LedgerEntry, LedgerReason};
use shop_domain::{
    Money, Order, OrderCommand, OrderError, OrderEventKind, OrderId, OrderStatus, Payment, PaymentKey, PaymentStatus,
    Timestamp, UserId,
};
use shop_store::{StoreError, Tx, TxOp};
use tracing::Instrument;

/// What the PG said about a payment, as far as state is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgOutcome {
    /// The PG's record of the payment.
    Payment(PgPayment),
    /// A definite refusal: the payment did not and will not happen.
    Declined { code: String, message: String },
    /// Nobody knows yet (timeout, 5xx, lost response).
    Unknown(String),
}

/// Where applying an outcome left things.
#[derive(Debug, Clone)]
pub struct Settled {
    pub order: Order,
    pub payment: Payment,
    /// The PG took money the order could not take: compensation cancels it.
    pub orphaned: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("no payment {0} and no order to attach it to")]
    UnknownPayment(PaymentKey),
    #[error("the PG reports payment {payment} for order {pg_order}, ours is for {our_order}")]
    OrderMismatch { payment: PaymentKey, pg_order: OrderId, our_order: OrderId },
    /// READY / IN_PROGRESS for a key we hold no record of: nobody has
    /// confirmed it, so it proves nothing and is not recorded (a record would
    /// mark the key used and block its owner's confirm).
    #[error("the PG reports payment {0} as {1}, which is not an outcome")]
    NotFinal(PaymentKey, &'static str),
    #[error("kept conflicting with concurrent writers")]
    Contention,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for SettleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unexpected(e) => SettleError::Unexpected(e),
            other => SettleError::Unexpected(anyhow::Error::new(other)),
        }
    }
}

/// Conditional writes that lose re-read and re-decide this many times.
const ATTEMPTS: usize = 16;

/// Applies what the PG said about `payment_key` to our payment record and the
/// order, in one transaction: payment status, order transition and its event.
/// `final_say` (the reconciler, past its threshold) turns a payment the PG
/// still shows as READY/IN_PROGRESS into a failed one.
#[tracing::instrument(skip_all, fields(payment_key = %payment_key, order_id))]
pub async fn apply_pg_outcome(
    app: &App,
    payment_key: &PaymentKey,
    outcome: &PgOutcome,
    final_say: bool,
    correlation_id: &str,
) -> Result<Settled, SettleError> {
    for _ in 0..ATTEMPTS {
        let now = app.clock.now();
        let existing = app.store.get_payment(payment_key).await?;
        let order_id = match (&existing, outcome) {
            (Some(p), _) => p.order_id.clone(),
            (None, PgOutcome::Payment(pg)) => pg.order_id.clone(),
            (None, PgOutcome::Declined { .. } | PgOutcome::Unknown(_)) => {
                return Err(SettleError::UnknownPayment(payment_key.clone()));
            }
        };
        tracing::Span::current().record("order_id", order_id.as_str());
        if let (Some(p), PgOutcome::Payment(pg)) = (&existing, outcome)
            && pg.order_id != p.order_id
        {
            return Err(SettleError::OrderMismatch {
                payment: payment_key.clone(),
                pg_order: pg.order_id.clone(),
                our_order: p.order_id.clone(),
            });
        }
        let Some(order) = app.store.get_order(&order_id).await? else {
            return Err(SettleError::UnknownPayment(payment_key.clone()));
        };
        // A payment we never recorded (e.g. our CONFIRMING write was lost
        // with the process): adopt the PG's record — but only an outcome.
        let (before, mut payment) = match existing {
            Some(p) => (Some(p.clone()), p),
            None => {
                let PgOutcome::Payment(pg) = outcome else { unreachable!("handled above") };
                if !pg.status.is_outcome() {
                    return Err(SettleError::NotFinal(payment_key.clone(), pg.status.as_str()));
                }
                let p = Payment::started(
                    payment_key.clone(),
                    order_id.clone(),
                    order.user_id.clone(),
                    pg.total_amount,
                    pg.method,
                    now,
                );
                (None, p)
            }
        };

        let (status, command) = decide(&order, &payment, outcome, final_say);
        if let Some(next) = status.and_then(|s| payment.moved_to(s, now)) {
            payment = next;
        }
        if let (PgOutcome::Declined { code, message }, PaymentStatus::Aborted) = (outcome, payment.status) {
            payment.failure_code = Some(code.clone());
            payment.failure_message = Some(message.clone());
        }
        if let PgOutcome::Payment(pg) = outcome {
            payment.method = pg.method;
        }
        let (new_order, events) = match command.as_ref().map(|c| order.execute(c, now)) {
            Some(Ok(done)) => done,
            Some(Err(e)) => {
                tracing::warn!(error = %e, status = %order.status, "PG outcome does not fit the order; payment recorded only");
                (order.clone(), vec![])
            }
            None => (order.clone(), vec![]),
        };
        let orphaned = events.iter().any(|e| matches!(e.kind, OrderEventKind::PaymentOrphaned { .. }));
        payment.orphaned |= orphaned;
        // Any change is a new version, conditional on the one we read.
        if let Some(b) = &before
            && b != &payment
            && b.version == payment.version
        {
            payment.version += 1;
            payment.updated_at = now;
        }

        let mut tx = Tx::new();
        match &before {
            None => {
                tx.push(app.store.op_create_payment(&payment)?);
            }
            Some(b) if b != &payment => {
                tx.push(app.store.op_update_payment(b.version, &payment)?);
            }
            Some(_) => {}
        }
        if !events.is_empty() {
            tx.push(app.store.op_update_order(order.version, &new_order)?);
            for e in &events {
                tx.push(app.store.op_put_event(e, correlation_id, None)?);
            }
        }
        if tx.is_empty() {
            return Ok(Settled { order: new_order, payment, orphaned: false });
        }
        match app.store.transact(tx).await {
            Ok(()) => {
                for e in &events {
                    tracing::info!(event = e.kind.detail_type(), status = %new_order.status, "payment applied");
                }
                if orphaned {
                    crate::metrics::count(app.service, "PaymentsOrphaned", 1);
                }
                return Ok(Settled { order: new_order, payment, orphaned });
            }
            Err(StoreError::Conflict { item, reason }) => {
                tracing::info!(%item, %reason, "settlement raced another writer; re-reading");
            }
            Err(StoreError::Unexpected(e)) => return Err(SettleError::Unexpected(e)),
        }
    }
    Err(SettleError::Contention)
}

/// The payment status and order command an outcome means.
fn decide(
    order: &Order,
    payment: &Payment,
    outcome: &PgOutcome,
    final_say: bool,
) -> (Option<PaymentStatus>, Option<OrderCommand>) {
    let key = payment.payment_key.clone();
    let fail = |code: &str, message: &str| OrderCommand::FailPayment {
        payment_key: key.clone(),
        code: code.to_owned(),
        message: message.to_owned(),
    };
    match outcome {
        PgOutcome::Unknown(_) => (Some(PaymentStatus::Unknown), None),
        PgOutcome::Declined { code, message } => (Some(PaymentStatus::Aborted), Some(fail(code, message))),
        PgOutcome::Payment(pg) => match pg.status {
            PgStatus::Done => (
                Some(PaymentStatus::Done),
                Some(OrderCommand::ConfirmPayment { payment_key: key, method: pg.method, amount: pg.total_amount }),
            ),
            PgStatus::WaitingForDeposit => match order.status {
                // A virtual account issued for an order that can no longer be
                // paid: nothing to do to the order; compensation closes it.
                OrderStatus::Expired | OrderStatus::Cancelled => (Some(PaymentStatus::WaitingForDeposit), None),
                OrderStatus::PendingPayment
                | OrderStatus::Confirming
                | OrderStatus::AwaitingDeposit
                | OrderStatus::Paid
                | OrderStatus::RefundPending
                | OrderStatus::Refunded => (
                    Some(PaymentStatus::WaitingForDeposit),
                    Some(OrderCommand::AwaitDeposit { payment_key: key, amount: pg.total_amount }),
                ),
            },
            PgStatus::Aborted | PgStatus::Expired => (
                Some(PaymentStatus::Aborted),
                Some(fail(&format!("PG_{}", pg.status.as_str()), "the PG ended the payment")),
            ),
            PgStatus::Canceled | PgStatus::PartialCanceled => {
                (Some(PaymentStatus::Canceled), Some(fail("PG_CANCELED", "the payment was cancelled at the PG")))
            }
            PgStatus::Ready | PgStatus::InProgress if final_say => {
                (Some(PaymentStatus::Aborted), Some(fail("NOT_CONFIRMED", "the PG never confirmed the payment")))
            }
            PgStatus::Ready | PgStatus::InProgress => (None, None),
        },
    }
}

/// Turns a PG call's result into an outcome, looking the payment up when
/// the PG says it already processed it.
pub async fn outcome_of(app: &App, payment_key: &PaymentKey, result: Result<PgPayment, PgError>) -> PgOutcome {
    match result {
        Ok(p) => PgOutcome::Payment(p),
        Err(PgError::AlreadyProcessed) => match app.pg.payment(payment_key).await {
            Ok(p) => PgOutcome::Payment(p),
            Err(e) => PgOutcome::Unknown(format!("lookup after ALREADY_PROCESSED_PAYMENT: {e}")),
        },
        Err(PgError::Declined { code, message }) => PgOutcome::Declined { code, message },
        Err(PgError::NotFound) => {
            PgOutcome::Declined { code: "NOT_FOUND_PAYMENT".into(), message: "the PG has no such payment".into() }
        }
        Err(PgError::Unknown(reason)) => PgOutcome::Unknown(reason),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfirmBody {
    order_id: OrderId,
    payment_key: PaymentKey,
    amount: Money,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PointsBody {
    order_id: OrderId,
}

fn not_found() -> Problem {
    Problem::not_found("order-not-found", "Order not found", "no such order")
}

async fn own_order(app: &App, user: &UserId, id: &OrderId) -> Result<Order, Problem> {
    match app.store.get_order(id).await.map_err(internal)? {
        Some(o) if &o.user_id == user => Ok(o),
        Some(_) | None => Err(not_found()),
    }
}

fn order_problem(e: &OrderError) -> Problem {
    match e {
        OrderError::PaymentInProgress => Problem::new(
            409,
            "payment-in-progress",
            "Payment in progress",
            "a payment for this order is being confirmed",
        ),
        OrderError::PastExpiry(_) => Problem::new(409, "order-expired", "Order expired", e.to_string()),
        OrderError::AmountMismatch { expected, .. } => {
            Problem::new(400, "amount-mismatch", "Amount mismatch", e.to_string()).with("amountDue", expected.won())
        }
        OrderError::IllegalTransition { status, .. } => {
            Problem::new(409, "order-not-payable", "Order not in a payable state", e.to_string())
                .with("status", status.as_str())
        }
        OrderError::NotYetExpired(_) => Problem::new(409, "conflict", "Conflict", e.to_string()),
    }
}

/// The answer for an order after a payment attempt.
fn payment_response(
    settled: &Settled,
    ctx: &RequestCtx,
    virtual_account: Option<&serde_json::Value>,
) -> Response<Body> {
    let mut body = match serde_json::to_value(OrderView::from(&settled.order)) {
        Ok(v) => v,
        Err(e) => return internal(e).response(ctx),
    };
    if let Some(obj) = body.as_object_mut() {
        obj.insert("paymentKey".into(), settled.payment.payment_key.as_str().into());
        obj.insert("paymentStatus".into(), settled.payment.status.as_str().into());
        if let Some(va) = virtual_account {
            obj.insert("virtualAccount".into(), va.clone());
        }
    }
    http::json(200, &body, ctx)
}

/// `POST /payments/confirm` `{"orderId","paymentKey","amount"}`.
pub async fn confirm_payment(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let ctx = RequestCtx::of(&req);
    let span =
        tracing::info_span!("confirm_payment", correlation_id = %ctx.correlation_id, order_id = tracing::field::Empty);
    Ok(confirm_inner(app, &req, &ctx).instrument(span).await.unwrap_or_else(|p| p.response(&ctx)))
}

async fn confirm_inner(app: &App, req: &Request, ctx: &RequestCtx) -> Result<Response<Body>, Problem> {
    let user = http::caller(req)?;
    let body: ConfirmBody = http::parse(http::json_body(req)?)?;
    tracing::Span::current().record("order_id", body.order_id.as_str());
    let key = body.payment_key.clone();

    // 1. Check everything we can before the PG hears of it, and record the
    //    attempt (payment CONFIRMING, order CONFIRMING) before calling it.
    let mut started = false;
    let mut verified = false;
    for _ in 0..ATTEMPTS {
        let order = own_order(app, &user, &body.order_id).await?;
        if order.payment_key.as_ref() == Some(&key) {
            match order.status {
                // A repeat of a confirm that already settled: the same answer.
                OrderStatus::Paid
                | OrderStatus::AwaitingDeposit
                | OrderStatus::RefundPending
                | OrderStatus::Refunded => {
                    let payment = app.store.get_payment(&key).await.map_err(internal)?.ok_or_else(Problem::internal)?;
                    return Ok(payment_response(&Settled { order, payment, orphaned: false }, ctx, None));
                }
                OrderStatus::Confirming => {
                    return Ok(http::json(202, &serde_json::json!({"orderId": order.id, "status": "CONFIRMING"}), ctx));
                }
                OrderStatus::PendingPayment | OrderStatus::Expired | OrderStatus::Cancelled => {}
            }
        }
        if body.amount != order.amount_due {
            return Err(Problem::new(
                400,
                "amount-mismatch",
                "Amount mismatch",
                format!(
                    "amount {} does not match the order's amount due {}",
                    body.amount.won(),
                    order.amount_due.won()
                ),
            )
            .with("amountDue", order.amount_due.won()));
        }
        let now = app.clock.now();
        let cmd = OrderCommand::StartPayment {
            payment_key: key.clone(),
            method: shop_domain::PaymentMethod::Card,
            amount: body.amount,
        };
        let (confirming, events) = order.execute(&cmd, now).map_err(|e| order_problem(&e))?;
        if !verified {
            verify_key(app, &key, &order).await?;
            verified = true;
        }
        let payment = Payment::started(
            key.clone(),
            order.id.clone(),
            user.clone(),
            body.amount,
            shop_domain::PaymentMethod::Card,
            now,
        );
        let mut tx = Tx::new();
        tx.push(app.store.op_update_order(order.version, &confirming).map_err(internal)?);
        for e in &events {
            tx.push(app.store.op_put_event(e, &ctx.correlation_id, None).map_err(internal)?);
        }
        tx.push(app.store.op_create_payment(&payment).map_err(internal)?);
        match app.store.transact(tx).await {
            Ok(()) => {
                started = true;
                break;
            }
            Err(StoreError::Conflict { item: shop_store::TxItem::Payment(_), .. }) => {
                return Err(Problem::new(
                    409,
                    "payment-key-used",
                    "Payment key already used",
                    "this paymentKey was already used for a payment; start a new checkout",
                ));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(internal(e)),
        }
    }
    if !started {
        return Err(Problem::new(409, "contention", "Conflict", "the order kept changing; retry"));
    }

    // 2. Ask the PG. 3. Apply whatever it said through the shared path.
    let result = app.pg.confirm(&key, &body.order_id, body.amount).await;
    let outcome = outcome_of(app, &key, result).await;
    if let PgOutcome::Unknown(reason) = &outcome {
        tracing::warn!(%reason, "PG outcome unknown; the reconciler will resolve it");
        crate::metrics::count(app.service, "PaymentsUnknown", 1);
    }
    let settled = match apply_pg_outcome(app, &key, &outcome, false, &ctx.correlation_id).await {
        Ok(s) => s,
        // The CONFIRMING record is there: the reconciler finishes the job.
        Err(e) => {
            tracing::error!(error = %e, "could not record the PG's answer");
            return Ok(http::json(202, &serde_json::json!({"orderId": body.order_id, "status": "CONFIRMING"}), ctx));
        }
    };
    if settled.orphaned {
        return Err(Problem::new(
            409,
            "order-not-payable",
            "Order no longer payable",
            "the order expired or was cancelled while the payment was confirmed; the payment will be cancelled",
        )
        .with("status", settled.order.status.as_str()));
    }
    match (&outcome, settled.order.status) {
        (PgOutcome::Declined { code, message }, _) => {
            Err(Problem::new(402, "payment-declined", "Payment declined", message.clone())
                .with("pgCode", code.as_str())
                .with("orderStatus", settled.order.status.as_str()))
        }
        (PgOutcome::Unknown(_), _) | (_, OrderStatus::Confirming) => {
            Ok(http::json(202, &serde_json::json!({"orderId": settled.order.id, "status": "CONFIRMING"}), ctx))
        }
        (PgOutcome::Payment(pg), _) => Ok(payment_response(&settled, ctx, pg.virtual_account.as_ref())),
    }
}

/// Asks the PG whose `key` is before anything is recorded against it: the
/// key travels in the shopper's redirect URL, so anybody may send it. Only a
/// payment the PG holds for this order and this amount may be attempted;
/// anything else is refused with nothing written, so no other order's key
/// is ever marked used (docs/payments.md, "Threat model").
async fn verify_key(app: &App, key: &PaymentKey, order: &Order) -> Result<(), Problem> {
    let mismatch = || {
        Problem::new(
            400,
            "payment-key-mismatch",
            "Payment key does not match",
            "the PG holds no payment with this paymentKey for this order and amount; start a new checkout",
        )
    };
    match app.pg.payment(key).await {
        Ok(p) if &p.payment_key == key && p.order_id == order.id && p.total_amount == order.amount_due => Ok(()),
        Ok(p) => {
            tracing::warn!(pg_order = %p.order_id, pg_amount = p.total_amount.won(), "confirm with a key of another order or amount");
            crate::metrics::count(app.service, "PaymentKeyMismatch", 1);
            Err(mismatch())
        }
        Err(PgError::NotFound) => Err(mismatch()),
        Err(e @ (PgError::Unknown(_) | PgError::Declined { .. } | PgError::AlreadyProcessed)) => {
            tracing::warn!(error = %e, "could not verify the payment key with the PG");
            Err(pg_unavailable("the payment could not be verified with the PG; nothing was charged, retry"))
        }
    }
}

/// 503: the PG could not be asked; nothing was recorded, a retry is safe.
pub fn pg_unavailable(detail: &str) -> Problem {
    Problem::new(503, "pg-unavailable", "PG unavailable", detail)
}

/// Points ledger rows that give back `amount` to `user`, given the balance read now.
pub async fn refund_points_ops(
    app: &App,
    user: &UserId,
    amount: Money,
    reason: LedgerReason,
    order_id: &OrderId,
    now: Timestamp,
) -> anyhow::Result<Vec<TxOp>> {
    if amount.is_zero() {
        return Ok(vec![]);
    }
    let balance = app.store.get_points(user).await?;
    let after = shop_domain::points::credit(balance, amount)?;
    let entry = LedgerEntry {
        user_id: user.clone(),
        tx_id: app.ids.tx_id(),
        delta: shop_domain::points::signed(amount, false),
        reason,
        order_id: Some(order_id.clone()),
        balance_after: after,
        at: now,
    };
    Ok(app.store.ops_points(balance, &entry)?.into())
}

/// Stock returns for every line of `order`.
pub fn release_stock_ops(app: &App, order: &Order) -> anyhow::Result<Vec<TxOp>> {
    order.lines.iter().map(|l| app.store.op_release_stock(&l.product_id, l.quantity)).collect()
}

/// `POST /payments/points` `{"orderId"}`: the whole amount due from points.
pub async fn pay_with_points(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let ctx = RequestCtx::of(&req);
    let span =
        tracing::info_span!("pay_with_points", correlation_id = %ctx.correlation_id, order_id = tracing::field::Empty);
    Ok(points_inner(app, &req, &ctx).instrument(span).await.unwrap_or_else(|p| p.response(&ctx)))
}

async fn points_inner(app: &App, req: &Request, ctx: &RequestCtx) -> Result<Response<Body>, Problem> {
    let user = http::caller(req)?;
    let body: PointsBody = http::parse(http::json_body(req)?)?;
    tracing::Span::current().record("order_id", body.order_id.as_str());
    for _ in 0..ATTEMPTS {
        let order = own_order(app, &user, &body.order_id).await?;
        if order.status == OrderStatus::Paid && order.payment_method == Some(shop_domain::PaymentMethod::Points) {
            return Ok(http::json(200, &OrderView::from(&order), ctx));
        }
        let now = app.clock.now();
        let (paid, events) = order.execute(&OrderCommand::PayWithPoints, now).map_err(|e| order_problem(&e))?;
        let balance = app.store.get_points(&user).await.map_err(internal)?;
        let mut tx = Tx::new();
        if !order.amount_due.is_zero() {
            let after = shop_domain::points::debit(balance, order.amount_due).map_err(|_| {
                Problem::new(
                    409,
                    "insufficient-points",
                    "Insufficient points",
                    format!("the order needs {} points, the balance is {}", order.amount_due.won(), balance.won()),
                )
                .with("balance", balance.won())
                .with("amountDue", order.amount_due.won())
            })?;
            let entry = LedgerEntry {
                user_id: user.clone(),
                tx_id: app.ids.tx_id(),
                delta: shop_domain::points::signed(order.amount_due, true),
                reason: LedgerReason::OrderSpend,
                order_id: Some(order.id.clone()),
                balance_after: after,
                at: now,
            };
            tx.extend(app.store.ops_points(balance, &entry).map_err(internal)?);
        }
        tx.push(app.store.op_update_order(order.version, &paid).map_err(internal)?);
        for e in &events {
            tx.push(app.store.op_put_event(e, &ctx.correlation_id, None).map_err(internal)?);
        }
        match app.store.transact(tx).await {
            Ok(()) => {
                tracing::info!("order paid with points");
                return Ok(http::json(200, &OrderView::from(&paid), ctx));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(internal(e)),
        }
    }
    Err(Problem::new(409, "contention", "Conflict", "the order kept changing; retry"))
}

/// `POST /orders/{orderId}/cancel`: before payment the order is CANCELLED
/// and its stock and points come back in the same transaction; after
/// payment it becomes REFUND_PENDING and compensation refunds it.
pub async fn cancel_order(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let ctx = RequestCtx::of(&req);
    let span =
        tracing::info_span!("cancel_order", correlation_id = %ctx.correlation_id, order_id = tracing::field::Empty);
    Ok(cancel_inner(app, &req, &ctx).instrument(span).await.unwrap_or_else(|p| p.response(&ctx)))
}

async fn cancel_inner(app: &App, req: &Request, ctx: &RequestCtx) -> Result<Response<Body>, Problem> {
    for _ in 0..ATTEMPTS {
        let order = crate::orders::load_own_order(app, req).await?;
        let now = app.clock.now();
        let (cancelled, events) = order.execute(&OrderCommand::Cancel, now).map_err(|e| match e {
            OrderError::IllegalTransition { status, .. } => {
                Problem::new(409, "order-not-cancellable", "Order cannot be cancelled", e.to_string())
                    .with("status", status.as_str())
            }
            other => order_problem(&other),
        })?;
        if events.is_empty() {
            return Ok(http::json(200, &OrderView::from(&order), ctx));
        }
        let mut tx = Tx::new();
        if cancelled.status == OrderStatus::Cancelled {
            tx.extend(release_stock_ops(app, &order).map_err(internal)?);
            tx.extend(
                refund_points_ops(app, &order.user_id, order.points_used, LedgerReason::OrderRelease, &order.id, now)
                    .await
                    .map_err(internal)?,
            );
        }
        tx.push(app.store.op_update_order(order.version, &cancelled).map_err(internal)?);
        for e in &events {
            tx.push(app.store.op_put_event(e, &ctx.correlation_id, None).map_err(internal)?);
        }
        match app.store.transact(tx).await {
            Ok(()) => {
                tracing::info!(status = %cancelled.status, "order cancelled");
                return Ok(http::json(200, &OrderView::from(&cancelled), ctx));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(internal(e)),
        }
    }
    Err(Problem::new(409, "contention", "Conflict", "the order kept changing; retry"))
}
