//! `shop bench --flash-sale` in small: a burst of shoppers at a sale of
//! limited stock, polling and on the WebSocket, buying through the whole
//! saga; every waiting-room invariant checked after quiescence. CI runs
//! it bigger (`.ci/run`); the documented run is 100,000 shoppers.

use shop_local::bench::flash::{FlashOptions, run};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_flash_sale_holds_every_invariant() {
    let parent = tempfile::tempdir().unwrap();
    let kept = parent.path().join("kept");
    let report = run(FlashOptions {
        shoppers: 400,
        stock: 60,
        capacity: 15,
        max_rate: 40,
        session_secs: 2,
        order_ttl_secs: 2,
        live_share: 0.25,
        concurrency: 64,
        seed: 3,
        patience: Duration::from_secs(120),
        settle_timeout: Duration::from_secs(60),
        slow_pg: None,
        keep_data_dir: Some(kept.clone()),
        progress: Default::default(),
    })
    .await
    .expect("the benchmark runs");
    assert!(report.ok(), "{}", report.text());
    assert_eq!(report.unsettled, 0, "{}", report.text());
    assert!(report.max_active_observed <= 15 && report.admitted > 15, "{}", report.text());
    assert!(report.units_sold > 0 && report.units_sold <= 60, "{}", report.text());
    assert!(report.pushes > 0 && report.polls > 0, "both ways of waiting were used: {}", report.text());
    assert!(report.cheats_refused > 0, "{}", report.text());
    assert_eq!(report.gave_up, 0, "{}", report.text());
    // The store stays for `shop up --data-dir`: the sale is in it.
    let (_engine, app, _) =
        shop_local::open(Some(&kept), Default::default(), None, None).await.expect("the kept store opens");
    let sale = shop_domain::SaleId::parse("flash").unwrap();
    let status = shop_app::usecases::sales::status(&app, &sale).await.unwrap().expect("the sale is kept");
    assert_eq!(status.sold, report.units_sold, "{}", report.text());
}
