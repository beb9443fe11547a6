//! Wake-ups on committed writes, by filter: a watcher registered with a
//! filter (a function of the operation and its request JSON, [`every`] for
//! every write) sees its counter change after each successful write the
//! filter takes — a stream's filter, in effect. The embedded engine
//! announces the writes it runs; the local stack's meter those its client
//! sends to an endpoint. The engine knows no item: the filters come from
//! the store (e.g. its outbox codec's "this write carried an event").

use tokio::sync::watch;

/// The operations that change the table.
pub const WRITES: [&str; 6] =
    ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "CreateTable"];

/// Which committed writes a watcher wants: the operation and its request JSON.
pub type WriteFilter = fn(&str, &[u8]) -> bool;

/// Every write.
pub fn every(_op: &str, _request: &[u8]) -> bool {
    true
}

#[derive(Default)]
pub struct WriteWatches(Vec<(&'static str, WriteFilter, watch::Sender<u64>)>);

impl std::fmt::Debug for WriteWatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _, _)| name)).finish()
    }
}

impl WriteWatches {
    /// A receiver for the watch `name` (`filter` is the one it was first
    /// subscribed with); receivers of one name share its counter, so
    /// several loops can wait at once.
    pub fn subscribe(&mut self, name: &'static str, filter: WriteFilter) -> watch::Receiver<u64> {
        if let Some((_, _, tx)) = self.0.iter().find(|(n, _, _)| *n == name) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(0);
        self.0.push((name, filter, tx));
        rx
    }

    /// Announces operation `op` with `request`, answered `status`: the
    /// watchers whose filter takes it wake if it was a committed write.
    pub fn announce(&self, op: &str, request: &[u8], status: u16) {
        if status != 200 || !WRITES.contains(&op) {
            return;
        }
        for (_, filter, tx) in &self.0 {
            if filter(op, request) {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}
