//! The order finder: one filter for the console's filtered list, its
//! export and its bulk actions, and `shop orders` / `shop bulk`.
//!
//! A filter combines any of: the status an order is in now, a consumer,
//! what is stuck (retrying, dead-lettered, either, a payment in doubt), the
//! payment method, a time range (when the order was placed), a user and a
//! correlation id. One of them drives the read — the first of these it
//! has, because each is an index or a narrower window than the next:
//!
//! | drives | read from | paged by |
//! | --- | --- | --- |
//! | user | the `byUser` index | the order's position |
//! | stuck = retrying, dead-lettered, failing | `byDue`'s `FAILED#n` / `DEAD#n` shards (an index of what is stuck, nothing else) | time, newest first |
//! | stuck = in-doubt | `byDue`'s reconcile entries | one page, capped at [`IN_DOUBT_CAP`] |
//! | correlation | a capped window of the event log | time |
//! | status | a capped window of the event log (events that moved orders into it) | time |
//! | nothing of the above | a capped window of the event log (`OrderPlaced`) | time |
//!
//! The other filters are applied to the orders read, as they are now. A
//! page examines at most [`EXAMINED`] candidates and reads at most
//! [`WINDOW_READ_CAP`] event-log entries, so no search grows with history:
//! a page may hold fewer rows than asked (even none) and still have a next
//! one; it says how many it examined and whether a cap cut it. A capped
//! read answers only what is complete (every match newer than where its
//! most-read partition stopped) and the next page resumes there, so paging
//! skips nothing however the event log's shards interleave
//! ([`shop_store::outbox::Outbox::search_window`]).

use std::collections::{BTreeSet, HashMap};

use shop_app::App;
use shop_domain::{Order, OrderId, OrderStatus, Payment, PaymentMethod, Timestamp, UserId};
use shop_store::OrderPosition;
use shop_store::outbox::{EventField, Window};
use shop_store::saga::Failure;

use crate::ops::CONSUMERS;

/// Rows a page shows.
pub const PAGE: usize = 50;
/// Candidates one page examines (read from the driving index or window and
/// loaded to be filtered).
pub const EXAMINED: usize = 200;
/// Event-log entries a window search evaluates per page.
pub const WINDOW_READ_CAP: i32 = 2_000;
/// The window a search of the event log reads without a time range.
pub const DEFAULT_DAYS: i64 = 7;
/// How much one read takes: rows kept, candidates examined.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub rows: usize,
    pub examined: usize,
}

impl Size {
    /// A page on the console or `shop orders`.
    pub const PAGE: Size = Size { rows: PAGE, examined: EXAMINED };
    /// A step of an export or a bulk plan: larger reads, fewer of them.
    pub const BULK: Size = Size { rows: 1_000, examined: 1_000 };
}

/// Payments in doubt one page lists (oldest in doubt first).
pub const IN_DOUBT_CAP: i32 = 200;
/// Outcomes read per shard of the stuck lists for one page.
const STUCK_PER_SHARD: i32 = 64;

/// What is stuck about an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stuck {
    /// A consumer failed on one of its events and has not done it since:
    /// retrying or dead-lettered.
    Failing,
    /// … and will be tried again.
    Retrying,
    /// … and its message is in a DLQ, waiting for an operator.
    DeadLettered,
    /// Its payment is CONFIRMING or UNKNOWN: the PG's answer is not known.
    InDoubt,
    /// AWAITING_DEPOSIT past its virtual account's due date: the
    /// reconciler should have expired it and has not (yet).
    PastDue,
}

impl Stuck {
    pub const ALL: [Stuck; 5] = [Stuck::Failing, Stuck::Retrying, Stuck::DeadLettered, Stuck::InDoubt, Stuck::PastDue];

    pub fn as_str(self) -> &'static str {
        match self {
            Stuck::Failing => "failing",
            Stuck::Retrying => "retrying",
            Stuck::DeadLettered => "dead-lettered",
            Stuck::InDoubt => "in-doubt",
            Stuck::PastDue => "past-due",
        }
    }

    pub fn parse(s: &str) -> Option<Stuck> {
        Stuck::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The payment methods by the names filters use.
pub fn method_name(m: PaymentMethod) -> &'static str {
    match m {
        PaymentMethod::Card => "card",
        PaymentMethod::VirtualAccount => "virtual-account",
        PaymentMethod::Points => "points",
    }
}

pub const METHODS: [PaymentMethod; 3] = [PaymentMethod::Card, PaymentMethod::VirtualAccount, PaymentMethod::Points];

/// The filter's keys, as query parameters and `--filter KEY=VALUE`.
pub const KEYS: [&str; 8] = ["status", "consumer", "stuck", "method", "from", "to", "user", "correlation"];

/// A combination of filters; none is every order placed in the last
/// [`DEFAULT_DAYS`] days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub status: Option<OrderStatus>,
    pub consumer: Option<&'static str>,
    pub stuck: Option<Stuck>,
    pub method: Option<PaymentMethod>,
    /// Placed at or after.
    pub from: Option<Timestamp>,
    /// Placed at or before.
    pub to: Option<Timestamp>,
    pub user: Option<UserId>,
    pub correlation: Option<String>,
}

/// A filter that cannot be one: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter {key}: {why}")]
pub struct BadFilter {
    pub key: String,
    pub why: String,
}

fn bad(key: &str, why: impl Into<String>) -> BadFilter {
    BadFilter { key: key.to_owned(), why: why.into() }
}

impl Filter {
    /// The filter of `pairs` (query parameters, or `KEY=VALUE` arguments);
    /// blank values are no filter, unknown keys and repeated ones refused.
    /// `ignore` names other parameters a page carries beside the filter.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        ignore: &[&str],
        now: Timestamp,
    ) -> Result<Filter, BadFilter> {
        let mut f = Filter::default();
        let mut seen = BTreeSet::new();
        for (key, value) in pairs {
            if ignore.contains(&key) {
                continue;
            }
            if !KEYS.contains(&key) {
                return Err(bad(key, format!("no such filter; one of {}", KEYS.join(", "))));
            }
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            if !seen.insert(key) {
                return Err(bad(key, "given twice"));
            }
            match key {
                "status" => f.status = Some(OrderStatus::parse(value).ok_or_else(|| bad(key, "no such status"))?),
                "consumer" => {
                    let c = CONSUMERS.iter().find(|c| **c == value);
                    f.consumer = Some(c.ok_or_else(|| bad(key, format!("one of {}", CONSUMERS.join(", "))))?);
                }
                "stuck" => {
                    let names: Vec<_> = Stuck::ALL.iter().map(|s| s.as_str()).collect();
                    f.stuck =
                        Some(Stuck::parse(value).ok_or_else(|| bad(key, format!("one of {}", names.join(", "))))?);
                }
                "method" => {
                    let m = METHODS.into_iter().find(|m| method_name(*m) == value);
                    f.method = Some(m.ok_or_else(|| bad(key, "card, virtual-account or points"))?);
                }
                "from" | "to" => {
                    let t = crate::ops::parse_time(value, now).map_err(|e| bad(key, e.to_string()))?;
                    if key == "from" { f.from = Some(t) } else { f.to = Some(t) }
                }
                "user" => f.user = Some(UserId::parse(value).map_err(|e| bad(key, e.to_string()))?),
                _ => {
                    let ok = value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic());
                    if !ok {
                        return Err(bad(key, "at most 128 printable characters"));
                    }
                    f.correlation = Some(value.to_owned());
                }
            }
        }
        if let (Some(from), Some(to)) = (f.from, f.to)
            && from > to
        {
            return Err(bad("from", "after to"));
        }
        if f.consumer.is_some() && !matches!(f.stuck, Some(Stuck::Failing | Stuck::Retrying | Stuck::DeadLettered)) {
            return Err(bad("consumer", "names whose failures: give stuck=failing, retrying or dead-lettered"));
        }
        Ok(f)
    }

    /// The filter as `(key, value)` pairs, in [`KEYS`]' order.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut push = |k, v: Option<String>| {
            if let Some(v) = v {
                out.push((k, v));
            }
        };
        push("status", self.status.map(|s| s.as_str().to_owned()));
        push("consumer", self.consumer.map(str::to_owned));
        push("stuck", self.stuck.map(|s| s.as_str().to_owned()));
        push("method", self.method.map(|m| method_name(m).to_owned()));
        push("from", self.from.map(Timestamp::to_rfc3339));
        push("to", self.to.map(Timestamp::to_rfc3339));
        push("user", self.user.as_ref().map(|u| u.as_str().to_owned()));
        push("correlation", self.correlation.clone());
        out
    }

    /// The filter as a query string (without `?`), its values encoded.
    pub fn to_query(&self) -> String {
        serde_urlencoded::to_string(self.to_pairs()).unwrap_or_default()
    }

    /// What drives the read (the table in this module's doc).
    pub fn source(&self) -> Source {
        match (&self.user, self.stuck, &self.correlation, self.status) {
            (Some(_), _, _, _) => Source::User,
            (None, Some(Stuck::InDoubt), _, _) => Source::InDoubt,
            (None, Some(Stuck::PastDue), _, _) => Source::PastDue,
            (None, Some(stuck), _, _) => Source::Stuck(stuck),
            (None, None, Some(_), _) => Source::Correlation,
            (None, None, None, Some(_)) => Source::Status,
            (None, None, None, None) => Source::Placed,
        }
    }

    fn window(&self, before: Option<Timestamp>, now: Timestamp) -> Window {
        let before = [before, self.to].into_iter().flatten().min().unwrap_or(now);
        let after = self.from.unwrap_or_else(|| before.plus_secs(-DEFAULT_DAYS * 86_400));
        Window { after, before }
    }

    /// Whether orders read from a window of the event log may fail the
    /// other filters (so more candidates are read than rows wanted): a
    /// status or a placed window alone keeps nearly every order it reads.
    fn drops_rows(&self, source: Source) -> bool {
        self.method.is_some()
            || (source == Source::Correlation && (self.status.is_some() || self.from.is_some() || self.to.is_some()))
    }

    /// Whether `order` (with the failure or payment that listed it) passes
    /// every filter.
    fn keeps(&self, order: &Order, failure: Option<&Failure>, payment: Option<&Payment>, now: Timestamp) -> bool {
        let failing = |dead: Option<bool>| {
            failure.is_some_and(|f| {
                dead.is_none_or(|d| f.outcome.dead_lettered_at.is_some() == d)
                    && self.consumer.is_none_or(|c| f.outcome.consumer == c)
            })
        };
        let stuck = match self.stuck {
            None => true,
            Some(Stuck::Failing) => failing(None),
            Some(Stuck::Retrying) => failing(Some(false)),
            Some(Stuck::DeadLettered) => failing(Some(true)),
            Some(Stuck::InDoubt) => payment.is_some_and(|p| p.status.in_doubt()),
            Some(Stuck::PastDue) => order.status == OrderStatus::AwaitingDeposit && order.deposit_due() < now,
        };
        stuck
            && self.status.is_none_or(|s| order.status == s)
            && self.method.is_none_or(|m| order.payment_method == Some(m))
            && self.from.is_none_or(|t| order.created_at >= t)
            && self.to.is_none_or(|t| order.created_at <= t)
            && self.user.as_ref().is_none_or(|u| &order.user_id == u)
    }
}

/// What a search reads first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    User,
    Stuck(Stuck),
    InDoubt,
    PastDue,
    Correlation,
    Status,
    Placed,
}

impl Source {
    /// Whether it is an index (else a capped window of the event log).
    pub fn indexed(self) -> bool {
        matches!(self, Source::User | Source::Stuck(_) | Source::InDoubt | Source::PastDue)
    }

    /// What it reads, as the page and the command say it.
    pub fn describe(self) -> String {
        let window = format!(
            "a capped window of the event log: at most {WINDOW_READ_CAP} entries a page, over the time range \
             (default the last {DEFAULT_DAYS} days)"
        );
        match self {
            Source::User => "the byUser index (the user's orders, newest first)".into(),
            Source::Stuck(s) => format!("the index of {} outcomes (byDue), newest first", s.as_str()),
            Source::InDoubt => {
                format!("the reconciler's index (byDue) of payments in doubt, at most {IN_DOUBT_CAP}, one page")
            }
            Source::PastDue => format!(
                "the reconciler's index (byDue) of virtual accounts whose check is due (a past-due account's always is), \
                 at most {IN_DOUBT_CAP}, one page"
            ),
            Source::Correlation => format!("{window}, events with the correlation id"),
            Source::Status => format!("{window}, events that moved orders into the status"),
            Source::Placed => format!("{window}, OrderPlaced events"),
        }
    }
}

/// One order the filter found, with what listed it.
#[derive(Debug, Clone)]
pub struct Row {
    pub order: Order,
    /// The consumer's failure (stuck searches).
    pub failure: Option<Failure>,
    /// The payment in doubt (in-doubt searches).
    pub payment: Option<Payment>,
    /// When it was listed: entered the status, failed, went to the DLQ, placed.
    pub at: Timestamp,
}

/// A page of found orders.
#[derive(Debug, Clone)]
pub struct Found {
    pub rows: Vec<Row>,
    /// Where the next page starts (an opaque cursor), if there is one.
    pub next: Option<String>,
    pub source: Source,
    /// Candidates examined for this page.
    pub examined: usize,
    /// Whether the event-log read cap cut this page's window.
    pub capped: bool,
}

/// A candidate before its order is loaded: its key in the cursor, its time.
struct Candidate {
    key: String,
    order: OrderId,
    at: Timestamp,
    failure: Option<Failure>,
    payment: Option<Payment>,
}

/// A time-ordered cursor: the time of the last row examined, and the keys
/// examined at exactly that time (`<ms>.<key>,<key>`).
struct TimeCursor {
    ms: i64,
    seen: BTreeSet<String>,
}

impl TimeCursor {
    fn parse(s: &str) -> Option<TimeCursor> {
        let (ms, keys) = s.split_once('.')?;
        let ms = ms.parse().ok()?;
        let seen: BTreeSet<String> = keys.split(',').filter(|k| !k.is_empty()).map(str::to_owned).collect();
        let ok = seen.len() <= Size::BULK.examined
            && seen
                .iter()
                .all(|k| k.len() <= 128 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_~.".contains(&b)));
        ok.then_some(TimeCursor { ms, seen })
    }

    /// The cursor after `examined` (newest first).
    fn after(examined: &[Candidate]) -> Option<String> {
        let last = examined.last()?;
        let keys: Vec<&str> = examined.iter().filter(|c| c.at == last.at).map(|c| c.key.as_str()).collect();
        Some(format!("{}.{}", last.at.millis(), keys.join(",")))
    }

    fn skips(&self, c: &Candidate) -> bool {
        c.at.millis() > self.ms || (c.at.millis() == self.ms && self.seen.contains(&c.key))
    }
}

/// A bad cursor (not one a page handed out).
#[derive(Debug, thiserror::Error)]
#[error("not a cursor this search handed out")]
pub struct BadCursor;

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error(transparent)]
    Cursor(#[from] BadCursor),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl From<shop_store::StoreError> for FindError {
    fn from(e: shop_store::StoreError) -> Self {
        FindError::Store(e.into())
    }
}

/// One page of the orders `filter` finds, from `cursor` (a previous
/// page's `next`) on.
pub async fn page(app: &App, filter: &Filter, cursor: Option<&str>) -> Result<Found, FindError> {
    page_sized(app, filter, cursor, Size::PAGE).await
}

/// [`page`], of `size`.
pub async fn page_sized(app: &App, filter: &Filter, cursor: Option<&str>, size: Size) -> Result<Found, FindError> {
    let source = filter.source();
    let now = app.clock.now();
    if source == Source::User {
        return user_page(app, filter, cursor, size).await;
    }
    let cursor = cursor.map(|c| TimeCursor::parse(c).ok_or(BadCursor)).transpose()?;
    let before = cursor.as_ref().map(|c| Timestamp::from_millis(c.ms));
    // Where a capped window's read stopped: the next page resumes there.
    let mut stopped_at: Option<Timestamp> = None;
    // The candidates newest first, and whether the source holds more.
    let (candidates, more, capped) = match source {
        // Answered above, from its own index.
        Source::User => (Vec::new(), false, false),
        Source::Stuck(stuck) => stuck_candidates(app, stuck, before).await?,
        Source::InDoubt => {
            let mut out = Vec::new();
            for p in app.store.payments().in_doubt(now, IN_DOUBT_CAP).await? {
                out.push(Candidate {
                    key: p.payment_key.to_string(),
                    order: p.order_id.clone(),
                    at: p.updated_at,
                    failure: None,
                    payment: Some(p),
                });
            }
            (out, false, false)
        }
        Source::PastDue => {
            let mut out = Vec::new();
            for p in app.store.payments().deposits_due(now, IN_DOUBT_CAP).await? {
                out.push(Candidate {
                    key: p.payment_key.to_string(),
                    order: p.order_id.clone(),
                    at: p.check_at.unwrap_or(p.updated_at),
                    failure: None,
                    payment: Some(p),
                });
            }
            (out, false, false)
        }
        Source::Correlation | Source::Status | Source::Placed => {
            let (field, value) = match (source, &filter.correlation, filter.status) {
                (Source::Correlation, Some(c), _) => (EventField::CorrelationId, c.clone()),
                (Source::Status, _, Some(s)) => (EventField::StatusTo, s.as_str().to_owned()),
                _ => (EventField::DetailType, "OrderPlaced".to_owned()),
            };
            let window = filter.window(before, now);
            // The newest `want` of the window: of every partition of a day that many (docs/adr/0029).
            let want = if filter.drops_rows(source) { size.examined } else { size.rows };
            let searched = app.store.outbox().search_window(field, &value, window, want + 1, WINDOW_READ_CAP).await?;
            stopped_at = searched.complete_after;
            let more = searched.events.len() > want;
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for e in searched.events {
                let Some(id) = e.pk.strip_prefix("ORDER#").and_then(|id| OrderId::parse(id).ok()) else { continue };
                // An order once, at its newest matching event.
                if seen.insert(id.clone()) {
                    out.push(Candidate {
                        key: id.to_string(),
                        order: id,
                        at: e.occurred_at,
                        failure: None,
                        payment: None,
                    });
                }
            }
            (out, more, stopped_at.is_some())
        }
    };
    let candidates: Vec<Candidate> =
        candidates.into_iter().filter(|c| cursor.as_ref().is_none_or(|cur| !cur.skips(c))).collect();
    let (rows, examined, stopped) = load_and_keep(app, filter, candidates, now, size).await?;
    let next = match (stopped || more, stopped_at) {
        // The page filled up before its candidates ran out, or the source has more.
        (true, _) => TimeCursor::after(&examined),
        // The window's read stopped at a time, everything after it answered.
        (false, Some(at)) => Some(format!("{}.", at.millis())),
        (false, None) => None,
    };
    Ok(Found { rows, next, source, examined: examined.len(), capped })
}

/// The newest stuck outcomes at or before `before`, merged over the shards:
/// the newest [`STUCK_PER_SHARD`] overall are exact.
async fn stuck_candidates(
    app: &App,
    stuck: Stuck,
    before: Option<Timestamp>,
) -> anyhow::Result<(Vec<Candidate>, bool, bool)> {
    let saga = app.store.saga();
    let mut failures = match stuck {
        Stuck::Retrying => saga.failures_page(false, before, STUCK_PER_SHARD).await?,
        Stuck::DeadLettered => saga.failures_page(true, before, STUCK_PER_SHARD).await?,
        _ => {
            let mut all = saga.failures_page(false, before, STUCK_PER_SHARD).await?;
            all.extend(saga.failures_page(true, before, STUCK_PER_SHARD).await?);
            all.sort_by_key(|f| std::cmp::Reverse(f.listed_at()));
            all
        }
    };
    let exact = usize::try_from(STUCK_PER_SHARD).unwrap_or(0);
    let more = failures.len() > exact;
    failures.truncate(exact);
    let mut out = Vec::new();
    for f in failures {
        let Ok(order) = OrderId::parse(&f.order_id) else { continue };
        let key = format!("{}~{}~{}", f.order_id, f.version().unwrap_or(0), f.outcome.consumer);
        out.push(Candidate { key, order, at: f.listed_at(), failure: Some(f), payment: None });
    }
    Ok((out, more, false))
}

/// Loads the candidates' orders and keeps those the filter passes, up to
/// [`PAGE`] rows and [`EXAMINED`] candidates: the rows, the candidates
/// examined, and whether the page filled up before they ran out.
async fn load_and_keep(
    app: &App,
    filter: &Filter,
    candidates: Vec<Candidate>,
    now: Timestamp,
    size: Size,
) -> anyhow::Result<(Vec<Row>, Vec<Candidate>, bool)> {
    let candidates: Vec<Candidate> = candidates.into_iter().take(size.examined).collect();
    let ids: Vec<OrderId> = candidates.iter().map(|c| c.order.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let orders: HashMap<OrderId, Order> =
        app.store.orders().get_many(&ids).await?.into_iter().map(|o| (o.id.clone(), o)).collect();
    let mut rows = Vec::new();
    let mut examined = Vec::new();
    let total = candidates.len();
    for c in candidates {
        if rows.len() == size.rows {
            break;
        }
        if let Some(order) = orders.get(&c.order)
            && filter.keeps(order, c.failure.as_ref(), c.payment.as_ref(), now)
        {
            rows.push(Row { order: order.clone(), failure: c.failure.clone(), payment: c.payment.clone(), at: c.at });
        }
        examined.push(c);
    }
    let stopped = examined.len() < total;
    Ok((rows, examined, stopped))
}

/// A page of the user's orders (the `byUser` index), filtered.
async fn user_page(app: &App, filter: &Filter, cursor: Option<&str>, size: Size) -> Result<Found, FindError> {
    let Some(user) = &filter.user else { return Err(BadCursor.into()) };
    let now = app.clock.now();
    let after = cursor.map(|c| OrderPosition::parse(c).ok_or(BadCursor)).transpose()?;
    let (orders, next) = app.store.orders().page(user, filter.status, size.rows, after.as_ref()).await?;
    let examined = orders.len();
    let mut rows = Vec::new();
    for order in orders {
        // The user's stuck orders: each failed outcome a row (one query an
        // order), or the payment.
        let listed: Vec<(Option<Failure>, Option<Payment>)> = match filter.stuck {
            None => vec![(None, None)],
            Some(Stuck::InDoubt | Stuck::PastDue) => match &order.payment_key {
                Some(k) => vec![(None, app.store.payments().get(k).await?)],
                None => vec![(None, None)],
            },
            Some(_) => failures_of(app, &order).await?.into_iter().map(|f| (Some(f), None)).collect(),
        };
        for (failure, payment) in listed {
            if filter.keeps(&order, failure.as_ref(), payment.as_ref(), now) {
                rows.push(Row { at: order.created_at, order: order.clone(), failure, payment });
            }
        }
    }
    Ok(Found { rows, next: next.map(|p| p.0), source: Source::User, examined, capped: false })
}

/// The order's failed outcomes not done since, newest first.
async fn failures_of(app: &App, order: &Order) -> anyhow::Result<Vec<Failure>> {
    let mut failed: Vec<Failure> = app
        .store
        .saga()
        .outcomes_of(&order.id)
        .await?
        .into_iter()
        .filter(|o| o.status == shop_store::saga::FAILED)
        .map(|outcome| Failure { order_id: order.id.to_string(), outcome })
        .collect();
    failed.sort_by_key(|f| std::cmp::Reverse(f.listed_at()));
    Ok(failed)
}

/// Every row `filter` finds, page after page, up to `max` rows (and
/// [`MAX_PAGES`] pages): what an export and a bulk action work on. Answers
/// the rows and whether there were more.
pub async fn collect(app: &App, filter: &Filter, max: usize) -> Result<(Vec<Row>, bool), FindError> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let found = page_sized(app, filter, cursor.as_deref(), Size::BULK).await?;
        rows.extend(found.rows);
        if rows.len() >= max {
            let more = rows.len() > max || found.next.is_some();
            rows.truncate(max);
            return Ok((rows, more));
        }
        match found.next {
            Some(n) => cursor = Some(n),
            None => return Ok((rows, false)),
        }
    }
    Ok((rows, true))
}

/// Reads [`collect`] makes at most (each bounded: [`Size::BULK`]'s candidates).
pub const MAX_PAGES: usize = 20;

/// Export of rows: CSV and JSON.
pub mod export {
    use super::{Row, method_name};

    /// The columns of an export, in order.
    pub const COLUMNS: [&str; 11] = [
        "orderId",
        "status",
        "userId",
        "paymentMethod",
        "amountDue",
        "placedAt",
        "listedAt",
        "consumer",
        "eventId",
        "deadLetteredAt",
        "lastError",
    ];

    fn cells(r: &Row) -> [String; 11] {
        let f = r.failure.as_ref().map(|f| &f.outcome);
        [
            r.order.id.to_string(),
            r.order.status.as_str().to_owned(),
            r.order.user_id.to_string(),
            r.order.payment_method.map(method_name).unwrap_or("").to_owned(),
            r.order.amount_due.to_string(),
            r.order.created_at.to_rfc3339(),
            r.at.to_rfc3339(),
            f.map(|o| o.consumer.clone()).unwrap_or_default(),
            f.map(|o| o.event_id.clone()).unwrap_or_default(),
            f.and_then(|o| o.dead_lettered_at).map(|t| t.to_rfc3339()).unwrap_or_default(),
            f.and_then(|o| o.detail.clone()).unwrap_or_default(),
        ]
    }

    /// A cell a spreadsheet would read as a formula (it starts with `=`,
    /// `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'`, so
    /// it is text (OWASP's CSV injection advice); then quoted as RFC 4180
    /// asks when it holds a comma, a quote or a line break.
    pub fn csv_cell(value: &str) -> String {
        let neutral = match value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            true => format!("'{value}"),
            false => value.to_owned(),
        };
        match neutral.contains([',', '"', '\n', '\r']) {
            true => format!("\"{}\"", neutral.replace('"', "\"\"")),
            false => neutral,
        }
    }

    /// The rows as CSV (a header, CRLF line ends).
    pub fn csv(rows: &[Row]) -> String {
        let mut out = COLUMNS.join(",");
        out.push_str("\r\n");
        for r in rows {
            let line: Vec<String> = cells(r).iter().map(|c| csv_cell(c)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        out
    }

    /// The rows as JSON: an array of objects with [`COLUMNS`]' keys (values
    /// as they are: JSON is not a spreadsheet).
    pub fn json(rows: &[Row]) -> serde_json::Value {
        serde_json::Value::Array(
            rows.iter()
                .map(|r| {
                    let obj = COLUMNS
                        .iter()
                        .zip(cells(r))
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v)))
                        .collect();
                    serde_json::Value::Object(obj)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_765_000_000_000);

    fn parse(pairs: &[(&str, &str)]) -> Result<Filter, BadFilter> {
        Filter::parse(pairs.iter().copied(), &["page"], NOW)
    }

    #[test]
    fn a_filter_reads_back_from_its_own_query() {
        let f = parse(&[
            ("status", "PAID"),
            ("stuck", "dead-lettered"),
            ("consumer", "analytics"),
            ("method", "virtual-account"),
            ("from", "-2h"),
            ("correlation", "run-1"),
            ("page", "ignored"),
        ])
        .unwrap();
        let q = f.to_query();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&q).unwrap();
        let back = Filter::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), &[], NOW).unwrap();
        assert_eq!(back, f);
        assert_eq!(f.source(), Source::Stuck(Stuck::DeadLettered));
    }

    #[test]
    fn bad_filters_name_their_key() {
        assert_eq!(parse(&[("colour", "red")]).unwrap_err().key, "colour");
        assert_eq!(parse(&[("status", "LOST")]).unwrap_err().key, "status");
        assert_eq!(parse(&[("status", "PAID"), ("status", "CANCELLED")]).unwrap_err().why, "given twice");
        assert_eq!(parse(&[("consumer", "analytics")]).unwrap_err().key, "consumer");
        assert_eq!(parse(&[("from", "-1h"), ("to", "-2h")]).unwrap_err().key, "from");
        assert_eq!(parse(&[("correlation", "a b")]).unwrap_err().key, "correlation");
        assert_eq!(parse(&[("status", " ")]).unwrap(), Filter::default(), "blank is no filter");
    }

    #[test]
    fn the_source_is_the_narrowest_index() {
        let user = parse(&[("user", "u-1"), ("stuck", "retrying")]).unwrap();
        assert_eq!(user.source(), Source::User);
        assert_eq!(parse(&[("stuck", "in-doubt"), ("status", "PAID")]).unwrap().source(), Source::InDoubt);
        assert_eq!(parse(&[("status", "PAID"), ("correlation", "c")]).unwrap().source(), Source::Correlation);
        assert_eq!(parse(&[("status", "PAID")]).unwrap().source(), Source::Status);
        assert_eq!(parse(&[]).unwrap().source(), Source::Placed);
        assert!(!Source::Status.indexed() && Source::Stuck(Stuck::Failing).indexed());
    }

    #[test]
    fn cells_a_spreadsheet_would_run_are_text() {
        for evil in ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            let cell = export::csv_cell(evil);
            let inner = cell.strip_prefix('"').unwrap_or(&cell);
            assert!(inner.starts_with('\''), "{evil:?} became {cell:?}");
        }
        assert_eq!(export::csv_cell("a,b"), "\"a,b\"");
        assert_eq!(export::csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(export::csv_cell("plain"), "plain");
    }

    #[test]
    fn a_cursor_skips_what_its_page_examined() {
        let c = TimeCursor::parse("1000.a,b").unwrap();
        let cand = |key: &str, ms| Candidate {
            key: key.into(),
            order: OrderId::parse("o-1").unwrap(),
            at: Timestamp::from_millis(ms),
            failure: None,
            payment: None,
        };
        assert!(c.skips(&cand("a", 1000)) && c.skips(&cand("z", 1001)));
        assert!(!c.skips(&cand("c", 1000)) && !c.skips(&cand("a", 999)));
        assert!(TimeCursor::parse("x.a").is_none() && TimeCursor::parse("1000.a#b").is_none());
    }
}
