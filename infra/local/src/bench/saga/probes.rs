//! What a saga run measures beside the saga: the console's pages with the
//! run's orders in the store, and the engine's own transaction rate.

use super::report::Percentiles;
use super::{client, mix, unmetered};
use crate::Stack;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::time::Instant;

/// Loads of each console page the benchmark times.
pub const CONSOLE_LOADS: usize = 10;

/// Each page of the saga console, timed with the run's orders in the store
/// (an operator's token; one request at a time, after the load).
pub(super) async fn console_latency(
    stack: &Stack,
    work: &mix::Workload,
    runs: &[client::Run],
) -> anyhow::Result<BTreeMap<&'static str, Percentiles>> {
    let token = crate::jwt::issue_operator(&stack.secrets.jwt_secret, "bench", stack.app.clock.now().seconds(), 3600);
    let http = reqwest::Client::new();
    let order = runs.iter().rev().find_map(|r| r.order_id.clone()).unwrap_or_default();
    let user = work.plans.last().map(|p| p.user.to_string()).unwrap_or_default();
    let pages: [(&'static str, String); 19] = [
        ("overview (last hour)", "/console/overview?range=1h".into()),
        ("overview charts (last day)", "/console/overview/charts?range=24h".into()),
        ("alert strip", "/console/alerts".into()),
        ("orders (the stuck lists)", "/console/orders".into()),
        ("orders by status PAID", "/console/orders?status=PAID".into()),
        ("orders by status EXPIRED", "/console/orders?status=EXPIRED".into()),
        ("orders of a user", format!("/console/orders?q={user}")),
        ("find: placed, no filter", "/console/orders/find".into()),
        ("find: status PAID by card", "/console/orders/find?status=PAID&method=card".into()),
        ("find: status CANCELLED, last hour", "/console/orders/find?status=CANCELLED&from=-1h".into()),
        ("find: retrying or dead-lettered", "/console/orders/find?stuck=failing".into()),
        ("find: payments in doubt", "/console/orders/find?stuck=in-doubt".into()),
        ("find: a user's PAID orders", format!("/console/orders/find?user={user}&status=PAID")),
        ("find: export CSV, status EXPIRED", "/console/orders/find/export?format=csv&status=EXPIRED".into()),
        ("one order's saga", format!("/console/orders/{order}")),
        ("one order's live lanes", format!("/console/orders/{order}/saga")),
        ("queues", "/console/queues".into()),
        ("audit", "/console/audit".into()),
        ("sales", "/console/sales".into()),
    ];
    let mut out = BTreeMap::new();
    for (name, path) in pages {
        let mut ms = Vec::with_capacity(CONSOLE_LOADS);
        for _ in 0..CONSOLE_LOADS {
            let started = Instant::now();
            let resp = http.get(format!("{}{path}", stack.url())).bearer_auth(&token).send().await?;
            anyhow::ensure!(resp.status().is_success(), "console {path}: {}", resp.status());
            resp.bytes().await?;
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        out.insert(name, Percentiles::of(ms));
    }
    Ok(out)
}

/// Rounds of the engine's limit; the median is reported (one round varies
/// by a third between runs on a shared machine).
const ENGINE_ROUNDS: usize = 3;

/// The engine's own limit: TransactWriteItems of four new items each (an
/// order placement's shape), at the benchmark's concurrency (32 at most: one
/// engine thread serves them all, and a figure taken at 512 would not be
/// comparable), through the same in-process client the stack uses; the
/// median of [`ENGINE_ROUNDS`] rounds of `count`.
pub(super) async fn engine_limit(stack: &Stack, concurrency: usize, count: usize) -> anyhow::Result<f64> {
    let mut rounds = Vec::with_capacity(ENGINE_ROUNDS);
    for round in 0..ENGINE_ROUNDS {
        rounds.push(engine_round(stack, concurrency.min(32), count, round).await?);
    }
    rounds.sort_by(f64::total_cmp);
    Ok(rounds.get(ENGINE_ROUNDS / 2).copied().unwrap_or_default())
}

async fn engine_round(stack: &Stack, concurrency: usize, count: usize, round: usize) -> anyhow::Result<f64> {
    use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
    let client = unmetered(stack);
    let table = stack.app.config.table_name.clone();
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..count)
        .map(|i| {
            let (client, table) = (client.clone(), table.clone());
            async move {
                let mut items = Vec::with_capacity(4);
                for sk in ["A", "B", "C", "D"] {
                    let put = Put::builder()
                        .table_name(&table)
                        .item("pk", AttributeValue::S(format!("BENCH#{round}-{i}")))
                        .item("sk", AttributeValue::S(sk.into()))
                        .item("payload", AttributeValue::S("x".repeat(200)))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()?;
                    items.push(TransactWriteItem::builder().put(put).build());
                }
                client.transact_write_items().set_transact_items(Some(items)).send().await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}
