//! Wake-ups on committed writes, by marker: a watcher registered for a
//! marker (a fragment of the request JSON, `""` for every write) sees its
//! counter change after each successful write whose request contains it —
//! a stream's filter, in effect. The embedded engine announces the writes
//! it runs; the local stack's meter those its client sends to an endpoint.

use tokio::sync::watch;

/// The operations that change the table.
pub const WRITES: [&str; 6] =
    ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "CreateTable"];

#[derive(Debug, Default)]
pub struct WriteWatches(Vec<(&'static str, watch::Sender<u64>)>);

impl WriteWatches {
    /// A receiver for `marker`; receivers of one marker share its counter,
    /// so several loops can wait at once.
    pub fn subscribe(&mut self, marker: &'static str) -> watch::Receiver<u64> {
        if let Some((_, tx)) = self.0.iter().find(|(m, _)| *m == marker) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(0);
        self.0.push((marker, tx));
        rx
    }

    /// Announces operation `op` with `request`, answered `status`: the
    /// watchers of every marker it contains wake if it was a committed write.
    pub fn announce(&self, op: &str, request: &[u8], status: u16) {
        if status != 200 || !WRITES.contains(&op) {
            return;
        }
        for (marker, tx) in &self.0 {
            if contains(request, marker.as_bytes()) {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
