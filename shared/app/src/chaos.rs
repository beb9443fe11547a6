//! Fault injection for tests and the local stack: named points that fail
//! the next N times they are reached (-1: until cleared). Each [`App`]
//! (crate::App) has its own, so parallel tests never disturb each other;
//! nothing arms it in production, where a pass costs one uncontended lock.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Chaos {
    armed: Mutex<HashMap<String, i64>>,
}

impl Chaos {
    /// Arms `point` for the next `count` passes (-1: until cleared).
    pub fn arm(&self, point: &str, count: i64) {
        if let Ok(mut a) = self.armed.lock() {
            a.insert(point.to_owned(), count);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut a) = self.armed.lock() {
            a.clear();
        }
    }

    /// Whether this pass through `point` must fail.
    pub fn fail(&self, point: &str) -> bool {
        let Ok(mut a) = self.armed.lock() else { return false };
        match a.get_mut(point) {
            Some(n) if *n == -1 => true,
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }
}
