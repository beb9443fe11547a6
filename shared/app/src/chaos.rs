//! Fault injection for tests and the local stack: named points that fail
//! the next N times they are reached (-1: until cleared). Each [`App`]
//! (crate::App) has its own, so parallel tests never disturb each other.
//! Compiled in only with the `chaos` feature (the local stack, the tests);
//! without it — a Lambda binary — every point is a constant `false` and
//! nothing can arm one.

#[derive(Debug, Default)]
pub struct Chaos {
    #[cfg(feature = "chaos")]
    armed: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl Chaos {
    /// Arms `point` for the next `count` passes (-1: until cleared).
    #[cfg(feature = "chaos")]
    pub fn arm(&self, point: &str, count: i64) {
        if let Ok(mut a) = self.armed.lock() {
            a.insert(point.to_owned(), count);
        }
    }

    #[cfg(feature = "chaos")]
    pub fn clear(&self) {
        if let Ok(mut a) = self.armed.lock() {
            a.clear();
        }
    }

    /// Whether this pass through `point` must fail.
    #[cfg(not(feature = "chaos"))]
    pub fn fail(&self, _point: &str) -> bool {
        false
    }

    /// Whether this pass through `point` must fail.
    #[cfg(feature = "chaos")]
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
