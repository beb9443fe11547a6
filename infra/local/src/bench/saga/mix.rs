//! The seeded workload: a catalog, and for every order the path its saga
//! takes. The same `--seed` gives the same orders, in the same order.

use crate::seed::{Catalog, CatalogCoupon, CatalogProduct, CatalogUser, Kind};
use shop_domain::{CouponId, Money, ProductId, UserId};

pub use crate::chaos::Rng;

/// How an order's saga ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Path {
    /// Card payment: checkout at the PG, confirm.
    Card,
    /// Virtual account: confirm (awaiting deposit), the shopper deposits, the PG's webhook pays.
    VirtualAccount,
    /// The whole amount paid with points.
    Points,
    /// Cancelled by the shopper before paying.
    CancelUnpaid,
    /// Paid by card, then cancelled: refunded by compensation.
    Refund,
    /// Paid by card, then part of it refunded (`POST /orders/{id}/refunds`):
    /// its first line, one unit of a single line, or half of the amount.
    PartialRefund,
    /// Paid by card, a part refunded, then (once that part is done) the rest.
    RefundInParts,
    /// Paid by deposit into a virtual account, then cancelled with the
    /// shopper's refund account: the deposit goes back by bank transfer
    /// (the account sealed until the PG answers). A refund the bank
    /// refuses is asked again.
    DepositRefund,
    /// Never paid: expired by the schedule.
    Expire,
}

impl Path {
    pub const ALL: [Path; 9] = [
        Path::Card,
        Path::VirtualAccount,
        Path::Points,
        Path::CancelUnpaid,
        Path::Refund,
        Path::PartialRefund,
        Path::RefundInParts,
        Path::DepositRefund,
        Path::Expire,
    ];

    /// Where the path ends.
    pub fn final_status(self) -> &'static str {
        match self {
            Path::Card | Path::VirtualAccount | Path::Points => "PAID",
            Path::CancelUnpaid => "CANCELLED",
            Path::Refund | Path::RefundInParts | Path::DepositRefund => "REFUNDED",
            Path::PartialRefund => "PARTIALLY_REFUNDED",
            Path::Expire => "EXPIRED",
        }
    }

    /// Percent of orders on each path (sums to 100).
    fn weight(self) -> u64 {
        match self {
            Path::Card => 45,
            Path::VirtualAccount => 13,
            Path::Points => 10,
            Path::CancelUnpaid => 10,
            Path::Refund => 8,
            Path::PartialRefund => 3,
            Path::RefundInParts => 1,
            Path::DepositRefund => 2,
            Path::Expire => 8,
        }
    }
}

/// One order of the run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub index: usize,
    pub user: UserId,
    pub lines: Vec<(ProductId, u32)>,
    pub coupon: Option<CouponId>,
    pub points: u64,
    pub path: Path,
}

impl Plan {
    /// The body of the part refunded on the refund paths: never the rest
    /// (the first of several lines, one unit of a single line of two, or
    /// else half of `amount_due`, which is less than the order holds).
    pub fn part_body(&self, amount_due: u64) -> serde_json::Value {
        match self.lines.as_slice() {
            [(p, q), _, ..] => serde_json::json!({"lines": [{"productId": p.as_str(), "quantity": q}]}),
            [(p, 2..)] => serde_json::json!({"lines": [{"productId": p.as_str(), "quantity": 1}]}),
            [_] | [] => serde_json::json!({"amount": (amount_due / 2).max(1)}),
        }
    }

    /// The shopper's bank account for a deposit's refund (never one the
    /// simulated bank refuses: its numbers ending in `0000` do not exist).
    pub fn refund_account(&self) -> serde_json::Value {
        serde_json::json!({"bank": "88", "accountNumber": format!("110{:08}7", self.index), "holderName": "saga shopper"})
    }

    pub fn body(&self) -> serde_json::Value {
        let items: Vec<serde_json::Value> =
            self.lines.iter().map(|(p, q)| serde_json::json!({"productId": p.as_str(), "quantity": q})).collect();
        let mut body = serde_json::json!({ "items": items });
        if let Some(obj) = body.as_object_mut() {
            if let Some(c) = &self.coupon {
                obj.insert("couponId".into(), c.as_str().into());
            }
            if self.points > 0 {
                obj.insert("pointsToUse".into(), self.points.into());
            }
        }
        body
    }
}

pub const PRODUCTS: usize = 50;
/// Every user starts with this many points: enough for any mix of orders.
pub const USER_POINTS: u64 = 1_000_000_000;
const COUPON_SHARE: u64 = 30;
const POINTS_SHARE: u64 = 25;

/// The catalog and the orders of a run.
pub struct Workload {
    pub catalog: Catalog,
    pub plans: Vec<Plan>,
}

pub fn workload(orders: usize, seed: u64) -> anyhow::Result<Workload> {
    let mut rng = Rng::new(seed);
    let users = orders.clamp(1, 10_000);
    // Three lines of up to two units at most: never sold out.
    let stock = (orders as u64 * 6).max(10);
    let products = (0..PRODUCTS)
        .map(|i| {
            Ok(CatalogProduct {
                id: ProductId::parse(format!("sp{i}").as_str())?,
                name: format!("Saga product {i}"),
                price: Money::new(i128::from(1_000 + 500 * (i as u64 % 40)))?,
                stock,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let user_ids = (0..users).map(|i| UserId::parse(format!("su{i}").as_str())).collect::<Result<Vec<_>, _>>()?;
    let mut coupons = Vec::new();
    let mut plans = Vec::with_capacity(orders);
    for index in 0..orders {
        let Some(user) = user_ids.get(rng.below(users as u64) as usize).cloned() else {
            anyhow::bail!("no users");
        };
        let n_lines = 1 + rng.below(3) as usize;
        let mut lines: Vec<(ProductId, u32)> = Vec::with_capacity(n_lines);
        while lines.len() < n_lines {
            let p = products.get(rng.below(PRODUCTS as u64) as usize).map(|p| p.id.clone());
            if let Some(p) = p.filter(|p| lines.iter().all(|(l, _)| l != p)) {
                lines.push((p, 1 + rng.below(2) as u32));
            }
        }
        let coupon = if rng.chance(COUPON_SHARE) {
            let id = CouponId::parse(format!("sc{index}").as_str())?;
            let percent = rng.chance(50);
            coupons.push(CatalogCoupon {
                id: id.clone(),
                user_id: user.clone(),
                kind: if percent { Kind::Percent } else { Kind::Fixed },
                value: if percent { 10 } else { 500 },
                min_order_amount: Money::ZERO,
                expires_at: "2099-01-01T00:00:00Z".into(),
            });
            Some(id)
        } else {
            None
        };
        let mut points = if rng.chance(POINTS_SHARE) { 100 * (1 + rng.below(5)) } else { 0 };
        // Points never pay what the coupon leaves: an order due nothing is
        // paid at placement, and its path (checkout, confirm) would be refused.
        let subtotal: u64 = lines
            .iter()
            .filter_map(|(id, q)| products.iter().find(|p| &p.id == id).map(|p| p.price.won() * u64::from(*q)))
            .sum();
        let discount = coupons
            .last()
            .filter(|c| coupon.as_ref() == Some(&c.id))
            .map_or(0, |c| if matches!(c.kind, Kind::Percent) { subtotal.div_ceil(10) } else { c.value });
        if points.saturating_add(discount) >= subtotal {
            points = 0;
        }
        let mut roll = rng.below(100);
        let mut path = Path::Card;
        for p in Path::ALL {
            if roll < p.weight() {
                path = p;
                break;
            }
            roll -= p.weight();
        }
        plans.push(Plan { index, user, lines, coupon, points, path });
    }
    let users = user_ids
        .into_iter()
        .map(|id| Ok(CatalogUser { id, points: Money::new(i128::from(USER_POINTS))? }))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Workload { catalog: Catalog { products, coupons, users, campaigns: vec![], sales: vec![] }, plans })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_orders() {
        let (a, b) = (workload(500, 7).unwrap(), workload(500, 7).unwrap());
        let shape = |w: &Workload| {
            w.plans.iter().map(|p| format!("{:?}", (p.path, &p.lines, &p.coupon, p.points))).collect::<Vec<_>>()
        };
        assert_eq!(shape(&a), shape(&b));
        assert_ne!(shape(&a), shape(&workload(500, 8).unwrap()));
    }

    #[test]
    fn every_path_is_taken_in_about_its_share() {
        let w = workload(10_000, 1).unwrap();
        for p in Path::ALL {
            let n = w.plans.iter().filter(|o| o.path == p).count() as u64;
            assert!(n.abs_diff(p.weight() * 100) < 250, "{p:?}: {n}");
        }
        let with_coupon = w.plans.iter().filter(|o| o.coupon.is_some()).count() as u64;
        assert!(with_coupon.abs_diff(COUPON_SHARE * 100) < 250, "{with_coupon}");
        assert_eq!(w.catalog.coupons.len() as u64, with_coupon);
    }

    #[test]
    fn every_order_leaves_something_to_pay_after_coupon_and_points() {
        // About 5 in 100,000 draws would pay everything with coupon and points.
        let w = workload(100_000, 1).unwrap();
        let price = |id: &ProductId| w.catalog.products.iter().find(|p| &p.id == id).map(|p| p.price.won()).unwrap();
        let coupons: std::collections::HashMap<_, _> = w.catalog.coupons.iter().map(|c| (&c.id, c)).collect();
        let mut with_points = 0;
        for plan in &w.plans {
            let subtotal: u64 = plan.lines.iter().map(|(id, q)| price(id) * u64::from(*q)).sum();
            let discount = plan.coupon.as_ref().map_or(0, |id| {
                let c = coupons[id];
                if matches!(c.kind, Kind::Percent) { subtotal.div_ceil(10) } else { c.value }
            });
            assert!(plan.points + discount < subtotal, "{plan:?} pays nothing");
            with_points += u64::from(plan.points > 0);
        }
        assert!(with_points.abs_diff(POINTS_SHARE * 1_000) < 1_000, "{with_points}");
    }
}
