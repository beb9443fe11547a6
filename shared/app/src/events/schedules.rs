//! The scheduled functions' entry points: an EventBridge schedule event in,
//! the run's report out (the Lambda's result, visible in its logs).

use crate::App;
use crate::ports::Pusher;
use crate::usecases::expire::{ExpireReport, expire_orders};
use crate::usecases::live::{PushMemory, push_positions};
use crate::usecases::reconcile::{AskPgRequest, ReconcileReport, ask_pg_orders, reconcile_payments};
use crate::usecases::sales::{AdmitReport, admit_pass};
use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use lambda_runtime::LambdaEvent;
use shop_domain::sale::Health;

/// `expire-orders`.
pub async fn expire_orders_handler(
    app: &App,
    event: LambdaEvent<CloudWatchEvent>,
) -> Result<ExpireReport, lambda_runtime::Error> {
    tracing::info!(schedule = ?event.payload.resources, "expire-orders run");
    Ok(expire_orders(app).await?)
}

/// `reconcile-payments`.
pub async fn reconcile_payments_handler(
    app: &App,
    event: LambdaEvent<CloudWatchEvent>,
) -> Result<ReconcileReport, lambda_runtime::Error> {
    tracing::info!(schedule = ?event.payload.resources, "reconcile-payments run");
    Ok(reconcile_payments(app).await?)
}

/// What `reconcile-payments` is invoked with: its schedule's event, or an
/// operator's ask about chosen orders (`{"askPg": {"orderIds": [...]}}`).
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum ReconcileInput {
    Ask {
        #[serde(rename = "askPg")]
        ask_pg: AskPgRequest,
    },
    Schedule(Box<CloudWatchEvent>),
}

/// `reconcile-payments` as deployed: a scheduled run's report, or the
/// answers to an operator's ask (the invoker needs `lambda:InvokeFunction`
/// on the function; the PG secret stays with it).
pub async fn reconcile_or_ask_handler(
    app: &App,
    event: LambdaEvent<ReconcileInput>,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    match event.payload {
        ReconcileInput::Ask { ask_pg } => {
            tracing::info!(orders = ask_pg.order_ids.len(), "reconcile-payments asked about chosen orders");
            Ok(serde_json::to_value(ask_pg_orders(app, &ask_pg).await?)?)
        }
        ReconcileInput::Schedule(schedule) => {
            let report = reconcile_payments_handler(app, LambdaEvent::new(*schedule, event.context)).await?;
            Ok(serde_json::to_value(report)?)
        }
    }
}

/// The admitter's period: one step of every live sale a second.
pub const ADMIT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// The saga's health is read every this many passes (one range read of
/// the statistics each time).
const HEALTH_EVERY: u32 = 5;
/// How long one invocation of `admit-sales` steps (its schedule runs it
/// every minute; the function's timeout is 60 s). Two invocations that
/// overlap conflict on each sale's version: one step counts.
pub const ADMIT_RUN: std::time::Duration = std::time::Duration::from_secs(55);

/// `admit-sales`: one-second admitter passes for [`ADMIT_RUN`], each
/// followed by a broadcast of positions to the sales' live connections
/// through `pusher` (API Gateway's `PostToConnection`; none when the stack
/// has no WebSocket API). It returns after the first pass in which no
/// queue moved: no one admitted (here or by a release), no session ended.
/// Then no sale has both a free slot and someone waiting, and a slot freed
/// later is filled by the `waiting-room` consumer; the next minute's run
/// looks again. An idle minute costs one pass; a session ends at most a
/// minute after its time.
pub async fn admit_sales_handler(
    app: &App,
    pusher: Option<&dyn Pusher>,
    event: LambdaEvent<CloudWatchEvent>,
) -> Result<AdmitReport, lambda_runtime::Error> {
    tracing::info!(schedule = ?event.payload.resources, "admit-sales run");
    let stop = tokio::time::sleep(ADMIT_RUN.saturating_sub(ADMIT_EVERY));
    Ok(admit_until(app, ADMIT_EVERY, stop, Idle::Return, pusher).await)
}

/// What the admitter does after a pass in which no queue moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Return (a Lambda invocation: the next minute's looks again).
    Return,
    /// Keep ticking (the local stack's task, which runs as long as the stack).
    Wait,
}

/// The local stack's admitter: passes every `every` until `stop`, with
/// pushes to the live sockets.
pub async fn admit_loop(
    app: App,
    every: std::time::Duration,
    stop: tokio::sync::oneshot::Receiver<()>,
    pusher: std::sync::Arc<dyn Pusher>,
) {
    // The first pass one period after the start, not at once.
    let mut stop = stop;
    tokio::select! {
        _ = &mut stop => return,
        _ = tokio::time::sleep(every) => {}
    }
    admit_until(&app, every, stop, Idle::Wait, Some(pusher.as_ref())).await;
}

/// The longest the local admitter rests while nothing moves (a shopper
/// entering and a slot freed wake it at once), and at most this many
/// periods.
pub const ADMIT_IDLE_MAX: std::time::Duration = std::time::Duration::from_secs(30);
const ADMIT_IDLE_PERIODS: u32 = 30;

/// Admitter passes every `every` until `stop`, the saga's health read
/// every few passes, positions pushed after each. A pass or a push that
/// fails is logged and the next one tries. After a pass in which no queue
/// moved, a Lambda invocation returns ([`Idle::Return`]); the local loop
/// ([`Idle::Wait`]) rests twice as long each time, up to
/// [`ADMIT_IDLE_MAX`] (or 30 periods), until a shopper enters or a slot is
/// freed (`App::admitter`).
pub async fn admit_until(
    app: &App,
    every: std::time::Duration,
    stop: impl std::future::Future,
    idle: Idle,
    pusher: Option<&dyn Pusher>,
) -> AdmitReport {
    tokio::pin!(stop);
    let mut total = AdmitReport::default();
    let mut health = Health::default();
    let mut memory = PushMemory::default();
    let mut last_admitted: Option<u64> = None;
    let mut rest = std::time::Duration::ZERO;
    let mut last_pass = tokio::time::Instant::now();
    for pass in 0u32.. {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(rest) => {}
            _ = app.admitter.notified(), if idle == Idle::Wait => {}
        }
        // At most one pass per period, however often shoppers enter.
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep_until(last_pass + every), if pass > 0 => {}
            _ = std::future::ready(()), if pass == 0 => {}
        }
        last_pass = tokio::time::Instant::now();
        if pass % HEALTH_EVERY == 0 {
            match crate::obs::stats::saga_health(app).await {
                Ok(h) => health = h,
                Err(e) => tracing::warn!(error = %e, "saga health unknown; the rate stays"),
            }
        }
        let r = match admit_pass(app, health).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "admitter pass failed");
                rest = every;
                continue;
            }
        };
        if let Some(p) = pusher
            && !r.live.is_empty()
            && let Err(e) = push_positions(app, p, &mut memory, &r.live).await
        {
            tracing::warn!(error = %e, "pushing positions failed");
        }
        total.admitted += r.admitted;
        total.sessions_ended += r.sessions_ended;
        total.sales = total.sales.max(r.sales);
        let moved = r.admitted > 0 || r.sessions_ended > 0 || last_admitted.is_some_and(|a| a != r.admitted_so_far);
        last_admitted = Some(r.admitted_so_far);
        match (moved, idle) {
            (false, Idle::Return) => break,
            (false, Idle::Wait) => rest = (rest * 2).clamp(every, (every * ADMIT_IDLE_PERIODS).min(ADMIT_IDLE_MAX)),
            (true, _) => rest = every,
        }
    }
    total
}
