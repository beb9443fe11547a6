//! `shop dump`: one canonical document of the business state, identical
//! after a replay of the whole archive and a republish of every event —
//! the consumers dedupe, so nothing in the business changes.

use serde_json::json;
use shop_local::dump::{Simulated, dump, text};
use shop_tests::{eventually, spawn_app};

#[tokio::test]
async fn the_dump_is_canonical_and_unchanged_by_replay_and_republish() {
    let app = spawn_app().await;
    let (card, amount) = app.order("u1", r#"{"items":[{"productId":"p1","quantity":1}],"couponId":"c1"}"#).await;
    app.pay_by_card("u1", &card, amount).await;
    let (points, _) = app.order("rich", r#"{"items":[{"productId":"p1","quantity":2}]}"#).await;
    let (status, body) = app.post("rich", "/payments/points", json!({"orderId": points})).await;
    assert_eq!((status, &body["status"]), (200, &json!("PAID")), "{body}");
    let (cancelled, _) = app.order("u1", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    let (status, _) = app.post("u1", &format!("/orders/{cancelled}/cancel"), json!({})).await;
    assert_eq!(status, 200);
    // A campaign's claim: its CouponIssued goes through replay and republish too.
    assert_eq!(app.claim("u2", "rush", "dump-claim").await.0, 201);
    for order in [&card, &points] {
        eventually(20, "exported", || async { (!app.exported(order).await.is_empty()).then_some(()) }).await;
    }
    eventually(20, "coupon USED", || async { (app.coupon_status("c1").await == "USED").then_some(()) }).await;
    app.settled().await;

    let sims = || Simulated { pg: Some(&app.stack.pg), sink: Some(&app.stack.sink) };
    let before = text(&dump(&app.stack.app, sims()).await.expect("dump")).expect("text");
    assert_eq!(before, text(&dump(&app.stack.app, sims()).await.expect("dump")).expect("text"), "canonical");
    let state: serde_json::Value = serde_json::from_str(&before).expect("JSON");
    assert_eq!(state["orders"][&card]["status"], "PAID");
    assert_eq!(state["orders"][&cancelled]["status"], "CANCELLED");
    // The API's dialect: camelCase, RFC 3339, the API's status names.
    assert_eq!((&state["coupons"]["c1"]["status"], &state["coupons"]["c1"]["orderId"]), (&json!("USED"), &json!(card)));
    assert_eq!(state["orders"][&card]["paymentMethod"], "CARD");
    assert!(state["orders"][&card]["createdAt"].as_str().is_some_and(|t| t.ends_with('Z') && t.contains('T')));
    assert_eq!(state["payments"].as_object().map(|p| p.values().all(|p| p["status"] == "DONE")), Some(true));
    for section in ["orders", "payments", "products", "coupons", "campaigns", "points"] {
        for entity in state[section].as_object().expect(section).values() {
            api_dialect(section, entity);
        }
    }
    assert_eq!(state["sink"][format!("{card}#3")]["accepted"], 1);
    assert!(state["pg"].as_object().is_some_and(|pg| pg.len() == 1), "{}", state["pg"]);
    assert!(state["points"]["rich"]["ledger"].as_array().is_some_and(|l| !l.is_empty()));
    assert_eq!(state["campaigns"]["rush"]["issued"], 1);

    // Every archived event to every consumer again, then every outbox event again.
    let rules = shop_local::emulate::rules::rules().expect("rules");
    // The bus archives on the system clock (the app's is the test's manual one).
    let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock);
    let (from, to) = (now.plus_secs(-3_600), now.plus_secs(60));
    let replayed = shop_local::ops::replay(&app.stack.app, &rules, from, to, None).await.expect("replay");
    assert!(replayed.deliveries > 0);
    app.settled().await;
    let since = app.stack.app.clock.now().plus_secs(-3_600);
    let republished = shop_local::ops::republish(&app.stack.app, since).await.expect("republish");
    assert!(republished > 0);
    app.settled().await;
    let after = text(&dump(&app.stack.app, sims()).await.expect("dump")).expect("text");
    assert_eq!(after, before, "replay and republish changed the business state");
}

/// Every field name camelCase, every time (`…At`, `at`) an RFC 3339 string.
fn api_dialect(path: &str, v: &serde_json::Value) {
    match v {
        serde_json::Value::Object(fields) => {
            for (name, value) in fields {
                assert!(!name.contains('_'), "{path}.{name}: not camelCase");
                if name.ends_with("At") || name == "at" {
                    assert!(
                        value.is_null() || value.as_str().is_some_and(chrono_like),
                        "{path}.{name}: {value} is not RFC 3339"
                    );
                }
                api_dialect(&format!("{path}.{name}"), value);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| api_dialect(path, i)),
        _ => {}
    }
}

fn chrono_like(t: &str) -> bool {
    t.len() >= 20 && t.as_bytes().get(10) == Some(&b'T') && t.ends_with('Z')
}
