use super::admit::{MAX_PER_STEP, MIN_RATE};
use super::place::shard_of;
use super::*;
use crate::{OrderId, UserId};

fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis(secs * 1000)
}

fn pid(s: &str) -> ProductId {
    ProductId::parse(s).unwrap()
}

fn terms(capacity: u64, rate: u64) -> SaleTerms {
    SaleTerms::new("Drop".into(), vec![pid("p1")], at(100), at(1000), capacity, rate, 300, None).unwrap()
}

fn sale(capacity: u64, rate: u64) -> Sale {
    Sale::new(SaleId::parse("s1").unwrap(), terms(capacity, rate), 42)
}

fn user(i: u64) -> UserId {
    UserId::parse(format!("user-{i}")).unwrap()
}

fn counted(n: u64) -> Place {
    Place::Counted { number: n }
}

#[test]
fn terms_refuse_what_no_sale_means() {
    let ok = |c, r, s, e| SaleTerms::new("Drop".into(), vec![pid("p1")], at(100), at(1000), c, r, s, e);
    assert!(ok(10, 5, 300, None).is_ok());
    assert_eq!(ok(10, 5, 300, None).unwrap().entry_shards, SaleTerms::DEFAULT_ENTRY_SHARDS);
    for (c, r, s, e, field) in [
        (0, 5, 300, None, "capacity"),
        (100_001, 5, 300, None, "capacity"),
        (10, 0, 300, None, "maxAdmissionsPerSec"),
        (10, 5, 0, None, "sessionSecs"),
        (10, 5, 3_601, None, "sessionSecs"),
        (10, 5, 300, Some(0), "entryShards"),
        (10, 5, 300, Some(65), "entryShards"),
    ] {
        match ok(c, r, s, e) {
            Err(InvalidSale::Range { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let with = |products: Vec<ProductId>, start, end| {
        SaleTerms::new("Drop".into(), products, at(start), at(end), 10, 5, 300, None)
    };
    assert_eq!(with(vec![], 100, 1000), Err(InvalidSale::Products));
    assert_eq!(with(vec![pid("p1"), pid("p1")], 100, 1000), Err(InvalidSale::Products));
    assert_eq!(with(vec![pid("p1")], 100, 100), Err(InvalidSale::Window));
    let blank = SaleTerms::new(" ".into(), vec![pid("p1")], at(100), at(1000), 10, 5, 300, None);
    assert_eq!(blank, Err(InvalidSale::Name));
}

#[test]
fn a_sale_is_scheduled_open_sold_out_or_ended() {
    let mut s = sale(10, 5);
    assert_eq!(s.state(at(99)), SaleState::Scheduled);
    assert_eq!(s.state(at(100)), SaleState::Open);
    assert_eq!(s.state(at(1000)), SaleState::Ended);
    s.sold_out = true;
    assert_eq!(s.state(at(500)), SaleState::SoldOut);
    assert_eq!(s.state(at(1000)), SaleState::Ended);
    // Gated before the start too, and only its own products.
    assert!(s.gates(&pid("p1"), at(0)) && !s.gates(&pid("p2"), at(500)) && !s.gates(&pid("p1"), at(1000)));
}

#[test]
fn places_order_the_pre_queue_first_and_numbers_interleave_shards() {
    assert!(Place::early(u64::MAX) < counted(0));
    assert_eq!(Place::counted(1, 0, 4), Some(counted(0)));
    assert_eq!(Place::counted(1, 3, 4), Some(counted(3)));
    assert_eq!(Place::counted(2, 0, 4), Some(counted(4)));
    assert_eq!(Place::counted(0, 0, 4), None);
    assert_eq!(Place::counted(1, 4, 4), None);
    assert_eq!(Place::counted(u64::MAX, 3, 4), None);
    let mut seen = std::collections::BTreeSet::new();
    for seq in 1..=50 {
        for shard in 0..16 {
            assert!(seen.insert(Place::counted(seq, shard, 16).unwrap()), "numbers are distinct");
        }
    }
    assert_eq!(seen.len(), 800);
    assert_eq!(Place::early(u64::MAX), Place::Early { lottery: (1 << place::LOTTERY_BITS) - 1 });
}

#[test]
fn users_spread_evenly_over_shards_and_keep_theirs() {
    assert_eq!(shard_of(&user(1), 16), shard_of(&user(1), 16));
    // Stable across builds: the shard is part of a key.
    assert_eq!(shard_of(&UserId::parse("alice").unwrap(), 16), 7);
    let mut per = [0u32; 16];
    for i in 0..16_000 {
        per[shard_of(&user(i), 16) as usize] += 1;
    }
    assert!(per.iter().all(|n| (800..1200).contains(n)), "{per:?}");
}

/// ADR 0027's fairness bound: 100,000 shoppers arriving one after another,
/// each numbered from their user's counter shard of 16. Numbers from one
/// shard follow arrival; across shards a shopper is admitted out of
/// arrival order by a few hundred places at most.
#[test]
fn numbers_follow_arrival_within_the_stated_bound() {
    let shards = 16;
    let mut seq = vec![0u64; shards as usize];
    let mut numbers = Vec::new();
    for arrival in 0..100_000u64 {
        let shard = shard_of(&user(arrival), shards);
        seq[shard as usize] += 1;
        let Some(Place::Counted { number }) = Place::counted(seq[shard as usize], shard, shards) else {
            panic!("a place")
        };
        numbers.push((number, arrival));
    }
    numbers.sort_unstable();
    let worst = numbers.iter().enumerate().map(|(rank, (_, arrival))| rank.abs_diff(*arrival as usize)).max();
    assert!(worst.is_some_and(|w| w <= 1_000), "displaced by {worst:?} places");
}

#[test]
fn positions_are_a_subtraction() {
    let mut s = sale(10, 5);
    assert_eq!(s.position_of(counted(7)), Position { ahead: 7, estimate: false });
    s.served = Some(counted(3));
    assert_eq!(s.position_of(counted(7)), Position { ahead: 3, estimate: false });
    assert_eq!(s.position_of(counted(3)).ahead, 0);
    // Waiting pre-queue tickets are all ahead of counted ones.
    s.early = 1_000;
    s.early_admitted = 400;
    s.served = Some(Place::early(1 << 39));
    assert_eq!(s.position_of(counted(7)).ahead, 607);
    // A pre-queue ticket's position is estimated from its draw.
    let three_quarters = Place::Early { lottery: 3 << (place::LOTTERY_BITS - 2) };
    assert_eq!(s.position_of(three_quarters), Position { ahead: 350, estimate: true });
    assert_eq!(s.position_of(Place::early(1)).ahead, 0);
}

#[test]
fn a_ticket_is_admitted_orders_once_and_is_released_once() {
    let t = Ticket::enter(SaleId::parse("s1").unwrap(), user(1), counted(0), at(100));
    let a = t.admit("adm-1".into(), at(110), 300).unwrap();
    assert_eq!(a.admission.as_ref().map(|a| a.session_ends_at), Some(at(410)));
    assert!(a.status.holds_slot());
    assert!(t.admit("again".into(), at(110), 300).is_ok() && a.admit("again".into(), at(111), 300).is_err());
    let order = OrderId::parse("o1").unwrap();
    assert_eq!(a.order("adm-2", order.clone(), at(120)), Err(TicketError::WrongAdmission));
    assert_eq!(a.order("adm-1", order.clone(), at(410)), Err(TicketError::SessionEnded(at(410))));
    let o = a.order("adm-1", order.clone(), at(409)).unwrap();
    assert!(o.order("adm-1", order.clone(), at(409)).is_err(), "one order per admission");
    assert_eq!(o.end_session(at(10_000)), None, "an order holds the slot until it ends");
    let other = OrderId::parse("o2").unwrap();
    assert_eq!(o.release(&other), Err(TicketError::WrongOrder));
    let done = o.release(&order).unwrap().unwrap();
    assert_eq!((done.status, done.status.holds_slot()), (TicketStatus::Done, false));
    assert_eq!(done.release(&order), Ok(None), "a second end of the order frees nothing");
    assert!(done.version > o.version && o.version > a.version && a.version > t.version);
}

#[test]
fn a_session_ends_without_an_order_and_a_shopper_may_leave() {
    let t = Ticket::enter(SaleId::parse("s1").unwrap(), user(1), counted(0), at(100));
    let a = t.admit("adm-1".into(), at(110), 300).unwrap();
    assert_eq!(a.end_session(at(409)), None);
    let e = a.end_session(at(410)).unwrap();
    assert_eq!(e.status, TicketStatus::Expired);
    assert_eq!(e.end_session(at(500)), None);
    assert_eq!(t.end_session(at(10_000)), None, "a waiting ticket has no session");
    let (left, frees) = t.leave().unwrap().unwrap();
    assert_eq!((left.status, frees), (TicketStatus::Left, false));
    assert_eq!(left.leave(), Ok(None));
    assert_eq!(a.leave().unwrap().map(|(t, f)| (t.status, f)), Some((TicketStatus::Left, true)));
    assert!(e.leave().is_err());
}

#[test]
fn a_waiting_ticket_of_a_sold_out_sale_reads_sold_out() {
    let t = Ticket::enter(SaleId::parse("s1").unwrap(), user(1), counted(0), at(100));
    assert_eq!(t.shown(SaleState::Open), Shown::Waiting);
    assert_eq!(t.shown(SaleState::SoldOut), Shown::SoldOut);
    assert_eq!(t.shown(SaleState::Ended), Shown::SoldOut);
    let a = t.admit("adm".into(), at(110), 300).unwrap();
    assert_eq!(a.shown(SaleState::SoldOut), Shown::Admitted);
    let o = a.order("adm", OrderId::parse("o1").unwrap(), at(120)).unwrap();
    assert_eq!(o.shown(SaleState::Open), Shown::Done);
}

#[test]
fn a_step_admits_no_more_than_free_slots_the_rate_and_a_transaction_allow() {
    let s = sale(10, 5);
    assert_eq!(plan_step(&s, freed(0), u64::MAX, at(99)).admit, 0, "not before the start");
    // One second of tokens at 5/s, though ten slots are free.
    let step = plan_step(&s, freed(0), u64::MAX, at(101));
    assert_eq!(step.admit, 5);
    let after = s.after_step(&[counted(0), counted(1), counted(2), counted(3), counted(4)], step, s.rate);
    assert_eq!((after.admitted, after.served, after.version), (5, Some(counted(4)), s.version + 1));
    // The bucket was spent: nothing more in the same instant, 2 after 0.4 s.
    assert_eq!(plan_step(&after, freed(0), u64::MAX, at(101)).admit, 0);
    assert_eq!(plan_step(&after, freed(0), u64::MAX, Timestamp::from_millis(101_400)).admit, 2);
    // Full slots admit nothing; a release frees one.
    let mut full = after.clone();
    full.admitted = 10;
    assert_eq!(plan_step(&full, freed(0), u64::MAX, at(200)).admit, 0);
    assert_eq!(plan_step(&full, freed(1), u64::MAX, at(200)).admit, 1);
    // An idle bucket holds one second's worth, and a step at most 99.
    let big = sale(100_000, 10_000);
    assert_eq!(plan_step(&big, freed(0), u64::MAX, at(500)).admit, MAX_PER_STEP);
    let mut sold = s.clone();
    sold.sold_out = true;
    assert_eq!(plan_step(&sold, freed(0), u64::MAX, at(500)).admit, 0);
    // No more shoppers than units left for them.
    assert_eq!(plan_step(&s, freed(0), 3, at(101)).admit, 3);
    assert_eq!(plan_step(&s, freed(0), 0, at(101)).admit, 0);
    // A shopper holding a slot without an order may still take a unit:
    // with 3 active (5 admitted, 2 freed) who have not ordered, a newcomer
    // gets only a unit beyond those 3; one who ordered took theirs already.
    let later = Timestamp::from_millis(101_400);
    assert_eq!(plan_step(&after, freed(2), 5, later).admit, 2);
    assert_eq!(plan_step(&after, freed(2), 4, later).admit, 1);
    assert_eq!(plan_step(&after, freed(2), 3, later).admit, 0);
    assert_eq!(plan_step(&after, Slots { freed: 2, holding: 3 }, 3, later).admit, 2, "all 3 ordered");
    assert_eq!(plan_step(&after, Slots { freed: 2, holding: 2 }, 1, later).admit, 0, "one may still take the last");
}

fn freed(n: u64) -> Slots {
    Slots { freed: n, holding: 0 }
}

#[test]
fn a_sale_sells_out_only_when_no_unit_is_left_and_no_slot_is_held() {
    use super::admit::sells_out;
    assert!(sells_out(0, 0));
    assert!(!sells_out(0, 3), "an admitted shopper's order may expire and give its units back");
    assert!(!sells_out(2, 0));
}

#[test]
fn the_rate_halves_while_the_saga_lags_and_climbs_back() {
    let lag = Health { settle_p99_ms: Some(5_000), oldest_unpublished_ms: None };
    let backlog = Health { settle_p99_ms: Some(100), oldest_unpublished_ms: Some(60_000) };
    let fine = Health { settle_p99_ms: Some(300), oldest_unpublished_ms: Some(50) };
    assert_eq!(next_rate(100.0, 100, lag), 50.0);
    assert_eq!(next_rate(100.0, 100, backlog), 50.0);
    assert_eq!(next_rate(1.5, 100, lag), MIN_RATE);
    assert_eq!(next_rate(50.0, 100, fine), 60.0);
    assert_eq!(next_rate(95.0, 100, fine), 100.0);
    assert_eq!(next_rate(f64::NAN, 100, Health::default()), 100.0);
    let mut r = 100.0;
    for _ in 0..10 {
        r = next_rate(r, 100, lag);
    }
    assert_eq!(r, MIN_RATE);
    for _ in 0..10 {
        r = next_rate(r, 100, fine);
    }
    assert_eq!(r, 100.0);
}

#[test]
fn the_pre_queue_draw_is_the_users_own_and_spreads_evenly() {
    let s = sale(10, 5);
    assert_eq!(s.early_place(&user(1)), s.early_place(&user(1)), "entering again draws the same");
    let other = Sale { salt: 43, ..s.clone() };
    assert_ne!(s.early_place(&user(1)), other.early_place(&user(1)), "the secret decides");
    // Draws fall evenly over the range: each quarter holds about a quarter.
    let mut quarters = [0u32; 4];
    for i in 0..8_000 {
        let Place::Early { lottery } = s.early_place(&user(i)) else { panic!("an early place") };
        quarters[(lottery >> (place::LOTTERY_BITS - 2)) as usize] += 1;
    }
    assert!(quarters.iter().all(|q| (1_800..2_200).contains(q)), "{quarters:?}");
}
