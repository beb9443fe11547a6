//! Saved views of the console's order finder: a name and the finder's
//! query, shared by every operator of the stack (they live in the table,
//! so a deployed stack's console sees the views saved on it). A handful,
//! in one partition read whole: at most [`MAX_VIEWS`].

use crate::attr::{Item, get_n, get_s, item, key, n, s, with_key};
use crate::error::{Result, StoreError};
use crate::{Store, keys};
use shop_domain::Timestamp;

/// Views a stack keeps; saving one more is refused.
pub const MAX_VIEWS: usize = 50;

/// A view's name: 1–60 letters, digits, spaces, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ViewName(String);

impl ViewName {
    pub const MAX_LEN: usize = 60;

    pub fn parse(s: &str) -> Option<ViewName> {
        let s = s.trim();
        let ok = !s.is_empty()
            && s.chars().count() <= Self::MAX_LEN
            && s.chars().all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '_');
        ok.then(|| ViewName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A saved view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub name: ViewName,
    /// The finder's query string, as its own links write it.
    pub query: String,
    pub saved_by: String,
    pub saved_at: Timestamp,
}

/// Why a view was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{MAX_VIEWS} views are saved already: delete one first")]
    Full,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The saved views (see [`Store::views`]).
#[derive(Clone, Copy)]
pub struct Views<'a>(pub(crate) &'a Store);

fn from_item(it: &Item) -> anyhow::Result<View> {
    let sk = get_s(it, "sk")?;
    let name = sk.strip_prefix(keys::VIEW_PREFIX).and_then(ViewName::parse);
    Ok(View {
        name: name.ok_or_else(|| anyhow::anyhow!("view key {sk}"))?,
        query: get_s(it, "query")?.to_owned(),
        saved_by: get_s(it, "savedBy")?.to_owned(),
        saved_at: Timestamp::from_millis(get_n(it, "savedAt")?),
    })
}

impl Views<'_> {
    /// Every saved view, by name.
    pub async fn list(&self) -> Result<Vec<View>> {
        let (items, _) = self.0.prefix_page(keys::VIEWS_PK, keys::VIEW_PREFIX, MAX_VIEWS, true, None).await?;
        Ok(items.iter().map(from_item).collect::<anyhow::Result<_>>()?)
    }

    /// Saves `view`, replacing one of the same name.
    pub async fn save(&self, view: &View) -> std::result::Result<(), SaveError> {
        let existing = self.list().await?;
        if existing.len() >= MAX_VIEWS && !existing.iter().any(|v| v.name == view.name) {
            return Err(SaveError::Full);
        }
        let it = with_key(
            item([
                ("type", s("VIEW")),
                ("query", s(view.query.as_str())),
                ("savedBy", s(view.saved_by.as_str())),
                ("savedAt", n(view.saved_at.millis())),
            ]),
            keys::view(&view.name),
        );
        self.0
            .client()
            .put_item()
            .table_name(self.0.table())
            .set_item(Some(it))
            .send()
            .await
            .map_err(StoreError::unexpected("PutItem view"))?;
        Ok(())
    }

    /// Deletes the view `name` (nothing if there is none).
    pub async fn delete(&self, name: &ViewName) -> Result<()> {
        let (pk, sk) = keys::view(name);
        self.0
            .client()
            .delete_item()
            .table_name(self.0.table())
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(StoreError::unexpected("DeleteItem view"))?;
        Ok(())
    }
}
