//! Time and identifiers are injected, so tests are deterministic.

use shop_domain::{OrderId, Timestamp};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp::from_millis(ms)
    }
}

/// A clock that moves only when told to (tests, and `shop up --clock manual`).
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at(t: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(t.millis())))
    }

    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

pub trait IdGen: Send + Sync {
    fn order_id(&self) -> OrderId;
    /// A unique id for ledger rows and other internal records.
    fn tx_id(&self) -> String;
}

/// UUIDv7: time-ordered, so ids sort by creation in listings.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidIds;

impl IdGen for UuidIds {
    fn order_id(&self) -> OrderId {
        let id = uuid::Uuid::now_v7().simple().to_string();
        // 32 hex digits always satisfy OrderId's rules.
        OrderId::parse(id).unwrap_or_else(|_| unreachable!("uuid hex is a valid order id"))
    }

    fn tx_id(&self) -> String {
        uuid::Uuid::now_v7().simple().to_string()
    }
}

/// Sequential ids with a prefix (tests).
#[derive(Debug, Default)]
pub struct SeqIds {
    prefix: String,
    next_order: AtomicU64,
    next_tx: AtomicU64,
}

impl SeqIds {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned(), next_order: AtomicU64::new(1), next_tx: AtomicU64::new(1) }
    }
}

impl IdGen for SeqIds {
    fn order_id(&self) -> OrderId {
        let n = self.next_order.fetch_add(1, Ordering::SeqCst);
        OrderId::parse(format!("{}ord{n:06}", self.prefix))
            .unwrap_or_else(|_| unreachable!("prefix is validated by tests"))
    }

    fn tx_id(&self) -> String {
        format!("{}tx{:06}", self.prefix, self.next_tx.fetch_add(1, Ordering::SeqCst))
    }
}
