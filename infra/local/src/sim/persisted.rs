//! In-memory state kept durably in a JSON file (the PG simulator's and the
//! data-platform sink's): every change is written to a temporary file and
//! renamed over the old one, so a kill leaves either the old or the new state.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::Mutex;

pub struct Persisted<T> {
    state: Mutex<T>,
    file: Option<PathBuf>,
}

impl<T: Serialize + DeserializeOwned + Default> Persisted<T> {
    /// The state in `file` if it exists, else the default; `None`: memory only.
    pub fn load(file: Option<PathBuf>) -> anyhow::Result<Self> {
        let state = match &file {
            Some(f) if f.exists() => serde_json::from_str(&std::fs::read_to_string(f)?)?,
            _ => T::default(),
        };
        Ok(Self { state: Mutex::new(state), file })
    }

    /// Runs `f` on the state and saves the result.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let out = f(&mut guard);
        if let Some(path) = &self.file
            && let Ok(text) = serde_json::to_string(&*guard)
        {
            let tmp = path.with_extension("json.tmp");
            if std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)).is_err() {
                tracing::warn!(path = %path.display(), "could not persist state");
            }
        }
        out
    }
}
