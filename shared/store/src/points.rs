//! Points: a user's balance and ledger under `USER#<id>`. A balance moves
//! only from an exact expected value, with its ledger row, in one
//! transaction; the ledger is read page by page or by time range, never
//! whole on a request path.

use crate::attr::{Item, get_n, get_s, item, key, money, n, opt_s, s, with_key};
use crate::error::Result;
use crate::io::Pages;
use crate::tx::{TxItem, TxOp, put};
use crate::{Store, keys};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use shop_domain::points::LedgerEntry;
use shop_domain::{Money, OrderId, Timestamp, UserId};

/// Points balances and ledgers (see [`Store::points`]).
#[derive(Clone, Copy)]
pub struct Points<'a>(pub(crate) &'a Store);

/// Where a page of a user's ledger ends: the sort key of its last row,
/// without the `LEDGER#` prefix (`<ms, 13 digits>#<txId>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerCursor(pub String);

const LEDGER_PREFIX: &str = "LEDGER#";

pub fn balance_item(user: &UserId, balance: Money) -> Item {
    with_key(
        item([("type", s("POINTS")), ("userId", s(user.as_str())), ("balance", n(balance.won()))]),
        keys::points(user),
    )
}

pub fn balance_from(it: &Item) -> anyhow::Result<Money> {
    money(it, "balance")
}

pub fn ledger_item(e: &LedgerEntry) -> Item {
    let reason = match serde_json::to_value(e.reason) {
        Ok(serde_json::Value::String(r)) => r,
        Ok(_) | Err(_) => "UNKNOWN".to_owned(),
    };
    let mut it = with_key(
        item([
            ("type", s("LEDGER")),
            ("userId", s(e.user_id.as_str())),
            ("txId", s(e.tx_id.clone())),
            ("delta", n(e.delta)),
            ("reason", s(reason)),
            ("balanceAfter", n(e.balance_after.won())),
            ("at", n(e.at.millis())),
        ]),
        keys::ledger(&e.user_id, e.at.millis(), &e.tx_id),
    );
    if let Some(o) = &e.order_id {
        it.insert("orderId".into(), s(o.as_str()));
    }
    it
}

pub fn ledger_from(it: &Item) -> anyhow::Result<LedgerEntry> {
    Ok(LedgerEntry {
        user_id: UserId::parse(get_s(it, "userId")?)?,
        tx_id: get_s(it, "txId")?.to_owned(),
        delta: get_n(it, "delta")?,
        reason: serde_json::from_value(serde_json::Value::String(get_s(it, "reason")?.to_owned()))?,
        order_id: opt_s(it, "orderId").map(OrderId::parse).transpose()?,
        balance_after: money(it, "balanceAfter")?,
        at: Timestamp::from_millis(get_n(it, "at")?),
    })
}

impl Points<'_> {
    /// A user without a points item has a balance of zero.
    pub async fn balance(&self, user: &UserId) -> Result<Money> {
        match self.0.get(keys::points(user)).await? {
            Some(it) => Ok(balance_from(&it)?),
            None => Ok(Money::ZERO),
        }
    }

    /// Change a balance from exactly `expected` to `entry.balance_after`, with
    /// its ledger row. The exact-match condition keeps `balanceAfter` true on
    /// every ledger row; a concurrent change makes the caller re-read and retry.
    pub fn ops_move(&self, expected: Money, entry: &LedgerEntry) -> anyhow::Result<[TxOp; 2]> {
        let (pk, sk) = keys::points(&entry.user_id);
        let table = self.0.table();
        let balance = if expected.is_zero() {
            // A user with no points item has a zero balance.
            Put::builder()
                .table_name(table)
                .set_item(Some(balance_item(&entry.user_id, entry.balance_after)))
                .condition_expression("attribute_not_exists(pk) OR balance = :expected")
                .expression_attribute_values(":expected", n(0))
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())?
        } else {
            Update::builder()
                .table_name(table)
                .set_key(Some(key(pk, sk)))
                .update_expression("SET balance = :after")
                .condition_expression("balance = :expected")
                .expression_attribute_values(":after", n(entry.balance_after.won()))
                .expression_attribute_values(":expected", n(expected.won()))
                .build()
                .map(|u| TransactWriteItem::builder().update(u).build())?
        };
        Ok([
            TxOp { item: balance, label: TxItem::Points(entry.user_id.to_string()) },
            put(table, ledger_item(entry), "attribute_not_exists(pk)", TxItem::Ledger(entry.tx_id.clone()))?,
        ])
    }

    /// One page of a user's ledger, newest first: at most `limit` rows
    /// older than the row `after` (a cursor from an earlier page), and the
    /// cursor of the next page when there is one. Consistent with the
    /// balance read after it.
    pub async fn ledger_page(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<&LedgerCursor>,
    ) -> Result<(Vec<LedgerEntry>, Option<LedgerCursor>)> {
        let (pk, _) = keys::points(user);
        let after = after.map(|c| (pk.clone(), format!("{LEDGER_PREFIX}{}", c.0)));
        let (rows, more) = self.0.prefix_page(&pk, LEDGER_PREFIX, limit, false, after).await?;
        let entries = rows.iter().map(ledger_from).collect::<anyhow::Result<Vec<_>>>()?;
        let next = match (more, entries.last()) {
            (true, Some(last)) => Some(LedgerCursor(format!("{:013}#{}", last.at.millis(), last.tx_id))),
            _ => None,
        };
        Ok((entries, next))
    }

    /// A user's whole ledger, oldest first (checks and dumps; not a request path).
    pub async fn ledger(&self, user: &UserId) -> Result<Vec<LedgerEntry>> {
        let (pk, _) = keys::points(user);
        let items = self.0.query_prefix(&pk, LEDGER_PREFIX).await?;
        Ok(items.iter().map(ledger_from).collect::<anyhow::Result<_>>()?)
    }

    /// A user's ledger rows written in `[from, to]` (by the row's time),
    /// oldest first: one order's rows are read without the rest of the
    /// user's history.
    pub async fn ledger_between(&self, user: &UserId, from: Timestamp, to: Timestamp) -> Result<Vec<LedgerEntry>> {
        let (pk, _) = keys::points(user);
        let (low, high) = (
            format!("{LEDGER_PREFIX}{:013}", from.millis().max(0)),
            format!("{LEDGER_PREFIX}{:013}~", to.millis().max(0)),
        );
        let items = Pages::of(
            self.0
                .client()
                .query()
                .table_name(self.0.table())
                .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":low", s(low))
                .expression_attribute_values(":high", s(high))
                .consistent_read(true),
        )
        .all()
        .await?;
        Ok(items.iter().map(ledger_from).collect::<anyhow::Result<_>>()?)
    }
}
