//! The simulators' state: one SQLite database each (`<data-dir>/pgsim.db`,
//! `<data-dir>/sink.db`; in memory without a data dir), owned by a thread of
//! its own ([`shop_embedded::Owner`]) so a call never blocks the async
//! runtime. Every call is a few indexed statements in one transaction: its
//! cost does not grow with the history the simulator holds, and neither does
//! the memory (SQLite's page cache is bounded; nothing is kept in a `Vec`).
//! WAL with `synchronous=NORMAL`: a commit survives SIGKILL, as the store's.
//!
//! Rows that are listed (`/v1/sim/calls`, `/sim/deliveries`, ...) carry a
//! `seq` (their rowid, in arrival order) and their JSON `body`; listings are
//! pages of at most [`MAX_LIMIT`] rows after a cursor, narrowed by indexed
//! columns, never a scan of everything.

use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, OptionalExtension, ToSql};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use shop_embedded::Owner;
use std::path::Path;

/// A listing's page size when none is asked for, and the largest allowed.
pub const DEFAULT_LIMIT: usize = 1_000;
pub const MAX_LIMIT: usize = 10_000;

pub struct Db {
    owner: Owner<Connection>,
}

impl Db {
    /// Opens (or creates) `file`, or an in-memory database, and applies
    /// `schema` (idempotent `CREATE ... IF NOT EXISTS` statements).
    pub fn open(name: &'static str, file: Option<&Path>, schema: &str) -> anyhow::Result<Db> {
        let conn = match file {
            Some(path) => Connection::open(path)?,
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        conn.execute_batch(&format!("{FAULTS}\n{schema}"))?;
        Ok(Db { owner: Owner::start(name, conn)? })
    }

    /// Runs `f` in one transaction on the database's thread: committed when
    /// `f` succeeds, rolled back when it fails.
    pub async fn tx<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> anyhow::Result<R> + Send + 'static,
    ) -> anyhow::Result<R> {
        self.owner
            .run(move |conn: &mut Connection| {
                let tx = conn.transaction()?;
                let out = f(&tx)?;
                tx.commit()?;
                Ok(out)
            })
            .await?
    }
}

/// Faults armed by tests (`POST /v1/sim/faults`, `POST /sim/faults`): each
/// affects the next `count` calls of its `op` (-1: until cleared).
const FAULTS: &str = "CREATE TABLE IF NOT EXISTS faults (
    seq INTEGER PRIMARY KEY, op TEXT NOT NULL, fault TEXT NOT NULL, count INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS faults_by_op ON faults (op, seq);";

pub mod faults {
    use super::*;

    /// The oldest fault armed for `op`, used up by this call.
    pub fn take(c: &Connection, op: &str) -> anyhow::Result<Option<String>> {
        let armed = c
            .prepare_cached("SELECT seq, fault, count FROM faults WHERE op = ?1 ORDER BY seq LIMIT 1")?
            .query_row([op], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
            .optional()?;
        let Some((seq, fault, count)) = armed else { return Ok(None) };
        match count {
            1 => c.prepare_cached("DELETE FROM faults WHERE seq = ?1")?.execute([seq])?,
            n if n > 1 => c.prepare_cached("UPDATE faults SET count = count - 1 WHERE seq = ?1")?.execute([seq])?,
            _ => 0,
        };
        Ok(Some(fault))
    }

    pub fn add(c: &Connection, op: &str, fault: &str, count: i64) -> anyhow::Result<()> {
        c.prepare_cached("INSERT INTO faults (op, fault, count) VALUES (?1, ?2, ?3)")?.execute((op, fault, count))?;
        Ok(())
    }

    pub fn clear(c: &Connection) -> anyhow::Result<()> {
        c.execute("DELETE FROM faults", [])?;
        Ok(())
    }

    /// Every armed fault: (op, fault, count), oldest first.
    pub fn list(c: &Connection) -> anyhow::Result<Vec<(String, String, i64)>> {
        let mut stmt = c.prepare_cached("SELECT op, fault, count FROM faults ORDER BY seq")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// `?after=<seq>&limit=<n>`: the page of a listing.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub after: i64,
    #[serde(default)]
    pub limit: Option<usize>,
}

impl Page {
    pub const FIRST: Page = Page { after: 0, limit: None };

    fn size(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

/// Every row of a listing, one page of [`MAX_LIMIT`] rows at a time:
/// `list` reads a page, `each` takes its rows (an export, a check).
pub async fn each_page<T, Fut>(
    mut list: impl FnMut(Page) -> Fut,
    mut each: impl FnMut(Vec<T>) -> anyhow::Result<()>,
) -> anyhow::Result<()>
where
    Fut: std::future::Future<Output = anyhow::Result<Listed<T>>>,
{
    let mut page = Page { after: 0, limit: Some(MAX_LIMIT) };
    loop {
        let listed = list(page).await?;
        each(listed.items)?;
        match listed.next {
            Some(after) => page.after = after,
            None => return Ok(()),
        }
    }
}

/// One page of a listing and the cursor of the next, if there is more.
#[derive(Debug)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub next: Option<i64>,
}

/// The rows of `table` after the page's cursor whose `column = value` for
/// every filter, oldest first. `table` and the columns are the simulator's
/// own names, never a caller's; each filter column leads an index.
pub fn page<T: DeserializeOwned>(
    c: &Connection,
    table: &'static str,
    filters: &[(&'static str, &str)],
    page: Page,
) -> anyhow::Result<Listed<T>> {
    let mut sql = format!("SELECT seq, body FROM {table} WHERE seq > ?1");
    for (n, (column, _)) in filters.iter().enumerate() {
        sql.push_str(&format!(" AND {column} = ?{}", n + 3));
    }
    sql.push_str(" ORDER BY seq LIMIT ?2");
    let size = page.size();
    // One more row than the page says whether there is a next one.
    let fetch = i64::try_from(size + 1).unwrap_or(i64::MAX);
    let mut args: Vec<&dyn ToSql> = vec![&page.after, &fetch];
    for (_, value) in filters {
        args.push(value);
    }
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(args.as_slice(), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut items = Vec::new();
    let mut last = None;
    let mut more = false;
    for row in rows {
        let (seq, body) = row?;
        if items.len() == size {
            more = true;
            break;
        }
        items.push(serde_json::from_str(&body)?);
        last = Some(seq);
    }
    Ok(Listed { items, next: if more { last } else { None } })
}

/// The newest `limit` rows of `table` (below the cursor `before`, when
/// given), newest first, and the cursor of the next (older) page if more
/// follow: what an operator reads first. One indexed range read.
pub fn newest<T: DeserializeOwned>(
    c: &Connection,
    table: &'static str,
    before: Option<i64>,
    limit: usize,
) -> anyhow::Result<Listed<T>> {
    let sql = format!("SELECT seq, body FROM {table} WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2");
    let fetch = i64::try_from(limit.min(MAX_LIMIT) + 1).unwrap_or(i64::MAX);
    let mut stmt = c.prepare_cached(&sql)?;
    let rows =
        stmt.query_map((before.unwrap_or(i64::MAX), fetch), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut items = Vec::new();
    let mut last = None;
    let mut more = false;
    for row in rows {
        let (seq, body) = row?;
        if items.len() == limit.min(MAX_LIMIT) {
            more = true;
            break;
        }
        items.push(serde_json::from_str(&body)?);
        last = Some(seq);
    }
    Ok(Listed { items, next: if more { last } else { None } })
}

/// A listing as the HTTP answer: a JSON array of the page and, when more
/// rows follow, `Link: <same query, after=cursor>; rel="next"` (RFC 8288).
pub fn listing<T: serde::Serialize>(uri: &Uri, listed: anyhow::Result<Listed<T>>) -> Response {
    let listed = match listed {
        Ok(l) => l,
        Err(e) => return internal(&e),
    };
    let mut response = axum::Json(listed.items).into_response();
    if let Some(next) = listed.next {
        let kept = uri.query().unwrap_or_default().split('&').filter(|p| !p.is_empty() && !p.starts_with("after="));
        let query: Vec<String> = kept.map(str::to_owned).chain([format!("after={next}")]).collect();
        let link = format!("<{}?{}>; rel=\"next\"", uri.path(), query.join("&"));
        if let Ok(v) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    response
}

/// A simulator's own failure (its database), logged.
pub fn logged(e: &anyhow::Error) {
    tracing::error!(error = %e, "simulator state");
}

/// A simulator's own failure (its database), logged and answered: 500 in
/// Toss's error shape, with the reason.
pub fn internal(e: &anyhow::Error) -> Response {
    logged(e);
    let message = format!("simulator state: {e}");
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(serde_json::json!({"code": "FAILED_INTERNAL_SYSTEM_PROCESSING", "message": message})),
    )
        .into_response()
}

/// A row's JSON body.
pub fn body<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string(value)?)
}

/// The one row `sql` selects (its first column, a JSON body), parsed.
pub fn one<T: DeserializeOwned>(c: &Connection, sql: &str, args: impl rusqlite::Params) -> anyhow::Result<Option<T>> {
    let body: Option<String> = c.prepare_cached(sql)?.query_row(args, |r| r.get(0)).optional()?;
    Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS log (
        seq INTEGER PRIMARY KEY, who TEXT NOT NULL, body TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS log_by_who ON log (who, seq);";

    async fn filled(file: Option<&Path>) -> Db {
        let db = Db::open("test-sim-db", file, SCHEMA).unwrap();
        db.tx(|c| {
            for n in 0..25u32 {
                let who = if n % 5 == 0 { "five" } else { "other" };
                c.execute("INSERT INTO log (who, body) VALUES (?1, ?2)", (who, body(&n)?))?;
            }
            Ok(())
        })
        .await
        .unwrap();
        db
    }

    #[tokio::test]
    async fn pages_follow_the_cursor_and_filters_use_their_column() {
        let db = filled(None).await;
        let first: Listed<u32> = db.tx(|c| page(c, "log", &[], Page { after: 0, limit: Some(10) })).await.unwrap();
        assert_eq!(first.items, (0..10).collect::<Vec<_>>());
        let rest: Listed<u32> =
            db.tx(move |c| page(c, "log", &[], Page { after: first.next.unwrap(), limit: Some(100) })).await.unwrap();
        assert_eq!(rest.items, (10..25).collect::<Vec<_>>());
        assert_eq!(rest.next, None, "the last page says so");
        let fives: Listed<u32> = db.tx(|c| page(c, "log", &[("who", "five")], Page::FIRST)).await.unwrap();
        assert_eq!(fives.items, vec![0, 5, 10, 15, 20]);
        // The filter is served by the index, not a scan of the table.
        let plan: String = db
            .tx(|c| {
                Ok(c.query_row(
                    "EXPLAIN QUERY PLAN SELECT seq, body FROM log WHERE seq > 0 AND who = 'five' ORDER BY seq",
                    [],
                    |r| r.get::<_, String>(3),
                )?)
            })
            .await
            .unwrap();
        assert!(plan.contains("log_by_who"), "{plan}");
    }

    #[tokio::test]
    async fn the_link_header_carries_the_query_and_the_next_cursor() {
        let db = filled(None).await;
        let listed = db.tx(|c| page::<u32>(c, "log", &[], Page { after: 3, limit: Some(2) })).await;
        let uri: Uri = "/v1/sim/calls?orderId=o1&after=3&limit=2".parse().unwrap();
        let r = listing(&uri, listed);
        let link = r.headers().get(header::LINK).unwrap().to_str().unwrap();
        assert_eq!(link, "</v1/sim/calls?orderId=o1&limit=2&after=5>; rel=\"next\"");
    }

    async fn take_confirm(db: &Db) -> anyhow::Result<Option<String>> {
        db.tx(|c| faults::take(c, "confirm")).await
    }

    #[tokio::test]
    async fn faults_are_used_up_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sim.db");
        let db = filled(Some(&file)).await;
        db.tx(|c| {
            faults::add(c, "confirm", "error", 2)?;
            faults::add(c, "confirm", "timeout", -1)?;
            faults::add(c, "cancel", "decline", 1)
        })
        .await
        .unwrap();
        assert_eq!(take_confirm(&db).await.unwrap().as_deref(), Some("error"));
        drop(db);
        // Reopened (a restart): the state is the committed one.
        let db = Db::open("test-sim-db", Some(&file), SCHEMA).unwrap();
        assert_eq!(take_confirm(&db).await.unwrap().as_deref(), Some("error"));
        for _ in 0..3 {
            assert_eq!(take_confirm(&db).await.unwrap().as_deref(), Some("timeout"), "-1 lasts until cleared");
        }
        assert_eq!(db.tx(faults::list).await.unwrap().len(), 2);
        db.tx(faults::clear).await.unwrap();
        assert_eq!(take_confirm(&db).await.unwrap(), None);
        let rows: Listed<u32> = db.tx(|c| page(c, "log", &[], Page::FIRST)).await.unwrap();
        assert_eq!(rows.items.len(), 25);
    }
}
