//! Refunds of paid virtual accounts (docs/adr/0030-partial-refunds.md,
//! "Refund accounts"): deposited money goes back by bank transfer, so a
//! refund of it needs the shopper's account — refused without one, kept
//! sealed beside the order until the PG answers, sent to the PG as
//! `refundReceiveAccount`, and never written anywhere in clear.

use serde_json::{Value, json};
use shop_tests::{TestApp, eventually, spawn_app, spawn_app_streamed};

const ORDER: &str = r#"{"items":[{"productId":"p2","quantity":1},{"productId":"bulk","quantity":3}]}"#;
const NUMBER: &str = "11012345677270";
const HOLDER: &str = "김환불";

fn account(number: &str) -> Value {
    json!({"bank": "88", "accountNumber": number, "holderName": HOLDER})
}

/// An order of 48,000 paid by deposit into a virtual account.
async fn deposited(app: &TestApp, user: &str) -> String {
    let (order_id, amount) = app.order(user, ORDER).await;
    let key = app.checkout(&order_id, amount, "VIRTUAL_ACCOUNT").await;
    let (status, body) = app.confirm(user, &order_id, &key, amount).await;
    assert_eq!((status, &body["status"]), (200, &json!("AWAITING_DEPOSIT")), "{body}");
    app.sim(reqwest::Method::POST, "/v1/sim/deposit", Some(json!({"paymentKey": key}))).await;
    app.wait_status(&order_id, "PAID").await;
    order_id
}

async fn refund_is(app: &TestApp, user: &str, order_id: &str, n: u64, status: &str) -> Value {
    eventually(10, &format!("refund {n} of {order_id} {status}"), || async {
        let (_, order) = app.get_order(user, order_id).await;
        let r = order["refunds"].as_array()?.iter().find(|r| r["refundNumber"] == n)?.clone();
        (r["status"] == status).then_some(r)
    })
    .await
}

/// The simulator's payment of the order once deposited.
async fn at_pg(app: &TestApp, order_id: &str) -> Value {
    let payments = app.pg_payments(order_id).await;
    payments.into_iter().find(|p| p["virtualAccount"].is_object()).expect("the virtual account's payment")
}

async fn kept(app: &TestApp, order_id: &str, n: u32) -> bool {
    let id = shop_domain::OrderId::parse(order_id).expect("id");
    app.store().refund_accounts().get(&id, n).await.expect("read").is_some()
}

#[tokio::test]
async fn a_deposited_refund_without_an_account_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    let id = deposited(&app, "u1").await;
    let events = app.event_types(&id).await;

    let (status, body) = app.refund("u1", &id, "no-account", json!({"amount": 1_000})).await;
    assert_eq!(
        (status, &body["type"]),
        (422, &json!("https://shop.example/problems/refund-account-required")),
        "{body}"
    );
    assert_eq!(body["cash"], 1_000);
    let (status, body) = app.post("u1", &format!("/orders/{id}/cancel"), json!({})).await;
    assert_eq!(
        (status, &body["type"]),
        (422, &json!("https://shop.example/problems/refund-account-required")),
        "{body}"
    );
    assert_eq!(body["cash"], 48_000);

    // A malformed account: 422, and the problem never repeats it.
    for bad in [
        json!({"bank": "99", "accountNumber": NUMBER, "holderName": HOLDER}),
        json!({"bank": "88", "accountNumber": "110-1234-5677270", "holderName": HOLDER}),
        json!({"bank": "88", "accountNumber": NUMBER}),
    ] {
        let (status, body) =
            app.refund("u1", &id, "bad-account", json!({"amount": 1_000, "refundAccount": bad.clone()})).await;
        assert_eq!((status, &body["type"]), (422, &json!("https://shop.example/problems/invalid-refund-account")));
        assert!(!body.to_string().contains("5677270") && !body.to_string().contains(HOLDER), "{body}");
        let (status, _) = app.post("u1", &format!("/orders/{id}/cancel"), json!({"refundAccount": bad})).await;
        assert_eq!(status, 422);
    }
    assert_eq!(app.post("u1", &format!("/orders/{id}/cancel"), json!({"reason": "x"})).await.0, 400);

    // Nothing moved: the order, its events, the PG.
    assert_eq!(app.status(&id).await, "PAID");
    assert_eq!(app.event_types(&id).await, events);
    assert!(app.pg_calls(&id, "cancel").await.is_empty());
    assert_eq!(at_pg(&app, &id).await["balanceAmount"], 48_000);
}

#[tokio::test]
async fn a_deposited_refund_reaches_the_pg_with_the_account_which_is_kept_sealed_only_until_then() {
    let app = spawn_app_streamed().await;
    let id = deposited(&app, "u1").await;

    // The kettle back (45,000), to the shopper's account.
    let body = json!({"lines": [{"productId": "p2", "quantity": 1}], "refundAccount": account(NUMBER)});
    let (status, answer) = app.refund("u1", &id, "part-1", body.clone()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!((&answer["refund"]["cash"], &answer["refund"]["toRefundAccount"]), (&json!(45_000), &json!(true)));
    assert!(!answer.to_string().contains("5677270"), "the answer never shows the account: {answer}");
    refund_is(&app, "u1", &id, 1, "DONE").await;
    // The same key and body: the stored answer, not a second refund.
    let (status, again) = app.refund("u1", &id, "part-1", body).await;
    assert_eq!((status, &again["refund"]["refundNumber"]), (202, &json!(1)));

    let pg = at_pg(&app, &id).await;
    assert_eq!((&pg["status"], &pg["balanceAmount"]), (&json!("PARTIAL_CANCELED"), &json!(3_000)), "{pg}");
    let sent = &pg["cancels"][0]["refundReceiveAccount"];
    assert_eq!(
        (&sent["bank"], &sent["accountNumber"], &sent["holderName"]),
        (&json!("88"), &json!("110*******7270"), &json!(HOLDER))
    );
    assert_eq!(pg["virtualAccount"]["refundStatus"], "COMPLETED");
    assert_eq!(app.stock("p2").await, 20, "the kettle is back in stock");
    assert!(!kept(&app, &id, 1).await, "the account is deleted once the PG answered");

    // The rest by cancel, to the same account: REFUNDED, the PG CANCELED.
    let (status, order) =
        app.post("u1", &format!("/orders/{id}/cancel"), json!({"refundAccount": account(NUMBER)})).await;
    assert_eq!((status, &order["status"]), (200, &json!("REFUND_PENDING")), "{order}");
    app.wait_status(&id, "REFUNDED").await;
    let pg = at_pg(&app, &id).await;
    assert_eq!((&pg["status"], &pg["balanceAmount"]), (&json!("CANCELED"), &json!(0)));
    assert!(pg["cancels"][1]["refundReceiveAccount"]["accountNumber"].is_string());
    assert!(!kept(&app, &id, 2).await);

    // Every write the table saw: the accounts were there, sealed, and
    // nothing — order, events, idempotency records — ever held them in clear.
    let images = shop_tests::stream_images(app.store().client(), app.store().table()).await;
    let sealed: Vec<&Value> = images
        .iter()
        .filter(|(_, i)| i["sk"]["S"].as_str().is_some_and(|sk| sk.starts_with("REFUNDACCOUNT#")))
        .map(|(_, i)| i)
        .collect();
    assert_eq!(sealed.len(), 2, "one sealed account per refund");
    for item in &sealed {
        assert_eq!(item["bank"]["S"], "88");
        assert!(item["sealed"]["S"].as_str().is_some_and(|s| s.len() > 40), "{item}");
        assert!(item["dataKey"]["S"].as_str().is_some_and(|k| k.starts_with("local:")));
    }
    let everything = serde_json::to_string(&images).expect("JSON");
    for secret in [NUMBER, "5677270", HOLDER] {
        assert!(!everything.contains(secret), "{secret} was written in clear");
    }
    let events = app.store().outbox().events_of(&shop_domain::OrderId::parse(&id).expect("id")).await.expect("events");
    assert!(events.iter().any(|e| e.detail_type == "PartialRefundRequested"));
    for e in &events {
        assert!(!e.detail.contains("5677270") && !e.detail.contains(HOLDER), "{}", e.detail);
    }
    let asked = events.iter().find(|e| e.detail_type == "PartialRefundRequested").expect("asked");
    let detail: Value = serde_json::from_str(&asked.detail).expect("JSON");
    assert_eq!(detail["data"]["refundAccount"], true, "the event carries the reference: {detail}");
}

#[tokio::test]
async fn an_account_the_bank_refuses_fails_the_refund_and_a_corrected_one_goes_through() {
    let app = spawn_app().await;
    let id = deposited(&app, "u1").await;

    // The bank does not know the account: FAILED with the PG's reason, the
    // order PAID again, the account no longer kept.
    let body = json!({"amount": 10_000, "refundAccount": account("11012340000")});
    assert_eq!(app.refund("u1", &id, "r-1", body).await.0, 202);
    let failed = refund_is(&app, "u1", &id, 1, "FAILED").await;
    assert!(failed["failure"].as_str().is_some_and(|f| f.starts_with("INVALID_REFUND_ACCOUNT_NUMBER")), "{failed}");
    app.wait_status(&id, "PAID").await;
    assert!(!kept(&app, &id, 1).await);

    // The holder's name refused (the simulator's fault): FAILED again.
    app.fault("cancel", "refund_account", 1).await;
    assert_eq!(app.refund("u1", &id, "r-2", json!({"amount": 10_000, "refundAccount": account(NUMBER)})).await.0, 202);
    let failed = refund_is(&app, "u1", &id, 2, "FAILED").await;
    assert!(failed["failure"].as_str().is_some_and(|f| f.starts_with("INVALID_REFUND_ACCOUNT_INFO")), "{failed}");
    assert_eq!(at_pg(&app, &id).await["balanceAmount"], 48_000, "nothing cancelled at the PG");

    // Corrected: a new refund, a new key at the PG, and it goes through.
    assert_eq!(app.refund("u1", &id, "r-3", json!({"amount": 10_000, "refundAccount": account(NUMBER)})).await.0, 202);
    refund_is(&app, "u1", &id, 3, "DONE").await;
    let pg = at_pg(&app, &id).await;
    assert_eq!((&pg["balanceAmount"], pg["cancels"].as_array().map(Vec::len)), (&json!(38_000), Some(1)));
    assert_eq!(app.status(&id).await, "PARTIALLY_REFUNDED");
}

#[tokio::test]
async fn a_card_refund_keeps_no_account_even_when_one_is_given() {
    let app = spawn_app().await;
    let (id, amount) = app.order("u1", ORDER).await;
    app.pay_by_card("u1", &id, amount).await;
    let body = json!({"amount": 5_000, "refundAccount": account(NUMBER)});
    let (status, answer) = app.refund("u1", &id, "card-1", body).await;
    assert_eq!((status, &answer["refund"]["toRefundAccount"]), (202, &json!(false)), "{answer}");
    assert!(!kept(&app, &id, 1).await, "a card's money goes back to the card");
    refund_is(&app, "u1", &id, 1, "DONE").await;
    let payments = app.pg_payments(&id).await;
    let pg = payments.iter().find(|p| p["status"] == "PARTIAL_CANCELED").expect("cancelled in part");
    assert!(pg["cancels"][0]["refundReceiveAccount"].is_null(), "{pg}");
}

/// The simulator as Toss: a deposited virtual account cannot be cancelled
/// without a refund account; one still waiting for its deposit can.
#[tokio::test]
async fn the_pg_refuses_to_cancel_a_deposit_without_an_account() {
    let app = spawn_app().await;
    let id = deposited(&app, "u1").await;
    let key = at_pg(&app, &id).await["paymentKey"].as_str().expect("key").to_owned();
    let cancel = |body: Value| {
        app.http
            .post(format!("{}/v1/payments/{key}/cancel", app.stack.pg_url()))
            .basic_auth(&app.stack.secrets.pg_secret_key, Some(""))
            .header("idempotency-key", uuid::Uuid::now_v7().to_string())
            .json(&body)
            .send()
    };
    let resp = cancel(json!({"cancelReason": "x", "cancelAmount": 1_000})).await.expect("cancel");
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.expect("JSON")["code"], "INVALID_REQUEST");
    let resp = cancel(json!({"cancelReason": "x", "cancelAmount": 1_000, "refundReceiveAccount": {"bank": "00", "accountNumber": NUMBER, "holderName": HOLDER}}))
        .await
        .expect("cancel");
    assert_eq!(resp.json::<Value>().await.expect("JSON")["code"], "INVALID_BANK");
    let resp = cancel(json!({"cancelReason": "x", "cancelAmount": 1_000, "refundReceiveAccount": account(NUMBER)}))
        .await
        .expect("cancel");
    assert_eq!(resp.status(), 200);
    assert_eq!(at_pg(&app, &id).await["balanceAmount"], 47_000);

    // Before the deposit the account is just closed: no refund account.
    let (waiting, amount) = app.order("u2", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    let key = app.checkout(&waiting, amount, "VIRTUAL_ACCOUNT").await;
    assert_eq!(app.confirm("u2", &waiting, &key, amount).await.0, 200);
    let (status, body) = app.post("u2", &format!("/orders/{waiting}/cancel"), json!({})).await;
    assert_eq!((status, &body["status"]), (200, &json!("CANCELLED")), "{body}");
    eventually(10, "the account closed at the PG", || async {
        app.pg_payments(&waiting).await.iter().any(|p| p["status"] == "CANCELED").then_some(())
    })
    .await;
}
