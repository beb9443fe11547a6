//! The chaos injector (`shop up --chaos SEED`, driven by `shop bench --saga
//! --chaos`): every `every`, one fault drawn at random (seeded) from every
//! class the saga must survive, armed for its next occurrence:
//!
//! - the PG: confirm declined / 500 / timed out / answer lost; lookups and
//!   cancels failing, timing out or losing their answer; cancels refused;
//! - the PG's webhooks: duplicated, reordered, delayed, failed (retried on
//!   Toss's schedule) or lost for good;
//! - the data platform: 500s and slowness;
//! - the consumers: a crash before handling; after handling, before
//!   recording it (the work done, the claim held until its lease lapses);
//!   or after recording it, before the message is deleted (the redelivery
//!   finds the event finished) — failpoints of [`shop_app::chaos`];
//! - the store: the next TransactWriteItems throttled, conflicting, or
//!   failing unexpectedly (a 500), whoever sends it — the app or the
//!   emulated queues.
//!
//! SIGKILL is the driver's part (it kills and restarts this process). Each
//! injection appends its name to `<data-dir>/chaos.log`, so the driver can
//! count them across restarts. Only the local stack has this module; a
//! Lambda binary has no failpoints at all.

use crate::sim::pg::{Fault, FaultKind, Op, PgSim};
use crate::sim::sink::{Sink, SinkFault};
use shop_app::App;
use shop_embedded::Engine;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// splitmix64: small, fast, and the same sequence on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone)]
pub struct ChaosOptions {
    pub seed: u64,
    /// One fault per this period.
    pub every: Duration,
    /// Where injections are logged (`chaos.log`); none: not logged.
    pub log: Option<PathBuf>,
}

/// What one injection arms.
#[derive(Debug, Clone, Copy)]
enum Action {
    Pg(Op, FaultKind),
    Sink(&'static str),
    /// A consumer failpoint (`consumer.<name>` or `consumer.<name>.crash`).
    Failpoint(&'static str),
    /// The next TransactWriteItems cancelled with this code.
    Store(&'static str),
}

/// Every fault the injector draws from, with its name in the log.
const FAULTS: [(&str, Action); 32] = [
    ("pg.confirm.decline", Action::Pg(Op::Confirm, FaultKind::Decline)),
    ("pg.confirm.error", Action::Pg(Op::Confirm, FaultKind::Error)),
    ("pg.confirm.timeout", Action::Pg(Op::Confirm, FaultKind::Timeout)),
    ("pg.confirm.lost_response", Action::Pg(Op::Confirm, FaultKind::LostResponse)),
    ("pg.lookup.error", Action::Pg(Op::Lookup, FaultKind::Error)),
    ("pg.lookup.timeout", Action::Pg(Op::Lookup, FaultKind::Timeout)),
    ("pg.lookup.lost_response", Action::Pg(Op::Lookup, FaultKind::LostResponse)),
    ("pg.cancel.decline", Action::Pg(Op::Cancel, FaultKind::Decline)),
    ("pg.cancel.error", Action::Pg(Op::Cancel, FaultKind::Error)),
    ("pg.cancel.timeout", Action::Pg(Op::Cancel, FaultKind::Timeout)),
    ("pg.cancel.lost_response", Action::Pg(Op::Cancel, FaultKind::LostResponse)),
    // The bank refuses a deposited virtual account's refund account: the
    // refund FAILS with the PG's reason and the shopper asks again.
    ("pg.cancel.refund_account", Action::Pg(Op::Cancel, FaultKind::RefundAccount)),
    ("pg.webhook.duplicate", Action::Pg(Op::Webhook, FaultKind::Duplicate)),
    ("pg.webhook.reorder", Action::Pg(Op::Webhook, FaultKind::Reorder)),
    ("pg.webhook.delay", Action::Pg(Op::Webhook, FaultKind::Delay)),
    ("pg.webhook.error", Action::Pg(Op::Webhook, FaultKind::Error)),
    ("pg.webhook.lost", Action::Pg(Op::Webhook, FaultKind::Lost)),
    // A deposit DONE, taken back (WAITING_FOR_DEPOSIT), DONE again (ADR 0031).
    ("pg.deposit.regress", Action::Pg(Op::Deposit, FaultKind::Regress)),
    ("sink.error", Action::Sink("error")),
    ("sink.slow", Action::Sink("slow")),
    ("consumer.coupon", Action::Failpoint("consumer.coupon")),
    ("consumer.compensation", Action::Failpoint("consumer.compensation")),
    ("consumer.analytics", Action::Failpoint("consumer.analytics")),
    ("consumer.coupon.crash", Action::Failpoint("consumer.coupon.crash")),
    ("consumer.compensation.crash", Action::Failpoint("consumer.compensation.crash")),
    ("consumer.analytics.crash", Action::Failpoint("consumer.analytics.crash")),
    ("consumer.coupon.undeleted", Action::Failpoint("consumer.coupon.undeleted")),
    ("consumer.compensation.undeleted", Action::Failpoint("consumer.compensation.undeleted")),
    ("consumer.analytics.undeleted", Action::Failpoint("consumer.analytics.undeleted")),
    ("store.throttled", Action::Store("ThrottlingError")),
    ("store.conflict", Action::Store("TransactionConflict")),
    ("store.failed", Action::Store("ValidationError")),
];

/// The names of every fault class, as logged.
pub fn fault_names() -> impl Iterator<Item = &'static str> {
    FAULTS.iter().map(|(name, _)| *name)
}

/// Arms one fault every `opts.every` until `stop` fires.
pub async fn inject(
    opts: ChaosOptions,
    app: App,
    pg: Arc<PgSim>,
    sink: Arc<Sink>,
    engine: Option<Engine>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut rng = Rng::new(opts.seed);
    let mut log = opts.log.as_ref().and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
    let mut tick = tokio::time::interval(opts.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let Some((name, action)) = FAULTS.get(rng.below(FAULTS.len() as u64) as usize).copied() else { continue };
        let armed = match action {
            Action::Pg(op, fault) => pg.arm(Fault { op, fault, count: 1 }).await.is_ok(),
            Action::Sink(fault) => sink.arm(SinkFault { fault: fault.to_owned(), count: 1 }).await.is_ok(),
            Action::Failpoint(point) => {
                app.chaos.arm(point, 1);
                true
            }
            Action::Store(code) => match &engine {
                Some(e) => {
                    e.cancel_next_transactions(code, 1);
                    true
                }
                None => false,
            },
        };
        if let (true, Some(f)) = (armed, log.as_mut()) {
            // One line per injection; lost lines only undercount.
            let _ = writeln!(f, "{name}");
        }
    }
}
