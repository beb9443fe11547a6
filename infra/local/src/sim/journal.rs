//! The simulators' state: in memory and, with a file, durable as an
//! append-only journal of JSON lines — one line per row a call changed, so a
//! call costs what it changed, never the size of the state (the old
//! whole-file rewrite made every call slower as history grew). On load the
//! journal is replayed and rewritten as one line per live row, so restarts
//! read the state, not its history of updates. A kill loses at most the
//! line being written; lines are written before the call answers.
//!
//! A state is made of [`Table`]s (rows by key, the changed ones remembered),
//! [`Log`]s (append-only, indexed by order id) and [`Whole`] values (small,
//! written whole when changed), named by the state's [`Journaled`] impl.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A state the journal can persist.
pub trait Journaled: Default {
    /// The lines for what changed since the last call (and forgets it).
    fn drain(&mut self) -> Vec<Value>;
    /// One line per live row: the compacted journal.
    fn snapshot(&self) -> Vec<Value>;
    /// Applies one line read back from the journal.
    fn replay(&mut self, line: &Value) -> anyhow::Result<()>;
}

/// One named part of a journaled state: a [`Table`], a [`Log`] or a [`Whole`].
pub trait Part {
    fn drain(&mut self, name: &str, out: &mut Vec<Value>);
    fn snapshot(&self, name: &str, out: &mut Vec<Value>);
    fn replay(&mut self, line: &Value) -> anyhow::Result<()>;
}

/// Implements [`Journaled`] for a state struct from its parts and their
/// names in the journal: `journaled!(State { rows: "rows", log: "log" });`.
macro_rules! journaled {
    ($state:ty { $($field:ident : $name:literal),* $(,)? }) => {
        impl $crate::sim::journal::Journaled for $state {
            fn drain(&mut self) -> Vec<serde_json::Value> {
                let mut out = Vec::new();
                $($crate::sim::journal::Part::drain(&mut self.$field, $name, &mut out);)*
                out
            }

            fn snapshot(&self) -> Vec<serde_json::Value> {
                let mut out = Vec::new();
                $($crate::sim::journal::Part::snapshot(&self.$field, $name, &mut out);)*
                out
            }

            fn replay(&mut self, line: &serde_json::Value) -> anyhow::Result<()> {
                match $crate::sim::journal::kind(line) {
                    $($name => $crate::sim::journal::Part::replay(&mut self.$field, line),)*
                    other => anyhow::bail!("unknown journal part {other}"),
                }
            }
        }
    };
}
pub(crate) use journaled;

pub struct Journal<T> {
    state: Mutex<T>,
    file: Option<Mutex<std::fs::File>>,
}

impl<T: Journaled> Journal<T> {
    /// The state in `file` (replayed, then compacted) if it exists, else
    /// the default; `None`: memory only.
    pub fn load(file: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut state = T::default();
        let Some(path) = file else { return Ok(Self { state: Mutex::new(state), file: None }) };
        if path.exists() {
            let reader = std::io::BufReader::new(std::fs::File::open(&path)?);
            for (n, line) in reader.lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                // A line cut short by a kill is the last one: the rest stands.
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => state.replay(&v)?,
                    Err(e) => {
                        tracing::warn!(path = %path.display(), line = n + 1, error = %e, "skipping a torn journal line")
                    }
                }
            }
        }
        state.drain();
        let file = compact(&path, &state.snapshot())?;
        Ok(Self { state: Mutex::new(state), file: Some(Mutex::new(file)) })
    }

    /// Runs `f` on the state and appends what it changed to the journal.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let out = f(&mut guard);
        let lines = guard.drain();
        if let (Some(file), false) = (&self.file, lines.is_empty()) {
            let mut text = String::new();
            for line in &lines {
                text.push_str(&line.to_string());
                text.push('\n');
            }
            let written = file.lock().map_err(|_| ()).and_then(|mut f| f.write_all(text.as_bytes()).map_err(|_| ()));
            if written.is_err() {
                tracing::warn!("could not append to the simulator's journal");
            }
        }
        out
    }
}

/// Writes `lines` to a new file and renames it over `path`, so a kill
/// leaves either the old journal or the compacted one; returns it open for
/// appending.
fn compact(path: &Path, lines: &[Value]) -> anyhow::Result<std::fs::File> {
    let tmp = path.with_extension("journal.tmp");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for line in lines {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(std::fs::OpenOptions::new().append(true).open(path)?)
}

/// Rows by key; the keys changed since the last drain are remembered.
pub struct Table<T> {
    rows: BTreeMap<String, T>,
    dirty: BTreeSet<String>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self { rows: BTreeMap::new(), dirty: BTreeSet::new() }
    }
}

impl<T: Serialize + DeserializeOwned> Table<T> {
    pub fn get(&self, key: &str) -> Option<&T> {
        self.rows.get(key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.rows.contains_key(key)
    }

    /// The row, marked changed.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut T> {
        let row = self.rows.get_mut(key)?;
        self.dirty.insert(key.to_owned());
        Some(row)
    }

    pub fn insert(&mut self, key: String, value: T) {
        self.dirty.insert(key.clone());
        self.rows.insert(key, value);
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.rows.values()
    }
}

impl<T: Serialize + DeserializeOwned> Part for Table<T> {
    fn drain(&mut self, name: &str, out: &mut Vec<Value>) {
        for key in std::mem::take(&mut self.dirty) {
            if let Some(row) = self.rows.get(&key) {
                out.push(json!({"t": name, "k": key, "v": row}));
            }
        }
    }

    fn snapshot(&self, name: &str, out: &mut Vec<Value>) {
        for (key, row) in &self.rows {
            out.push(json!({"t": name, "k": key, "v": row}));
        }
    }

    fn replay(&mut self, line: &Value) -> anyhow::Result<()> {
        let key = line.get("k").and_then(Value::as_str).ok_or_else(|| anyhow::anyhow!("journal row without a key"))?;
        let value = serde_json::from_value(line.get("v").cloned().unwrap_or(Value::Null))?;
        self.rows.insert(key.to_owned(), value);
        Ok(())
    }
}

/// What a log entry is about, for listing one order's entries without a scan.
pub trait OfOrder {
    fn order_id(&self) -> Option<&str>;
}

/// Entries in arrival order, indexed by order id; new ones are journaled.
pub struct Log<T> {
    items: Vec<T>,
    by_order: BTreeMap<String, Vec<usize>>,
    written: usize,
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Self { items: Vec::new(), by_order: BTreeMap::new(), written: 0 }
    }
}

impl<T: Serialize + DeserializeOwned + OfOrder> Log<T> {
    pub fn push(&mut self, item: T) {
        if let Some(order) = item.order_id() {
            self.by_order.entry(order.to_owned()).or_default().push(self.items.len());
        }
        self.items.push(item);
    }

    pub fn all(&self) -> &[T] {
        &self.items
    }

    /// One order's entries, oldest first.
    pub fn of_order<'a>(&'a self, order_id: &str) -> impl Iterator<Item = &'a T> + 'a {
        let indexes = self.by_order.get(order_id).map(Vec::as_slice).unwrap_or_default();
        indexes.iter().filter_map(|i| self.items.get(*i))
    }
}

impl<T: Serialize + DeserializeOwned + OfOrder> Part for Log<T> {
    fn drain(&mut self, name: &str, out: &mut Vec<Value>) {
        for item in self.items.get(self.written..).unwrap_or_default() {
            out.push(json!({"t": name, "v": item}));
        }
        self.written = self.items.len();
    }

    fn snapshot(&self, name: &str, out: &mut Vec<Value>) {
        for item in &self.items {
            out.push(json!({"t": name, "v": item}));
        }
    }

    fn replay(&mut self, line: &Value) -> anyhow::Result<()> {
        self.push(serde_json::from_value(line.get("v").cloned().unwrap_or(Value::Null))?);
        self.written = self.items.len();
        Ok(())
    }
}

/// A small value written whole whenever it was borrowed mutably.
#[derive(Default)]
pub struct Whole<T> {
    value: T,
    dirty: bool,
}

impl<T> std::ops::Deref for Whole<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> std::ops::DerefMut for Whole<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.dirty = true;
        &mut self.value
    }
}

impl<T: Serialize + DeserializeOwned> Whole<T> {}

impl<T: Serialize + DeserializeOwned> Part for Whole<T> {
    fn drain(&mut self, name: &str, out: &mut Vec<Value>) {
        if std::mem::take(&mut self.dirty) {
            out.push(json!({"t": name, "v": self.value}));
        }
    }

    fn snapshot(&self, name: &str, out: &mut Vec<Value>) {
        out.push(json!({"t": name, "v": self.value}));
    }

    fn replay(&mut self, line: &Value) -> anyhow::Result<()> {
        self.value = serde_json::from_value(line.get("v").cloned().unwrap_or(Value::Null))?;
        Ok(())
    }
}

/// The table name of a journal line.
pub fn kind(line: &Value) -> &str {
    line.get("t").and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Entry {
        order: String,
        n: u32,
    }

    impl OfOrder for Entry {
        fn order_id(&self) -> Option<&str> {
            Some(&self.order)
        }
    }

    #[derive(Default)]
    struct State {
        rows: Table<u32>,
        log: Log<Entry>,
        flags: Whole<Vec<String>>,
    }

    journaled!(State { rows: "rows", log: "log", flags: "flags" });

    fn lines(path: &Path) -> usize {
        std::fs::read_to_string(path).unwrap().lines().count()
    }

    #[test]
    fn a_call_appends_only_what_it_changed_and_a_restart_compacts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let j: Journal<State> = Journal::load(Some(path.clone())).unwrap();
        for n in 0..100u32 {
            j.with(|s| {
                s.rows.insert(format!("k{}", n % 10), n);
                s.log.push(Entry { order: format!("o{}", n % 3), n });
            });
        }
        // A read changes nothing and writes nothing.
        let before = lines(&path);
        let total: u32 = j.with(|s| s.rows.values().sum());
        assert_eq!(lines(&path), before);
        // The empty state's one line (the flags), then 100 calls of two lines
        // each: the file grew by what changed, not by the state's size.
        assert_eq!(before, 1 + 200);
        j.with(|s| s.flags.push("on".into()));
        drop(j);

        let j: Journal<State> = Journal::load(Some(path.clone())).unwrap();
        assert_eq!(j.with(|s| s.rows.values().sum::<u32>()), total);
        assert_eq!(j.with(|s| s.log.of_order("o1").count()), 33);
        assert_eq!(j.with(|s| s.flags.clone()), vec!["on".to_owned()]);
        assert_eq!(lines(&path), 10 + 100 + 1, "compacted: one line per row");
        // A torn last line (a kill mid-write) is skipped.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"t\":\"rows\",\"k\":").unwrap();
        let j: Journal<State> = Journal::load(Some(path)).unwrap();
        assert_eq!(j.with(|s| s.rows.values().sum::<u32>()), total);
    }
}
