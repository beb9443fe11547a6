//! `shop bench --saga --chaos` in small: the stack in a child process,
//! every fault class injected, one SIGKILL mid-load, quiescence, the
//! invariants, and a replay and republish that change nothing. CI runs the
//! same on 2,000 orders (`.ci/run`); the documented soak is 100,000.

use shop_local::bench::saga::SagaOptions;
use shop_local::bench::saga::chaos::{ChaosRun, run};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_chaos_soak_with_a_sigkill_holds_every_invariant() {
    let report = run(ChaosRun {
        saga: SagaOptions {
            orders: 150,
            concurrency: 12,
            seed: 7,
            rate: None,
            order_ttl_secs: 2,
            settle_timeout: Duration::from_secs(120),
            endpoint: None,
            progress: Default::default(),
            keep_data_dir: None,
        },
        kills: 1,
        every: Duration::from_millis(50),
        replay_check: true,
        exe: Some(env!("CARGO_BIN_EXE_shop").into()),
    })
    .await
    .expect("the soak runs");
    assert!(report.ok(), "{}", report.text());
    assert_eq!(report.kills, 1);
    // Every order placed settled (a shopper may give up paying, never placing).
    let placed: usize = report.paths.values().flat_map(|m| m.values()).sum();
    assert_eq!((report.settled, placed), (150, 150), "{}", report.text());
    let classes = report.faults.values().filter(|n| **n > 0).count();
    assert!(report.faults_total >= 27 && classes >= 20, "{}", report.text());
    assert!(report.replay_check.as_ref().is_some_and(|r| r.identical && r.replayed > 0), "{}", report.text());
}
