//! First-come coupon campaigns: an operator creates one (a shopper or a
//! forgery cannot, bad terms are refused and write nothing); a rush of
//! claims never issues more than the total or two coupons to one user; a
//! claim is idempotent, issues a usable coupon and puts `CouponIssued` on
//! the bus.

use futures::StreamExt;
use serde_json::{Value, json};
use shop_app::usecases::campaigns::Created;
use shop_tests::{TestApp, spawn_app, spawn_app_driven};
use std::collections::HashSet;

fn problem_type(body: &Value) -> &str {
    body["type"].as_str().and_then(|t| t.strip_prefix("https://shop.example/problems/")).unwrap_or("")
}

#[tokio::test]
async fn ten_thousand_claims_from_five_thousand_users_issue_exactly_the_hundred() {
    let app = spawn_app_driven().await;
    // Every user claims twice at once, with two keys: 10,000 requests, 500 in flight.
    let requests: Vec<(String, String)> = (0..10_000).map(|i| (format!("fan{}", i / 2), format!("key-{i}"))).collect();
    let answers: Vec<(String, u16, Value)> = futures::stream::iter(requests.iter())
        .map(|(user, key)| {
            let app = &app;
            async move {
                let (status, _, body) = app.claim(user, "rush", key).await;
                (user.clone(), status, body)
            }
        })
        .buffer_unordered(500)
        .collect()
        .await;

    let winners: Vec<&(String, u16, Value)> = answers.iter().filter(|(_, s, _)| *s == 201).collect();
    assert_eq!(winners.len(), 100, "exactly the total is issued");
    let refused = |kind: &str| answers.iter().filter(|(_, s, b)| *s == 409 && problem_type(b) == kind).count();
    assert_eq!(
        refused("campaign-sold-out") + refused("campaign-already-claimed"),
        9_900,
        "every other answer says why"
    );
    let winning_users: HashSet<&str> = winners.iter().map(|(u, _, _)| u.as_str()).collect();
    assert_eq!(winning_users.len(), 100, "no user won twice");
    let coupon_ids: HashSet<&str> = winners.iter().filter_map(|(_, _, b)| b["couponId"].as_str()).collect();
    assert_eq!(coupon_ids.len(), 100);

    // The store agrees: the counter is the number of coupons, one per winner, none for anyone else.
    let (_, _, campaign) = app.get(None, "/campaigns/rush").await;
    assert_eq!(
        (&campaign["issued"], &campaign["remaining"], &campaign["open"]),
        (&json!(100), &json!(0), &json!(false))
    );
    let mut coupons = 0;
    for i in 0..5_000 {
        let user = shop_domain::UserId::parse(format!("fan{i}")).unwrap();
        let held = app.store().coupons().of_user(&user).await.unwrap().len();
        assert!(held <= 1, "{user} holds {held} coupons");
        assert_eq!(held == 1, winning_users.contains(user.as_str()), "{user}");
        coupons += held;
    }
    assert_eq!(coupons, 100, "the counter equals the coupons issued");
}

#[tokio::test]
async fn a_claim_issues_one_usable_coupon_replays_the_same_answer_and_puts_coupon_issued_on_the_bus() {
    let app = spawn_app().await;
    let (status, _, before) = app.get(None, "/campaigns/rush").await;
    assert_eq!(status, 200);
    assert_eq!(
        before,
        json!({"campaignId": "rush", "name": "Opening rush", "total": 100, "issued": 0, "remaining": 100,
               "startsAt": "2026-11-01T00:00:00.000Z", "endsAt": "2026-12-01T00:00:00.000Z", "open": true,
               "coupon": {"kind": "FIXED", "value": 2000, "minOrderAmount": 10000, "expiresAt": "2027-01-01T00:00:00.000Z"}})
    );
    let (status, _, coupon) = app.claim("u2", "rush", "k1").await;
    assert_eq!(status, 201, "{coupon}");
    assert_eq!(
        (&coupon["status"], &coupon["usable"], &coupon["value"]),
        (&json!("ISSUED"), &json!(true), &json!(2000))
    );
    let (status, headers, again) = app.claim("u2", "rush", "k1").await;
    assert_eq!((status, &again), (201, &coupon), "a retry with the key gets the same answer");
    assert_eq!(headers["idempotent-replayed"], "true");
    let (status, _, other_key) = app.claim("u2", "rush", "k2").await;
    assert_eq!((status, problem_type(&other_key)), (409, "campaign-already-claimed"));
    let (status, _, reused) = app.claim("u2", "soon", "k1").await;
    assert_eq!((status, problem_type(&reused)), (422, "idempotency-key-reused"));
    assert_eq!(app.get(None, "/campaigns/rush").await.2["remaining"], 99);

    // It is the caller's, and an order can use it.
    let coupon_id = coupon["couponId"].as_str().unwrap();
    let (_, _, mine) = app.get(Some("u2"), "/coupons").await;
    assert!(mine["coupons"].as_array().unwrap().iter().any(|c| c["couponId"] == coupon_id));
    let (order, due) =
        app.order("u2", &format!(r#"{{"items":[{{"productId":"p1","quantity":1}}],"couponId":"{coupon_id}"}}"#)).await;
    assert_eq!(due, 10_000);
    app.pay_by_card("u2", &order, due).await;

    // CouponIssued: written with the claim, published, and as its schema says.
    app.settled().await;
    let campaign = shop_domain::CampaignId::parse("rush").unwrap();
    let claim = shop_store::keys::claim_pk(&campaign, &shop_domain::UserId::parse("u2").unwrap());
    let events = app.store().outbox().events_in(&claim).await.unwrap();
    assert_eq!(events.len(), 1);
    let stored = &events[0];
    assert_eq!(
        (stored.source.as_str(), stored.detail_type.as_str(), stored.pending),
        ("shop.campaigns", "CouponIssued", false)
    );
    let detail: Value = serde_json::from_str(&stored.detail).unwrap();
    assert_eq!(detail["data"]["couponId"], coupon_id);
    let schema: Value =
        serde_json::from_str(include_str!("../../events/schemas/CouponIssued.json")).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    assert!(validator.is_valid(&detail), "{detail}");
}

#[tokio::test]
async fn claims_outside_the_window_of_an_unknown_campaign_or_without_key_or_token_are_refused_and_write_nothing() {
    let app = spawn_app_driven().await;
    let (status, _, body) = app.claim("u1", "soon", "a").await;
    assert_eq!(
        (status, problem_type(&body), &body["startsAt"]),
        (409, "campaign-not-started", &json!("2026-12-01T00:00:00.000Z"))
    );
    let (status, _, body) = app.claim("u1", "nope", "b").await;
    assert_eq!((status, problem_type(&body)), (404, "campaign-not-found"));
    let (status, _, _) = app.get(None, "/campaigns/nope").await;
    assert_eq!(status, 404);
    let resp = app.http.post(app.url("/campaigns/rush/claim")).bearer_auth(app.stack.token("u1")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400, "the Idempotency-Key is required");
    let resp = app.http.post(app.url("/campaigns/rush/claim")).header("idempotency-key", "c").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    app.clock.advance_secs(10 * 24 * 3600);
    let (status, _, body) = app.claim("u1", "rush", "d").await;
    assert_eq!((status, problem_type(&body)), (409, "campaign-ended"));
    let (_, _, rush) = app.get(None, "/campaigns/rush").await;
    assert_eq!((&rush["issued"], &rush["open"]), (&json!(0), &json!(false)));
    // The refused key is free again: once the December campaign opens it works.
    let (status, _, _) = app.claim("u1", "soon", "a").await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn creating_a_campaign_that_exists_keeps_its_counter() {
    let app = spawn_app_driven().await;
    assert_eq!(app.claim("u1", "rush", "k").await.0, 201);
    let existing =
        app.store().campaigns().get(&shop_domain::CampaignId::parse("rush").unwrap()).await.unwrap().unwrap();
    let fresh = shop_domain::Campaign { issued: 0, ..existing.clone() };
    let created = shop_app::usecases::campaigns::create_campaign(&app.stack.app, &fresh).await.unwrap();
    let after = app.store().campaigns().get(&existing.id).await.unwrap().unwrap();
    assert_eq!(after.issued, 1);
    assert_eq!(created, Created::Existing(after));
    let new = shop_domain::Campaign { id: shop_domain::CampaignId::parse("new").unwrap(), ..fresh };
    assert_eq!(shop_app::usecases::campaigns::create_campaign(&app.stack.app, &new).await.unwrap(), Created::New);
    assert_eq!(app.get(None, "/campaigns/new").await.2["remaining"], 100);
}

async fn create(app: &TestApp, token: Option<&str>, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = app.http.post(app.url("/campaigns")).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

fn operator_token(app: &TestApp, secret: &str) -> String {
    shop_local::jwt::issue_operator(secret, "ops", app.stack.app.clock.now().seconds(), 600)
}

fn black_friday() -> Value {
    json!({"campaignId": "bf", "name": "Black Friday", "total": 2,
           "startsAt": "2026-11-20T00:00:00Z", "endsAt": "2026-12-10T00:00:00+09:00",
           "coupon": {"kind": "PERCENT", "value": 10, "minOrderAmount": 10000, "expiresAt": "2027-01-01T00:00:00Z"}})
}

#[tokio::test]
async fn an_operator_creates_a_campaign_shoppers_claim_it_and_sending_it_again_is_safe() {
    let app = spawn_app().await;
    let op = operator_token(&app, &app.stack.secrets.jwt_secret);
    let (status, headers, created) = create(&app, Some(&op), &black_friday()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(headers["location"], "/campaigns/bf");
    assert_eq!(
        created,
        json!({"campaignId": "bf", "name": "Black Friday", "total": 2, "issued": 0, "remaining": 2,
               "startsAt": "2026-11-20T00:00:00.000Z", "endsAt": "2026-12-09T15:00:00.000Z", "open": true,
               "coupon": {"kind": "PERCENT", "value": 10, "minOrderAmount": 10000, "expiresAt": "2027-01-01T00:00:00.000Z"}})
    );
    assert_eq!(app.get(None, "/campaigns/bf").await.2, created, "what GET shows");

    // Claimed like any campaign, up to its total.
    assert_eq!(app.claim("u1", "bf", "k1").await.0, 201);
    // The same campaign again (a retry): 200, as it stands now; its counter kept.
    let (status, headers, again) = create(&app, Some(&op), &black_friday()).await;
    assert_eq!((status, &again["issued"], &again["remaining"]), (200, &json!(1), &json!(1)), "{again}");
    assert!(headers.get("location").is_none());
    // The same id with other terms: 409, nothing changed.
    let mut bigger = black_friday();
    bigger["total"] = json!(1000);
    let (status, _, body) = create(&app, Some(&op), &bigger).await;
    assert_eq!((status, problem_type(&body), &body["campaignId"]), (409, "campaign-exists", &json!("bf")));
    assert_eq!(app.claim("u2", "bf", "k2").await.0, 201);
    let (status, _, body) = app.claim("u3", "bf", "k3").await;
    assert_eq!((status, problem_type(&body)), (409, "campaign-sold-out"), "the total asked first holds");

    // startsAt defaults to now: a campaign created without it is open at once.
    let mut now = black_friday();
    now["campaignId"] = json!("now");
    now.as_object_mut().unwrap().remove("startsAt");
    let (status, _, body) = create(&app, Some(&op), &now).await;
    assert_eq!(
        (status, &body["open"], &body["startsAt"]),
        (201, &json!(true), &json!(app.stack.app.clock.now().to_rfc3339()))
    );
    // Sent again later, still without startsAt, it is the same campaign (a
    // retry is safe); naming another start is other terms.
    let started = body["startsAt"].clone();
    app.clock.advance_secs(90);
    let (status, _, body) = create(&app, Some(&op), &now).await;
    assert_eq!((status, &body["startsAt"]), (200, &started), "{body}");
    now["startsAt"] = json!(app.stack.app.clock.now().to_rfc3339());
    let (status, _, body) = create(&app, Some(&op), &now).await;
    assert_eq!((status, problem_type(&body)), (409, "campaign-exists"));
}

#[tokio::test]
async fn only_an_operator_creates_campaigns_and_bad_terms_are_refused_writing_nothing() {
    let app = spawn_app().await;
    let op = operator_token(&app, &app.stack.secrets.jwt_secret);
    let shopper = app.stack.token("u1");
    let forged = operator_token(&app, "a guessed secret");
    let refused = [
        (None, 401, "unauthorized"),
        (Some(forged.as_str()), 401, "unauthorized"),
        (Some(shopper.as_str()), 403, "not-operator"),
    ];
    for (token, want, kind) in refused {
        let (status, _, body) = create(&app, token, &black_friday()).await;
        assert_eq!((status, problem_type(&body)), (want, kind), "{body}");
        // Refused before the body is read: a broken body gets the same answer.
        let (status, _, _) = create(&app, token, &json!({"nonsense": true})).await;
        assert_eq!(status, want);
    }

    let with = |path: &[&str], value: Value| {
        let mut body = black_friday();
        let (last, parents) = path.split_last().unwrap();
        let mut at = &mut body;
        for p in parents {
            at = &mut at[*p];
        }
        at[*last] = value;
        body
    };
    let cases = [
        // What the document's schema refuses: 400.
        (with(&["campaignId"], json!("no spaces")), 400, "invalid-request"),
        (with(&["name"], json!("")), 400, "invalid-request"),
        (with(&["name"], json!("x".repeat(201))), 400, "invalid-request"),
        (with(&["total"], json!(0)), 400, "invalid-request"),
        (with(&["total"], json!(1_000_001)), 400, "invalid-request"),
        (with(&["endsAt"], json!("next tuesday")), 400, "invalid-request"),
        (with(&["coupon", "value"], json!(101)), 400, "invalid-request"),
        (with(&["coupon", "kind"], json!("BOGO")), 400, "invalid-request"),
        (with(&["coupon", "minOrderAmount"], json!(-1)), 400, "invalid-request"),
        (with(&["surprise"], json!(1)), 400, "invalid-request"),
        // Schema-valid, refused by a rule: 422.
        (with(&["name"], json!("   ")), 422, "invalid-campaign"),
        (with(&["endsAt"], json!("2026-11-19T00:00:00Z")), 422, "invalid-campaign"),
        (with(&["coupon", "expiresAt"], json!("2026-11-01T00:00:00Z")), 422, "invalid-campaign"),
    ];
    for (body, want, kind) in cases {
        let (status, _, answer) = create(&app, Some(&op), &body).await;
        assert_eq!((status, problem_type(&answer)), (want, kind), "{body} -> {answer}");
    }
    let (status, _, body) = create(&app, Some(&op), &with(&["endsAt"], json!("2026-11-19T00:00:00Z"))).await;
    assert_eq!((status, &body["field"]), (422, &json!("endsAt")));
    assert_eq!(app.get(None, "/campaigns/bf").await.0, 404, "nothing refused was written");
    assert_eq!(create(&app, Some(&op), &black_friday()).await.0, 201);
}
