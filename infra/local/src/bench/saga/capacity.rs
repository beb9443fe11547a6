//! `shop bench --saga --find-capacity`: the **sustainable settled rate** —
//! the highest open-loop rate of orders whose time to settle stays within a
//! second at the 99th percentile, over a whole window (60 s by default).
//!
//! Each probe is a saga run of its own ([`super::run`], a fresh stack and
//! data dir: no probe inherits another's backlog) with `rate × window`
//! orders started on schedule, whether or not earlier ones are done (open
//! loop: the shoppers do not slow down when the stack does). A probe
//! **passes** when
//! - the shoppers kept to the schedule (the load ended within a second of
//!   the window: the API was not the limit),
//! - every order settled and no invariant broke,
//! - time to settle p99 ≤ the target for paid orders (OrderPaid → last
//!   consumer) and for refunds (RefundRequested → last consumer).
//!
//! The search doubles the rate from `start_rate` while probes pass, then
//! bisects between the best pass and the lowest failure until they are
//! within `precision`; a failure at the start halves it down to `min_rate`.
//! The report keeps every probe and the whole report of the best one, whose
//! engine figure (measured in that same run) gives the ratio saga ÷ engine.

use super::{Report, SagaOptions};
use std::time::Duration;

#[derive(Clone)]
pub struct CapacityOptions {
    /// Seed, TTL, stall window and progress for every probe (orders, rate
    /// and concurrency are the probe's own).
    pub saga: SagaOptions,
    /// How long each probe places orders.
    pub window: Duration,
    /// The time-to-settle p99 a probe must keep, in milliseconds.
    pub p99_ms: f64,
    /// The first rate tried (orders/s).
    pub start_rate: f64,
    /// No rate above this is tried; reaching it is reported as "at least".
    pub max_rate: f64,
    /// Below this the search gives up (the stack sustains nothing).
    pub min_rate: f64,
    /// Stop when the lowest failure is within this fraction of the best pass.
    pub precision: f64,
}

/// Requests in flight a probe allows: enough that shoppers start on
/// schedule at any rate the stack can settle (the listeners take 1,024
/// connections).
const OPEN_LOOP: usize = 512;

/// One probe: a rate, what it did, and whether it passed.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub rate: f64,
    pub orders: usize,
    /// Seconds the shoppers took for the window's orders.
    pub load_secs: f64,
    pub settled: usize,
    pub unsettled: usize,
    pub violations: u64,
    pub time_to_settle_p99_ms: f64,
    pub refund_to_settle_p99_ms: f64,
    pub engine_transactions_per_sec: f64,
    pub pass: bool,
    /// Why it failed.
    pub why: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityReport {
    pub window_secs: f64,
    pub p99_target_ms: f64,
    pub probes: Vec<Probe>,
    /// The highest rate that passed (0: none did).
    pub sustainable_per_sec: f64,
    /// It passed at the search's ceiling: the stack may sustain more.
    pub at_ceiling: bool,
    /// The sustainable rate over the raw engine's 4-put transactions/s, measured in that probe.
    pub saga_vs_engine: f64,
    /// The whole report of the probe at the sustainable rate.
    pub at_capacity: Option<Report>,
}

impl CapacityReport {
    /// A rate was found and its run was clean.
    pub fn ok(&self) -> bool {
        self.at_capacity.as_ref().is_some_and(Report::ok)
    }

    pub fn text(&self) -> String {
        let mut out = vec![format!(
            "capacity search: probes of {:.0}s, open loop, time to settle p99 ≤ {:.0} ms",
            self.window_secs, self.p99_target_ms
        )];
        for p in &self.probes {
            out.push(format!(
                "  {:>7.1}/s  {:>6} orders  load {:>5.1}s  settle p99 {:>7.0} ms (refunds {:>6.0} ms)  engine {:>5.0} TWI/s  {}{}",
                p.rate,
                p.orders,
                p.load_secs,
                p.time_to_settle_p99_ms,
                p.refund_to_settle_p99_ms,
                p.engine_transactions_per_sec,
                if p.pass { "pass" } else { "FAIL: " },
                p.why.join("; ")
            ));
        }
        match &self.at_capacity {
            Some(r) => {
                out.push(format!(
                    "sustainable: {}{:.1} settled orders/s (engine {:.0} TWI/s in that run; saga/engine {:.3})",
                    if self.at_ceiling { "at least " } else { "" },
                    self.sustainable_per_sec,
                    r.engine_transactions_per_sec,
                    self.saga_vs_engine
                ));
                out.push(String::new());
                out.push(format!("the run at {:.1}/s:", self.sustainable_per_sec));
                out.push(r.text());
            }
            None => out.push("sustainable: no rate passed".into()),
        }
        out.join("\n")
    }
}

/// The search (see the module's doc).
pub async fn find(opts: CapacityOptions) -> anyhow::Result<CapacityReport> {
    anyhow::ensure!(opts.window > Duration::ZERO, "the window must be positive");
    anyhow::ensure!(
        opts.min_rate > 0.0 && opts.min_rate <= opts.start_rate && opts.start_rate <= opts.max_rate,
        "rates must satisfy 0 < min ≤ start ≤ max"
    );
    let (mut best, mut lowest_failure): (Option<(f64, Report)>, Option<f64>) = (None, None);
    let mut probes = Vec::new();
    let mut rate = opts.start_rate;
    loop {
        let (probe, report) = probe(&opts, rate).await?;
        let passed = probe.pass;
        probes.push(probe);
        let next = if passed {
            best = Some((rate, report));
            if rate >= opts.max_rate {
                break;
            }
            match lowest_failure {
                None => (rate * 2.0).min(opts.max_rate),
                Some(f) => (rate + f) / 2.0,
            }
        } else {
            lowest_failure = Some(rate);
            match &best {
                None if rate / 2.0 < opts.min_rate => break,
                None => rate / 2.0,
                Some((b, _)) => (b + rate) / 2.0,
            }
        };
        if let (Some((b, _)), Some(f)) = (&best, lowest_failure)
            && f <= b * (1.0 + opts.precision)
        {
            break;
        }
        rate = round(next);
    }
    let at_ceiling = best.as_ref().is_some_and(|(r, _)| *r >= opts.max_rate);
    let sustainable = best.as_ref().map(|(r, _)| *r).unwrap_or(0.0);
    let at_capacity = best.map(|(_, r)| r);
    Ok(CapacityReport {
        window_secs: opts.window.as_secs_f64(),
        p99_target_ms: opts.p99_ms,
        probes,
        sustainable_per_sec: sustainable,
        at_ceiling,
        saga_vs_engine: at_capacity
            .as_ref()
            .map(|r| sustainable / r.engine_transactions_per_sec.max(f64::MIN_POSITIVE))
            .unwrap_or(0.0),
        at_capacity,
    })
}

/// Rates above 10/s in whole orders, below in tenths.
fn round(rate: f64) -> f64 {
    if rate >= 10.0 { rate.round() } else { (rate * 10.0).round() / 10.0 }
}

/// One probe at `rate`: its run, and whether it passed.
async fn probe(opts: &CapacityOptions, rate: f64) -> anyhow::Result<(Probe, Report)> {
    let orders = ((rate * opts.window.as_secs_f64()).ceil() as usize).max(1);
    opts.saga.progress.phase(&format!("probe at {rate}/s ({orders} orders)"), 0);
    let run = SagaOptions {
        orders,
        rate: Some(rate),
        concurrency: opts.saga.concurrency.max(OPEN_LOOP),
        // Every probe a fresh store.
        keep_data_dir: None,
        ..opts.saga.clone()
    };
    let r = super::run(run).await?;
    let mut why = Vec::new();
    let schedule = opts.window.as_secs_f64() + 1.0;
    if r.load_secs > schedule {
        why.push(format!("shoppers fell behind ({:.1}s for a {:.0}s schedule)", r.load_secs, schedule - 1.0));
    }
    if r.unsettled > 0 {
        why.push(format!("{} unsettled", r.unsettled));
    }
    if r.violations.total() > 0 {
        why.push(format!("{} violations", r.violations.total()));
    }
    for (what, p) in [("settle", &r.time_to_settle_ms), ("refund settle", &r.refund_to_settle_ms)] {
        if p.p99 > opts.p99_ms {
            why.push(format!("{what} p99 {:.0} ms", p.p99));
        }
    }
    let probe = Probe {
        rate,
        orders,
        load_secs: r.load_secs,
        settled: r.settled,
        unsettled: r.unsettled,
        violations: r.violations.total(),
        time_to_settle_p99_ms: r.time_to_settle_ms.p99,
        refund_to_settle_p99_ms: r.refund_to_settle_ms.p99,
        engine_transactions_per_sec: r.engine_transactions_per_sec,
        pass: why.is_empty(),
        why,
    };
    Ok((probe, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(p99_ms: f64) -> CapacityOptions {
        CapacityOptions {
            saga: SagaOptions {
                orders: 0,
                concurrency: 8,
                seed: 5,
                rate: None,
                order_ttl_secs: 1,
                settle_timeout: Duration::from_secs(30),
                endpoint: None,
                progress: Default::default(),
                keep_data_dir: None,
            },
            window: Duration::from_secs(2),
            p99_ms,
            start_rate: 4.0,
            max_rate: 8.0,
            min_rate: 2.0,
            precision: 0.1,
        }
    }

    /// A stack that settles a few orders a second within the target passes
    /// each probe up to the ceiling, and says the ceiling was what stopped it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_search_climbs_while_probes_pass() {
        let r = find(opts(5_000.0)).await.unwrap();
        let rates: Vec<f64> = r.probes.iter().map(|p| p.rate).collect();
        assert_eq!(rates, [4.0, 8.0], "{}", r.text());
        assert!(r.probes.iter().all(|p| p.pass && p.orders == (p.rate * 2.0) as usize), "{}", r.text());
        assert_eq!(r.sustainable_per_sec, 8.0);
        assert!(r.at_ceiling && r.ok() && r.saga_vs_engine > 0.0, "{}", r.text());
        assert!(r.text().contains("sustainable: at least 8.0 settled orders/s"), "{}", r.text());
    }

    /// A target no run can meet fails every probe: the search halves the
    /// rate down to its floor and reports that nothing is sustainable.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_target_no_probe_meets_finds_no_rate() {
        let r = find(opts(0.0)).await.unwrap();
        let rates: Vec<f64> = r.probes.iter().map(|p| p.rate).collect();
        assert_eq!(rates, [4.0, 2.0], "{}", r.text());
        assert!(r.probes.iter().all(|p| !p.pass && p.why.iter().any(|w| w.contains("settle p99"))), "{}", r.text());
        assert_eq!(r.sustainable_per_sec, 0.0);
        assert!(!r.ok() && r.at_capacity.is_none());
        assert!(r.text().contains("sustainable: no rate passed"), "{}", r.text());
    }
}
