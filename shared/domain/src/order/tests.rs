use super::*;
use crate::Product;
use crate::coupon::{Coupon, CouponKind, CouponStatus};

fn m(v: i128) -> Money {
    Money::new(v).unwrap()
}
fn pk(s: &str) -> PaymentKey {
    PaymentKey::parse(s).unwrap()
}
const T0: Timestamp = Timestamp::from_millis(1_000_000);

fn product(id: &str, price: i128, available: u64) -> Product {
    Product { id: ProductId::parse(id).unwrap(), name: format!("product {id}"), price: m(price), available }
}

fn placed() -> Order {
    let items = [(product("p1", 10_000, 5), Quantity::new(2).unwrap())];
    place(PlaceOrder {
        order_id: OrderId::parse("o1").unwrap(),
        user_id: UserId::parse("u1").unwrap(),
        items: &items,
        coupon: None,
        points_to_use: m(1000),
        points_balance: m(5000),
        now: T0,
        ttl_secs: 900,
        sale: None,
    })
    .unwrap()
    .order
}

fn in_status(status: OrderStatus) -> Order {
    let mut o = placed();
    o.status = status;
    o.payment_key = match status {
        OrderStatus::Confirming
        | OrderStatus::AwaitingDeposit
        | OrderStatus::Paid
        | OrderStatus::PartiallyRefunded
        | OrderStatus::RefundPending
        | OrderStatus::Refunded => Some(pk("pay1")),
        OrderStatus::PendingPayment | OrderStatus::Expired | OrderStatus::Cancelled => None,
    };
    o.payment_method = o.payment_key.as_ref().map(|_| PaymentMethod::Card);
    if status == OrderStatus::AwaitingDeposit {
        o.deposit_due_at = Some(o.expires_at);
    }
    o
}

fn commands(amount: Money) -> Vec<OrderCommand> {
    vec![
        OrderCommand::StartPayment { payment_key: pk("pay1"), method: PaymentMethod::Card, amount },
        OrderCommand::ConfirmPayment { payment_key: pk("pay1"), method: PaymentMethod::Card, amount },
        OrderCommand::AwaitDeposit { payment_key: pk("pay1"), amount, due_at: T0.plus_secs(3 * 86_400) },
        OrderCommand::FailPayment {
            payment_key: pk("pay1"),
            code: "REJECT_CARD_COMPANY".into(),
            message: "declined".into(),
        },
        OrderCommand::PayWithPoints,
        OrderCommand::Expire,
        OrderCommand::Cancel { refund_account: false },
        OrderCommand::CompleteRefund,
    ]
}

/// What each command does in each status, before expiry (Expire is tried
/// after expiry). `Ok(Some(x))`: one event `x`, `Ok(None)`: no-op, `Err`: refused.
fn expected(status: OrderStatus, command: &str) -> Result<Option<&'static str>, &'static str> {
    use OrderStatus as S;
    match (status, command) {
        (S::PendingPayment, "StartPayment") => Ok(Some("PaymentConfirmationStarted")),
        (S::Confirming, "StartPayment") => Err("in progress"),
        (_, "StartPayment") => Err("illegal"),

        (S::PendingPayment | S::Confirming | S::AwaitingDeposit, "ConfirmPayment") => Ok(Some("OrderPaid")),
        (S::Paid | S::PartiallyRefunded | S::RefundPending | S::Refunded, "ConfirmPayment") => Ok(None),
        (S::Expired | S::Cancelled, "ConfirmPayment") => Ok(Some("PaymentOrphaned")),

        (S::PendingPayment | S::Confirming, "AwaitDeposit") => Ok(Some("VirtualAccountIssued")),
        (S::AwaitingDeposit, "AwaitDeposit") => Ok(None),
        (_, "AwaitDeposit") => Err("illegal"),

        (S::Confirming | S::AwaitingDeposit, "FailPayment") => Ok(Some("PaymentFailed")),
        (_, "FailPayment") => Ok(None),

        (S::PendingPayment, "PayWithPoints") => Ok(Some("OrderPaid")),
        (S::Confirming, "PayWithPoints") => Err("in progress"),
        (_, "PayWithPoints") => Err("illegal"),

        (S::PendingPayment | S::AwaitingDeposit, "Expire") => Ok(Some("OrderExpired")),
        (S::Expired, "Expire") => Ok(None),
        (_, "Expire") => Err("illegal"),

        (S::PendingPayment | S::AwaitingDeposit, "Cancel") => Ok(Some("OrderCancelled")),
        (S::Paid | S::PartiallyRefunded, "Cancel") => Ok(Some("RefundRequested")),
        (S::Cancelled | S::RefundPending | S::Refunded, "Cancel") => Ok(None),
        (S::Confirming, "Cancel") => Err("in progress"),
        (S::Expired, "Cancel") => Err("illegal"),

        (S::RefundPending, "CompleteRefund") => Ok(Some("OrderRefunded")),
        (S::Refunded, "CompleteRefund") => Ok(None),
        (_, "CompleteRefund") => Err("illegal"),
        _ => unreachable!("unknown command {command}"),
    }
}

fn status_after(event: &str, before: OrderStatus) -> OrderStatus {
    match event {
        "PaymentConfirmationStarted" => OrderStatus::Confirming,
        "OrderPaid" => OrderStatus::Paid,
        "VirtualAccountIssued" => OrderStatus::AwaitingDeposit,
        "PaymentFailed" => OrderStatus::PendingPayment,
        "OrderExpired" => OrderStatus::Expired,
        "OrderCancelled" => OrderStatus::Cancelled,
        "RefundRequested" => OrderStatus::RefundPending,
        "PartialRefundRequested" | "OrderPartiallyRefunded" => OrderStatus::PartiallyRefunded,
        "OrderRefunded" => OrderStatus::Refunded,
        "PaymentOrphaned" => before,
        other => unreachable!("{other}"),
    }
}

#[test]
fn every_command_in_every_status() {
    let mut checked = 0;
    for status in OrderStatus::ALL {
        let order = in_status(status);
        for cmd in commands(order.amount_due) {
            let now = if cmd == OrderCommand::Expire { order.expires_at } else { T0 };
            let got = order.execute(&cmd, now);
            let want = expected(status, cmd.name());
            match (want, got) {
                (Ok(Some(kind)), Ok((after, events))) => {
                    assert_eq!(events.len(), 1, "{status} {}", cmd.name());
                    assert_eq!(events[0].kind.detail_type(), kind, "{status} {}", cmd.name());
                    assert_eq!(events[0].aggregate_version, order.version + 1);
                    assert_eq!(after.version, order.version + 1);
                    assert_eq!(after.status, status_after(kind, status), "{status} {}", cmd.name());
                    assert_eq!(
                        events[0].kind.status_after(Some(status)),
                        Some(after.status),
                        "{status} {}",
                        cmd.name()
                    );
                }
                (Ok(None), Ok((after, events))) => {
                    assert!(events.is_empty(), "{status} {} should be a no-op, got {events:?}", cmd.name());
                    assert_eq!(after, order);
                }
                (Err("in progress"), Err(OrderError::PaymentInProgress)) => {}
                (Err("illegal"), Err(OrderError::IllegalTransition { status: s, .. })) => assert_eq!(s, status),
                (want, got) => panic!("{status} {}: want {want:?}, got {got:?}", cmd.name()),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 72);
}

/// A virtual account's order expires at the account's due date, not the
/// order's own expiry, and names the account so it is closed at the PG.
#[test]
fn an_unpaid_virtual_account_expires_at_its_due_date() {
    let due = T0.plus_secs(3 * 86_400);
    let issue = OrderCommand::AwaitDeposit { payment_key: pk("va1"), amount: placed().amount_due, due_at: due };
    let (awaiting, events) = placed().execute(&issue, T0).unwrap();
    assert_eq!(awaiting.deposit_due_at, Some(due));
    assert!(matches!(&events[0].kind, OrderEventKind::VirtualAccountIssued { due_at: Some(d), .. } if *d == due));
    // Past the order's own expiry but before the account's due date: not yet.
    assert_eq!(awaiting.execute(&OrderCommand::Expire, due.plus_secs(-1)), Err(OrderError::NotYetExpired(due)));
    let (expired, events) = awaiting.execute(&OrderCommand::Expire, due).unwrap();
    assert_eq!(expired.status, OrderStatus::Expired);
    match &events[0].kind {
        OrderEventKind::OrderExpired { payment_key, points_released, .. } => {
            assert_eq!(payment_key.as_ref(), Some(&pk("va1")));
            assert_eq!(*points_released, m(1000));
        }
        other => panic!("{other:?}"),
    }
    // A plain expiry names no account.
    let (_, events) = placed().execute(&OrderCommand::Expire, placed().expires_at).unwrap();
    assert!(matches!(&events[0].kind, OrderEventKind::OrderExpired { payment_key: None, .. }));
    assert_eq!(expired.deposit_due_at, None, "shown only while awaiting the deposit");
    // A failed deposit forgets the due date.
    let fail = OrderCommand::FailPayment { payment_key: pk("va1"), code: "X".into(), message: "x".into() };
    let (failed, _) = awaiting.execute(&fail, T0).unwrap();
    assert_eq!(failed.deposit_due_at, None);
    // An account recorded without a due date falls due a fixed window after
    // its order was placed, never later.
    let legacy = Order { deposit_due_at: None, ..awaiting };
    let fallback = legacy.created_at.plus_secs(DEPOSIT_DUE_FALLBACK_SECS);
    assert_eq!(legacy.execute(&OrderCommand::Expire, fallback.plus_secs(-1)), Err(OrderError::NotYetExpired(fallback)));
    assert!(legacy.execute(&OrderCommand::Expire, fallback).is_ok());
}

#[test]
fn placement_prices_and_reserves() {
    let coupon = Coupon {
        id: CouponId::parse("c1").unwrap(),
        owner: UserId::parse("u1").unwrap(),
        kind: CouponKind::Percent(10),
        min_order_amount: m(10_000),
        expires_at: T0.plus_secs(3600),
        status: CouponStatus::Issued,
    };
    let items =
        [(product("p1", 12_000, 3), Quantity::new(2).unwrap()), (product("p2", 5_500, 1), Quantity::new(1).unwrap())];
    let p = place(PlaceOrder {
        order_id: OrderId::parse("o9").unwrap(),
        user_id: UserId::parse("u1").unwrap(),
        items: &items,
        coupon: Some(&coupon),
        points_to_use: m(1_000),
        points_balance: m(1_500),
        now: T0,
        ttl_secs: 900,
        sale: None,
    })
    .unwrap();
    assert_eq!(p.order.subtotal, m(29_500));
    assert_eq!(p.order.discount, m(2_950));
    assert_eq!(p.order.points_used, m(1_000));
    assert_eq!(p.order.amount_due, m(25_550));
    assert_eq!(p.order.expires_at, T0.plus_secs(900));
    assert_eq!(p.order.status, OrderStatus::PendingPayment);
    assert_eq!(p.order.version, 1);
    assert_eq!(p.points_balance_after, m(500));
    assert_eq!(p.events.len(), 1);
    assert_eq!(p.events[0].event_id().as_str(), "o9#1");
    assert_eq!(p.events[0].kind.detail_type(), "OrderPlaced");
    assert!(matches!(p.held_coupon.unwrap().status, CouponStatus::Held { .. }));
}

/// Coupon and points covering the whole amount: PAID in the placement.
#[test]
fn nothing_left_to_pay_is_paid_at_placement() {
    let items = [(product("p1", 10_000, 5), Quantity::new(1).unwrap())];
    let place_with = |points: i128| {
        place(PlaceOrder {
            order_id: OrderId::parse("o1").unwrap(),
            user_id: UserId::parse("u1").unwrap(),
            items: &items,
            coupon: None,
            points_to_use: m(points),
            points_balance: m(20_000),
            now: T0,
            ttl_secs: 900,
            sale: None,
        })
        .unwrap()
    };
    let p = place_with(10_000);
    assert_eq!((p.order.status, p.order.version, p.order.amount_due), (OrderStatus::Paid, 2, Money::ZERO));
    assert_eq!(p.order.payment_method, Some(PaymentMethod::Points));
    let kinds: Vec<&str> = p.events.iter().map(|e| e.kind.detail_type()).collect();
    assert_eq!(kinds, vec!["OrderPlaced", "OrderPaid"]);
    assert_eq!(p.events[1].aggregate_version, 2);
    // A cancel refunds exactly the points spent.
    let (refunding, _) = p.order.execute(&OrderCommand::Cancel { refund_account: false }, T0).unwrap();
    let (_, refunded) = refunding.execute(&OrderCommand::CompleteRefund, T0).unwrap();
    assert!(
        matches!(refunded[0].kind, OrderEventKind::OrderRefunded { points_refunded, .. } if points_refunded == m(10_000))
    );
    // One won left: payable as usual.
    let p = place_with(9_999);
    assert_eq!((p.order.status, p.events.len()), (OrderStatus::PendingPayment, 1));
}

#[test]
fn placement_rejections() {
    let base = |items: &[(Product, Quantity)], points: i128, balance: i128| {
        place(PlaceOrder {
            order_id: OrderId::parse("o1").unwrap(),
            user_id: UserId::parse("u1").unwrap(),
            items,
            coupon: None,
            points_to_use: m(points),
            points_balance: m(balance),
            now: T0,
            ttl_secs: 60,
            sale: None,
        })
    };
    let q = |n| Quantity::new(n).unwrap();
    assert_eq!(base(&[], 0, 0), Err(PlaceError::NoItems));
    let dup = [(product("p1", 100, 9), q(1)), (product("p1", 100, 9), q(2))];
    assert!(matches!(base(&dup, 0, 0), Err(PlaceError::DuplicateProduct(_))));
    assert!(matches!(base(&[(product("p1", 100, 1), q(2))], 0, 0), Err(PlaceError::InsufficientStock { .. })));
    assert!(matches!(base(&[(product("p1", 100, 9), q(1))], 101, 1000), Err(PlaceError::PointsExceedAmount { .. })));
    assert!(matches!(base(&[(product("p1", 100, 9), q(1))], 50, 49), Err(PlaceError::Points(_))));
    let huge = [(Product { price: Money::MAX, ..product("p1", 0, 9) }, q(2))];
    assert_eq!(base(&huge, 0, 0), Err(PlaceError::AmountOverflow));
    let many: Vec<_> = (0..=MAX_LINES).map(|i| (product(&format!("p{i}"), 1, 9), q(1))).collect();
    assert!(matches!(base(&many, 0, 0), Err(PlaceError::TooManyLines { .. })));
    // Points may cover everything: nothing left to pay by card.
    assert_eq!(base(&[(product("p1", 100, 9), q(1))], 100, 100).unwrap().order.amount_due, Money::ZERO);
}

#[test]
fn payment_rules_beyond_the_table() {
    let o = placed();
    // Wrong amount: refused before any PG call.
    let cmd = OrderCommand::StartPayment { payment_key: pk("k"), method: PaymentMethod::Card, amount: m(1) };
    assert!(matches!(o.decide(&cmd, T0), Err(OrderError::AmountMismatch { .. })));
    // Past expiry (not yet swept): not payable.
    let cmd = OrderCommand::StartPayment { payment_key: pk("k"), method: PaymentMethod::Card, amount: o.amount_due };
    assert!(matches!(o.decide(&cmd, o.expires_at), Err(OrderError::PastExpiry(_))));
    assert!(matches!(o.decide(&OrderCommand::PayWithPoints, o.expires_at), Err(OrderError::PastExpiry(_))));
    // Not expired yet.
    assert!(matches!(o.decide(&OrderCommand::Expire, T0), Err(OrderError::NotYetExpired(_))));
    // PG took a different amount: orphaned, never paid.
    let cmd = OrderCommand::ConfirmPayment { payment_key: pk("k"), method: PaymentMethod::Card, amount: m(1) };
    assert_eq!(o.decide(&cmd, T0).unwrap()[0].detail_type(), "PaymentOrphaned");
    // A second payment for a paid order is orphaned once, then ignored.
    let paid = in_status(OrderStatus::Paid);
    let other =
        OrderCommand::ConfirmPayment { payment_key: pk("pay2"), method: PaymentMethod::Card, amount: paid.amount_due };
    let (after, events) = paid.execute(&other, T0).unwrap();
    assert_eq!(events[0].kind.detail_type(), "PaymentOrphaned");
    assert_eq!(after.status, OrderStatus::Paid);
    assert_eq!(after.execute(&other, T0).unwrap().1, vec![]);
    // A failure for another attempt changes nothing.
    let confirming = in_status(OrderStatus::Confirming);
    let fail = OrderCommand::FailPayment { payment_key: pk("old"), code: "X".into(), message: "x".into() };
    assert_eq!(confirming.decide(&fail, T0), Ok(vec![]));
}

#[test]
fn refund_returns_points_paid() {
    let mut o = in_status(OrderStatus::RefundPending);
    o.payment_method = Some(PaymentMethod::Points);
    let events = o.decide(&OrderCommand::CompleteRefund, T0).unwrap();
    let OrderEventKind::OrderRefunded { points_refunded, .. } = &events[0] else { panic!() };
    assert_eq!(*points_refunded, o.points_used.checked_add(o.amount_due).unwrap());
}

#[test]
fn events_serialise_with_detail_type_and_camel_case_data() {
    let o = placed();
    let (_, events) = o.execute(&OrderCommand::Cancel { refund_account: false }, T0).unwrap();
    let v = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(v["detailType"], "OrderCancelled");
    assert_eq!(v["aggregateVersion"], 2);
    assert_eq!(v["data"]["pointsReleased"], 1000);
    let back: OrderEvent = serde_json::from_value(v).unwrap();
    assert_eq!(back, events[0]);
}
