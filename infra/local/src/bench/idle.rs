//! `shop bench --idle`: what a stack costs while nobody uses it — the CPU
//! its loops, timers and scheduler take over a quiet window (all threads of
//! this process, from the kernel's per-thread accounting), and the store
//! calls they make. A developer leaves `shop up` running beside a browser
//! all day; it should not spin a fan.

use crate::stack::{Stack, StackOptions};
use serde::Serialize;
use std::time::{Duration, Instant};

pub struct IdleOptions {
    /// The quiet window measured, after a warm-up.
    pub window: Duration,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdleReport {
    pub secs: f64,
    /// CPU time of every thread of the process over the window.
    pub cpu_ms: f64,
    /// That time as a share of one core.
    pub percent_of_a_core: f64,
    /// Store calls in the window: the app's (the scheduler's, the gauges')
    /// and the emulated services' (queues, publisher).
    pub app_store_calls: u64,
    pub emulation_store_calls: u64,
}

impl IdleReport {
    pub fn text(&self) -> String {
        format!(
            "idle for {:.0} s: {:.0} ms of CPU = {:.2} % of a core; store calls: {} by the app, {} by the emulated services ({:.1}/s)",
            self.secs,
            self.cpu_ms,
            self.percent_of_a_core,
            self.app_store_calls,
            self.emulation_store_calls,
            (self.app_store_calls + self.emulation_store_calls) as f64 / self.secs.max(f64::EPSILON),
        )
    }
}

/// CPU time of every thread of this process so far (Linux: the first field
/// of each thread's `schedstat`, in nanoseconds); `None` elsewhere.
pub fn process_cpu() -> Option<Duration> {
    let mut total: u64 = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

pub async fn run(opts: IdleOptions) -> anyhow::Result<IdleReport> {
    let dir = tempfile::tempdir()?;
    let stack = Stack::start(StackOptions {
        data_dir: Some(dir.path().to_owned()),
        seed_if_new: Some(crate::seed::Catalog::parse(crate::seed::DEMO_CATALOG)?),
        ..StackOptions::default()
    })
    .await?;
    // Warm-up: the loops find nothing and settle into their idle waits.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let calls = |m: &crate::engine::Meter| m.snapshot().calls.values().sum::<u64>();
    let (app_before, emulation_before) = (calls(&stack.meter), calls(&stack.emulation_meter));
    let cpu_before = process_cpu().ok_or_else(|| anyhow::anyhow!("no per-thread CPU accounting here (Linux only)"))?;
    let started = Instant::now();
    tokio::time::sleep(opts.window).await;
    let cpu = process_cpu().unwrap_or(cpu_before).saturating_sub(cpu_before);
    let secs = started.elapsed().as_secs_f64();
    let report = IdleReport {
        secs,
        cpu_ms: cpu.as_secs_f64() * 1000.0,
        percent_of_a_core: 100.0 * cpu.as_secs_f64() / secs.max(f64::EPSILON),
        app_store_calls: calls(&stack.meter) - app_before,
        emulation_store_calls: calls(&stack.emulation_meter) - emulation_before,
    };
    stack.stop().await;
    Ok(report)
}
