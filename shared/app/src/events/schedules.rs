//! The scheduled functions' entry points: an EventBridge schedule event in,
//! the run's report out (the Lambda's result, visible in its logs).

use crate::App;
use crate::usecases::expire::{ExpireReport, expire_orders};
use crate::usecases::reconcile::{ReconcileReport, reconcile_payments};
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

/// The admitter's period: one step of every live sale a second.
pub const ADMIT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// The saga's health is read every this many passes (one range read of
/// the statistics each time).
const HEALTH_EVERY: u32 = 5;
/// How long one invocation of `admit-sales` steps (its schedule runs it
/// every minute; the function's timeout is 60 s). Two invocations that
/// overlap conflict on each sale's version: one step counts.
pub const ADMIT_RUN: std::time::Duration = std::time::Duration::from_secs(55);

/// `admit-sales`: one-second admitter passes for [`ADMIT_RUN`], returning
/// after the first pass that admitted no one and ended no session. Such a
/// pass means no sale has both a free slot and someone waiting; a slot
/// freed later admits the next shopper from the waiting-room consumer
/// itself, and the next minute's run looks again (so an idle minute costs
/// one pass, and a session ends at most a minute after its time).
pub async fn admit_sales_handler(
    app: &App,
    event: LambdaEvent<CloudWatchEvent>,
) -> Result<AdmitReport, lambda_runtime::Error> {
    tracing::info!(schedule = ?event.payload.resources, "admit-sales run");
    let stop = tokio::time::sleep(ADMIT_RUN.saturating_sub(ADMIT_EVERY));
    Ok(admit_until(app, ADMIT_EVERY, stop, Idle::Return).await)
}

/// What the admitter does when no sale is live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Return after a pass that did nothing (a Lambda invocation: the next
    /// minute's looks again).
    Return,
    /// Keep ticking (the local stack's task, which runs as long as the stack).
    Wait,
}

/// The local stack's admitter: passes every `every` until `stop`.
pub async fn admit_loop(app: App, every: std::time::Duration, stop: tokio::sync::oneshot::Receiver<()>) {
    admit_until(&app, every, stop, Idle::Wait).await;
}

/// Admitter passes every `every` until `stop`; the saga's health read
/// every few passes. A pass that fails is logged and the next one tries.
pub async fn admit_until(
    app: &App,
    every: std::time::Duration,
    stop: impl std::future::Future,
    idle: Idle,
) -> AdmitReport {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    let mut total = AdmitReport::default();
    let mut health = Health::default();
    for pass in 0u32.. {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        if pass % HEALTH_EVERY == 0 {
            match crate::obs::stats::saga_health(app).await {
                Ok(h) => health = h,
                Err(e) => tracing::warn!(error = %e, "saga health unknown; the rate stays"),
            }
        }
        match admit_pass(app, health).await {
            Ok(r) => {
                total.admitted += r.admitted;
                total.sessions_ended += r.sessions_ended;
                total.sales = total.sales.max(r.sales);
                if idle == Idle::Return && r.admitted == 0 && r.sessions_ended == 0 {
                    break;
                }
            }
            Err(e) => tracing::warn!(error = %e, "admitter pass failed"),
        }
    }
    total
}
