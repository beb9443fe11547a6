//! The waiting room's use cases (docs/adr/0027-the-waiting-room.md):
//! creating a sale, entering its queue, reading one's ticket, leaving, the
//! admitter's step, a slot released when its order ends, and the session
//! timer. Each reads, lets `shop_domain::sale` decide and writes one
//! conditional transaction through the one retry loop.
//!
//! Nothing here touches an order or a payment: the queue failing never
//! rolls back a sale's orders (the article's point).

use crate::App;
use crate::usecases::retry::{Contended, Step, retry};
use shop_domain::sale::Gate;
use shop_domain::sale::admit::Health;
use shop_domain::sale::{
    Position, Sale, SaleState, Shown, Slots, Ticket, TicketError, next_rate, plan_step, sells_out,
};
use shop_domain::{OrderId, ProductId, SaleId, UserId};
use shop_store::{ConflictReason, StoreError, Tx, TxItem};

/// What [`create_sale`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// Created as stored (with its units at start).
    New(Box<Sale>),
    /// A sale with its id exists (as stored now): kept as it is.
    Existing(Box<Sale>),
}

#[derive(Debug, thiserror::Error)]
pub enum CreateSaleError {
    #[error("unknown product {0}")]
    UnknownProduct(ProductId),
    /// Another sale's gate on the product still applies.
    #[error("product {product} is in sale {sale} until {}", .until.to_rfc3339())]
    ProductInSale { product: ProductId, sale: SaleId, until: shop_domain::Timestamp },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for CreateSaleError {
    fn from(e: StoreError) -> Self {
        CreateSaleError::Unexpected(e.into())
    }
}

/// Creates `sale` and gates its products, in one transaction: each
/// product must exist and be in no other sale still running. Creating
/// the same sale again puts its gates back (a re-seeded catalog drops
/// them) and changes nothing else.
pub async fn create_sale(app: &App, asked: &Sale) -> Result<Created, CreateSaleError> {
    let now = app.clock.now();
    let products = app.store.catalog().products(&asked.terms.products).await?;
    if let Some(missing) = asked.terms.products.iter().find(|id| !products.iter().any(|p| p.id == **id)) {
        return Err(CreateSaleError::UnknownProduct(missing.clone()));
    }
    let units = products.iter().fold(0u64, |sum, p| sum.saturating_add(p.available));
    let sale = &Sale { units_at_start: units, ..asked.clone() };
    let gate = Gate { sale: sale.id.clone(), until: sale.terms.ends_at };
    let gates = |tx: &mut Tx| -> anyhow::Result<()> {
        for p in &sale.terms.products {
            tx.push(app.store.catalog().op_gate(p, &gate, now)?);
        }
        Ok(())
    };
    let mut tx = Tx::new();
    tx.push(app.store.sales().op_create(sale)?);
    gates(&mut tx)?;
    let refused = match app.store.transact(tx).await {
        Ok(()) => {
            tracing::info!(sale_id = %sale.id, capacity = sale.terms.capacity, units, "sale created");
            return Ok(Created::New(Box::new(sale.clone())));
        }
        Err(StoreError::Conflict { item: TxItem::Sale(_), reason: ConflictReason::ConditionFailed }) => None,
        Err(StoreError::Conflict { item: TxItem::Gate(p), reason: ConflictReason::ConditionFailed }) => Some(p),
        Err(e) => return Err(e.into()),
    };
    if let Some(product) = refused {
        return Err(gate_refused(app, &product).await);
    }
    let existing = app.store.sales().get(&sale.id).await?.ok_or_else(|| {
        CreateSaleError::Unexpected(anyhow::anyhow!("sale {} refused as existing, then not found", sale.id))
    })?;
    if existing.terms == sale.terms && existing.state(now) != SaleState::Ended {
        let mut tx = Tx::new();
        gates(&mut tx)?;
        match app.store.transact(tx).await {
            Ok(()) => {}
            Err(StoreError::Conflict { item: TxItem::Gate(p), reason: ConflictReason::ConditionFailed }) => {
                return Err(gate_refused(app, &p).await);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Created::Existing(Box::new(existing)))
}

/// Why the gate on `product` was refused: it is unknown, or another
/// sale's gate applies.
async fn gate_refused(app: &App, product: &str) -> CreateSaleError {
    let Ok(id) = ProductId::parse(product) else {
        return CreateSaleError::Unexpected(anyhow::anyhow!("gate refused on a product id that does not parse"));
    };
    match app.store.catalog().product_with_gate(&id).await {
        Ok(None) => CreateSaleError::UnknownProduct(id),
        Ok(Some((_, Some(g)))) => CreateSaleError::ProductInSale { product: id, sale: g.sale, until: g.until },
        Ok(Some((_, None))) => {
            CreateSaleError::Unexpected(anyhow::anyhow!("gate on {id} refused, and the product has none"))
        }
        Err(e) => e.into(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    #[error("unknown sale {0}")]
    UnknownSale(SaleId),
    #[error("sale {id} is {state:?}: it takes no more entries")]
    Closed { id: SaleId, state: SaleState },
    #[error(transparent)]
    Contention(Contended),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::usecases::retry::use_case_error!(EnterError);

/// A ticket, and whether this entry made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entered {
    pub ticket: Ticket,
    pub new: bool,
    /// The sale as read for the entry.
    pub sale: Sale,
}

/// `user` enters `sale`'s queue. Entering again returns the ticket the
/// user holds, never a better place.
#[tracing::instrument(skip_all, fields(sale_id = %id))]
pub async fn enter(app: &App, id: &SaleId, user: &UserId) -> Result<Entered, EnterError> {
    retry(user.as_str(), |_| enter_attempt(app, id, user)).await
}

async fn enter_attempt(app: &App, id: &SaleId, user: &UserId) -> Result<Entered, Step<EnterError>> {
    let sales = app.store.sales();
    let sale = sales.get(id).await?.ok_or_else(|| Step::Fail(EnterError::UnknownSale(id.clone())))?;
    if let Some(ticket) = sales.ticket(id, user).await? {
        return Ok(Entered { ticket, new: false, sale });
    }
    let now = app.clock.now();
    let place = match sale.state(now) {
        SaleState::Scheduled => sale.early_place(user),
        SaleState::Open => sales.take_number(&sale, user).await?,
        state @ (SaleState::SoldOut | SaleState::Ended) => {
            return Err(Step::Fail(EnterError::Closed { id: id.clone(), state }));
        }
    };
    let ticket = Ticket::enter(id.clone(), user.clone(), place, now);
    let mut tx = Tx::new();
    tx.push(sales.op_put_ticket(&ticket, &sale)?);
    if matches!(place, shop_domain::sale::Place::Early { .. }) {
        tx.push(sales.op_count_early(&sale, user)?);
    }
    match app.store.transact(tx).await {
        Ok(()) => {
            app.admitter.notify_one();
            tracing::info!(place = ?ticket.place, "entered the queue");
            Ok(Entered { ticket, new: true, sale })
        }
        // The same user entered a moment ago: theirs is the ticket (the
        // number drawn here is a gap the admitter skips).
        Err(StoreError::Conflict { item: TxItem::Ticket(_), reason: ConflictReason::ConditionFailed }) => {
            let ticket = sales.ticket(id, user).await?.ok_or_else(|| {
                Step::Fail(EnterError::Unexpected(anyhow::anyhow!("ticket refused as existing, then not found")))
            })?;
            Ok(Entered { ticket, new: false, sale })
        }
        Err(e) => Err(e.into()),
    }
}

/// A ticket as its holder sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketView {
    pub ticket: Ticket,
    pub shown: Shown,
    /// While it waits: how far from its turn.
    pub position: Option<Position>,
    /// While it waits: seconds until its turn at the rate in force, about.
    pub wait_secs: Option<u64>,
    pub sale: Sale,
    /// When the view was made: what its state is of.
    pub at: shop_domain::Timestamp,
}

impl TicketView {
    /// `ticket` of `sale` as its holder sees it at `now`.
    pub fn of(ticket: Ticket, sale: Sale, now: shop_domain::Timestamp) -> TicketView {
        let shown = ticket.shown(sale.state(now));
        let position = (shown == Shown::Waiting).then(|| sale.position_of(ticket.place));
        let wait_secs = position.map(|p| estimated_wait(&sale, p.ahead, now));
        TicketView { ticket, shown, position, wait_secs, sale, at: now }
    }
}

/// `user`'s ticket for `id`, with its position: two reads, whatever the
/// queue's length.
pub async fn my_ticket(app: &App, id: &SaleId, user: &UserId) -> Result<Option<TicketView>, StoreError> {
    let sales = app.store.sales();
    let (Some(sale), Some(ticket)) = (sales.get(id).await?, sales.ticket(id, user).await?) else {
        return Ok(None);
    };
    Ok(Some(TicketView::of(ticket, sale, app.clock.now())))
}

#[derive(Debug, thiserror::Error)]
pub enum LeaveError {
    #[error("no ticket for this sale")]
    NoTicket,
    #[error(transparent)]
    Refused(TicketError),
    #[error(transparent)]
    Contention(Contended),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::usecases::retry::use_case_error!(LeaveError);

/// `user` leaves `id`'s queue, or gives back the slot they were admitted
/// to. Leaving twice is leaving once.
pub async fn leave(app: &App, id: &SaleId, user: &UserId) -> Result<Ticket, LeaveError> {
    retry(user.as_str(), |_| async {
        let sales = app.store.sales();
        let sale = sales.get(id).await?.ok_or(Step::Fail(LeaveError::NoTicket))?;
        let ticket = sales.ticket(id, user).await?.ok_or(Step::Fail(LeaveError::NoTicket))?;
        let Some((left, frees)) = ticket.leave().map_err(|e| Step::Fail(LeaveError::Refused(e)))? else {
            return Ok(ticket);
        };
        let mut tx = Tx::new();
        tx.push(sales.op_update_ticket(ticket.version, &left, &sale)?);
        if frees {
            tx.push(sales.op_free(id, user)?);
        }
        app.store.transact(tx).await?;
        tracing::info!(sale_id = %id, freed = frees, "left the queue");
        if frees {
            app.admitter.notify_one();
            crate::obs::stats::count_sale(app, id, "freed", 1).await;
        }
        Ok(left)
    })
    .await
}

/// What one admission step did.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    pub tickets: Vec<Ticket>,
    pub active: u64,
    pub rate: f64,
    /// The sale's admissions so far, after this step.
    pub total: u64,
}

/// One admission step of `id` (ADR 0027): the lowest waiting tickets up
/// to the free slots and the rate in force, in one transaction with the
/// sale's own counters; the rate follows `health` (the admitter's timer
/// knows it), or stays as it is (`None`: a step run because a slot was
/// freed). Two admitters racing conflict on the sale's version: one step
/// counts, the other retries.
#[tracing::instrument(skip_all, fields(sale_id = %id))]
pub async fn admit_step(app: &App, id: &SaleId, health: Option<Health>) -> Result<Option<Admitted>, SlotError> {
    retry(id.as_str(), |_| admit_attempt(app, id, health)).await
}

/// Why taking ([`admit_step`]) or freeing ([`release_for_order`]) slots
/// failed: neither has an expected failure of its own.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error(transparent)]
    Contention(Contended),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::usecases::retry::use_case_error!(SlotError);

async fn admit_attempt(app: &App, id: &SaleId, health: Option<Health>) -> Result<Option<Admitted>, Step<SlotError>> {
    let sales = app.store.sales();
    let Some(mut sale) = sales.get(id).await? else { return Ok(None) };
    let now = app.clock.now();
    let freed = sales.freed(id).await?;
    let before = sale.clone();
    // While units are reserved by admitted shoppers' orders the sale is
    // not over (an order that expires gives its units back); it admits no
    // more shoppers than there are units.
    let (units, entered, holding) = if sale.state(now) == SaleState::Open {
        let (counted, early) = sales.entries(&sale).await?;
        sale.early = early;
        // In this order — freed, then holding, then the units — so that an
        // order placed or ended between two reads only ever makes the step
        // admit fewer: a placement read in the units but not in `holding`
        // would count its unit twice the other way round, and admit one
        // shopper too many.
        let holding = sales.holding(id).await?;
        let left = units_left(app, &sale).await?;
        sale.sold_out = sells_out(left, sale.admitted.saturating_sub(freed));
        (left, counted.saturating_add(early), holding)
    } else {
        (0, 0, 0)
    };
    let step = plan_step(&sale, Slots { freed, holding }, units, now);
    let rate = health.map_or(sale.rate, |h| next_rate(sale.rate, sale.terms.max_admissions_per_sec, h));
    // Nobody can be waiting while every entry was admitted: the queue's
    // shards are read only when someone may be.
    let waiting =
        if step.admit > 0 && entered > sale.admitted { sales.waiting(&sale, step.admit).await? } else { Vec::new() };
    let mut admitted = Vec::with_capacity(waiting.len());
    let mut tx = Tx::new();
    for t in &waiting {
        let next = t.admit(app.ids.tx_id(), now, sale.terms.session_secs).map_err(anyhow::Error::from)?;
        tx.push(sales.op_update_ticket(t.version, &next, &sale)?);
        admitted.push(next);
    }
    let places: Vec<_> = admitted.iter().map(|t| t.place).collect();
    let next = sale.after_step(&places, step, rate);
    let changed = !admitted.is_empty()
        || (next.rate - before.rate).abs() > f64::EPSILON
        || (next.early, next.sold_out) != (before.early, before.sold_out);
    let active = next.admitted.saturating_sub(freed);
    if !changed {
        return Ok(Some(Admitted { tickets: Vec::new(), active, rate: before.rate, total: before.admitted }));
    }
    tx.push(sales.op_update(before.version, &next)?);
    // A ticket that left, or another admitter's step, makes this one
    // conflict: re-read and decide again.
    app.store.transact(tx).await?;
    if !admitted.is_empty() {
        tracing::info!(admitted = admitted.len(), active, rate = next.rate, "admitted");
        crate::obs::stats::count_sale(app, id, "admitted", i64::try_from(admitted.len()).unwrap_or(0)).await;
    }
    Ok(Some(Admitted { tickets: admitted, active, rate: next.rate, total: next.admitted }))
}

/// The gated products' units available now.
async fn units_left(app: &App, sale: &Sale) -> Result<u64, StoreError> {
    let products = app.store.catalog().products(&sale.terms.products).await?;
    Ok(products.iter().fold(0u64, |sum, p| sum.saturating_add(p.available)))
}

/// A sale as the public sees it (`GET /sales/{id}`).
#[derive(Debug, Clone, PartialEq)]
pub struct SaleStatus {
    pub sale: Sale,
    pub state: SaleState,
    /// Entries so far (an upper bound: see `Sales::entered`).
    pub entered: u64,
    /// Holding a slot now: admitted less freed.
    pub active: u64,
    /// Waiting now, about: entered less admitted (leavers included); none
    /// once the sale sold out or ended.
    pub waiting: u64,
    /// Units the sale's orders took (paid or being paid).
    pub sold: u64,
    pub units_left: u64,
    /// Seconds a shopper entering now would wait, about.
    pub wait_secs: u64,
}

/// `id`'s figures: the sale, its counters' shards and its products, in
/// four reads whatever the queue's length.
pub async fn status(app: &App, id: &SaleId) -> Result<Option<SaleStatus>, StoreError> {
    let sales = app.store.sales();
    let Some(sale) = sales.get(id).await? else { return Ok(None) };
    let now = app.clock.now();
    let (entered, freed, units_left) =
        (sales.entered(&sale).await?, sales.freed(id).await?, units_left(app, &sale).await?);
    let state = sale.state(now);
    // A sale that sold out or ended ended every waiting ticket with it.
    let waiting = match state {
        SaleState::Scheduled | SaleState::Open => entered.saturating_sub(sale.admitted),
        SaleState::SoldOut | SaleState::Ended => 0,
    };
    Ok(Some(SaleStatus {
        state,
        entered,
        active: sale.admitted.saturating_sub(freed),
        waiting,
        sold: sale.units_at_start.saturating_sub(units_left),
        units_left,
        wait_secs: estimated_wait(&sale, waiting, now),
        sale,
    }))
}

/// Seconds until the `ahead` shoppers before one are admitted in `sale`,
/// from `now`, about: the time to the start, then at the rate in force.
pub fn estimated_wait(sale: &Sale, ahead: u64, now: shop_domain::Timestamp) -> u64 {
    let until_start = u64::try_from(sale.terms.starts_at.seconds().saturating_sub(now.seconds())).unwrap_or(0);
    until_start.saturating_add(wait_for(ahead, sale.rate))
}

/// Seconds until `ahead` shoppers are admitted at `rate` a second, about.
fn wait_for(ahead: u64, rate: f64) -> u64 {
    let secs = ahead as f64 / rate.max(shop_domain::sale::admit::MIN_RATE);
    if secs.is_finite() { secs.ceil() as u64 } else { u64::MAX }
}

/// What releasing a slot for an order came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The slot was freed now.
    Freed,
    /// It was freed before for this order (a duplicate, replay or later event).
    Already,
    /// The ticket holds no such order (not a sale's order, or another one).
    NotHeld,
}

/// `order` of `user` in sale `id` ended (paid, expired, cancelled, or its
/// virtual account issued): its slot is freed, once.
pub async fn release_for_order(app: &App, id: &SaleId, user: &UserId, order: &OrderId) -> Result<Released, SlotError> {
    retry(order.as_str(), |_| async {
        let sales = app.store.sales();
        let (Some(sale), Some(ticket)) = (sales.get(id).await?, sales.ticket(id, user).await?) else {
            return Ok(Released::NotHeld);
        };
        let next = match ticket.release(order) {
            Ok(Some(next)) => next,
            Ok(None) => return Ok(Released::Already),
            Err(_) => return Ok(Released::NotHeld),
        };
        let mut tx = Tx::new();
        tx.push(sales.op_update_ticket(ticket.version, &next, &sale)?);
        tx.push(sales.op_free(id, user)?);
        tx.push(sales.op_hold(id, user, -1)?);
        app.store.transact(tx).await?;
        tracing::info!(sale_id = %id, order_id = %order, "slot freed by its order");
        app.admitter.notify_one();
        crate::obs::stats::count_sale(app, id, "freed", 1).await;
        Ok(Released::Freed)
    })
    .await
}

/// The session timer: admitted tickets whose session ended without an
/// order end, each freeing its slot. Returns how many ended. A ticket whose
/// order was placed meanwhile is left to its order (its condition fails).
pub async fn end_sessions(app: &App, limit: i32) -> Result<usize, StoreError> {
    let sales = app.store.sales();
    let now = app.clock.now();
    let mut ended = 0;
    for t in sales.sessions_ended(now, limit).await? {
        let Some(next) = t.end_session(now) else { continue };
        let Some(sale) = sales.get(&t.sale).await? else { continue };
        let mut tx = Tx::new();
        tx.push(sales.op_update_ticket(t.version, &next, &sale)?);
        tx.push(sales.op_free(&t.sale, &t.user)?);
        match app.store.transact(tx).await {
            Ok(()) => {
                ended += 1;
                crate::obs::stats::count_sale(app, &t.sale, "freed", 1).await;
                crate::obs::stats::count_sale(app, &t.sale, "expired", 1).await;
            }
            Err(StoreError::Conflict { item: TxItem::Ticket(_), .. }) => {}
            Err(e) => return Err(e),
        }
    }
    if ended > 0 {
        tracing::info!(ended, "admission sessions ended without an order");
    }
    Ok(ended)
}

/// What one pass of the admitter did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmitReport {
    /// Sales not yet ended.
    pub sales: usize,
    pub admitted: usize,
    /// Sessions that ended without an order (their slots freed).
    pub sessions_ended: usize,
    /// The sales stepped.
    #[serde(skip)]
    pub live: Vec<SaleId>,
    /// Their admissions so far, summed: a change between passes means a
    /// queue moved (here or by a release elsewhere).
    #[serde(skip)]
    pub admitted_so_far: u64,
}

/// Live sales at most one pass steps.
const LIVE_SALES: i32 = 100;
/// Ended sessions one pass frees at most (the rest on the next pass).
const SESSIONS_PER_PASS: i32 = 500;

/// One pass of the admitter: one step of every sale not yet ended, the
/// rate following `health`, then the sessions that ended free their slots
/// (read only while some sale has a slot taken: an idle pass reads no
/// session). A sale whose step fails is logged and left to the next pass.
pub async fn admit_pass(app: &App, health: Health) -> Result<AdmitReport, StoreError> {
    let live = app.store.sales().live(app.clock.now(), LIVE_SALES).await?;
    let mut report =
        AdmitReport { sales: live.len(), admitted: 0, sessions_ended: 0, live: Vec::new(), admitted_so_far: 0 };
    let mut taken = false;
    for id in &live {
        match admit_step(app, id, Some(health)).await {
            Ok(Some(a)) => {
                report.admitted += a.tickets.len();
                report.admitted_so_far = report.admitted_so_far.saturating_add(a.total);
                taken |= a.active > 0;
                crate::obs::stats::sample_sale(app, id, a.active, a.rate).await;
            }
            Ok(None) => {}
            Err(e) => {
                taken = true;
                tracing::warn!(sale_id = %id, error = %e, "admission step failed; the next pass retries");
            }
        }
    }
    if taken {
        report.sessions_ended = end_sessions(app, SESSIONS_PER_PASS).await?;
    }
    if report.admitted > 0 {
        app.count("Admitted", u64::try_from(report.admitted).unwrap_or(u64::MAX));
    }
    report.live = live;
    Ok(report)
}
