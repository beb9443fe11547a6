//! # shop-store
//!
//! The one persistence adapter: `aws-sdk-dynamodb` on a single table. It runs
//! unchanged on two engines — real DynamoDB (Lambda) and the embedded
//! dynoxide engine (local stack, tests; see `shop-embedded`) — because the
//! engine is only the SDK client's HTTP connector and endpoint.
//!
//! Every write that must be atomic is one `TransactWriteItems` built from
//! labelled actions ([`tx::TxOp`]). A cancelled transaction comes back
//! honestly: [`StoreError::Conflict`] (naming the item) only for a failed
//! condition or a concurrent transaction, [`StoreError::Throttled`] for
//! throttling, anything else [`StoreError::Unexpected`]. Every state
//! transition is conditional (order `version`, coupon `status`, points
//! `balance`, stock `available`).
//!
//! # Layout
//!
//! [`Store`] is one SDK client and the table's name; it hands out one small
//! view per aggregate, each in its own room with its item codec, its
//! transaction actions (`op_…`, composed by the use cases into a [`Tx`])
//! and its reads:
//!
//! | view | room | what |
//! | --- | --- | --- |
//! | [`Store::orders`] | [`orders`] | orders, a user's orders page by page, those due to expire, the placement snapshot |
//! | [`Store::payments`] | [`payments`] | payments, those in doubt, deposits due for a check |
//! | [`Store::points`] | [`points`] | balances and ledgers |
//! | [`Store::coupons`] | [`coupons`] | coupons and their transitions |
//! | [`Store::campaigns`] | [`campaigns`] | first-come campaigns and claims |
//! | [`Store::sales`] | [`sales`] | flash sales, their counters and tickets (the waiting room) |
//! | [`Store::audit`] | [`audit`] | the operators' actions, newest first (append-only) |
//! | [`Store::views`] | [`views`] | the console's saved views of the order finder |
//! | [`Store::connections`] | [`connections`] | the waiting room's live WebSocket connections |
//! | [`Store::catalog`] | [`catalog`] | products with their stock, the listing |
//! | [`Store::outbox`] | [`outbox`] | events: written, pending, published, the event log; the item's one wire format is [`outbox::codec`] |
//! | [`Store::saga`] | [`saga`] | what each consumer did with each event |
//! | [`Store::stats`] | [`stats`] | the saga statistics of the console's overview |
//! | [`Store::idempotency`] | [`idempotency`] | `Idempotency-Key` and consumer dedupe records |
//! | [`Store::refund_accounts`] | [`refund_accounts`] | refunds' sealed bank accounts, until the PG answers |
//!
//! Under them: [`keys`] (the one key table: every item and index key,
//! local-only ones included), [`io`] (the calls every room shares: get,
//! paged queries, batches, one transaction), [`tx`], [`error`],
//! [`schema`] (the table), [`attr`].

pub mod attr;
pub mod audit;
pub mod campaigns;
pub mod catalog;
pub mod connections;
pub mod coupons;
pub mod error;
pub mod idempotency;
pub mod io;
pub mod keys;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod points;
pub mod refund_accounts;
pub mod saga;
pub mod sales;
pub mod schema;
pub mod stats;
pub mod tx;
pub mod views;

pub use error::{Result, StoreError};
pub use io::{PAGE_ITEMS, Pages};
pub use orders::{OrderPosition, PlacementInputs};
pub use points::LedgerCursor;
use std::sync::Arc;
pub use tx::{ConflictReason, Tx, TxItem, TxOp};

/// The store: an SDK client and the table name. Cheap to clone; its views
/// are references.
#[derive(Debug, Clone)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    table: Arc<str>,
}

impl Store {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<Arc<str>>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn orders(&self) -> orders::Orders<'_> {
        orders::Orders(self)
    }

    pub fn payments(&self) -> payments::Payments<'_> {
        payments::Payments(self)
    }

    pub fn points(&self) -> points::Points<'_> {
        points::Points(self)
    }

    pub fn coupons(&self) -> coupons::Coupons<'_> {
        coupons::Coupons(self)
    }

    pub fn campaigns(&self) -> campaigns::Campaigns<'_> {
        campaigns::Campaigns(self)
    }

    pub fn sales(&self) -> sales::Sales<'_> {
        sales::Sales(self)
    }

    pub fn audit(&self) -> audit::Audit<'_> {
        audit::Audit(self)
    }

    pub fn refund_accounts(&self) -> refund_accounts::RefundAccounts<'_> {
        refund_accounts::RefundAccounts(self)
    }

    pub fn views(&self) -> views::Views<'_> {
        views::Views(self)
    }

    pub fn connections(&self) -> connections::Connections<'_> {
        connections::Connections(self)
    }

    pub fn catalog(&self) -> catalog::Catalog<'_> {
        catalog::Catalog(self)
    }

    pub fn outbox(&self) -> outbox::Outbox<'_> {
        outbox::Outbox(self)
    }

    pub fn saga(&self) -> saga::SagaLog<'_> {
        saga::SagaLog(self)
    }

    pub fn stats(&self) -> stats::Stats<'_> {
        stats::Stats(self)
    }

    pub fn idempotency(&self) -> idempotency::Idempotency<'_> {
        idempotency::Idempotency(self)
    }
}
