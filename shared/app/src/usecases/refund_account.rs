//! A refund's bank account (a paid virtual account's money goes back by
//! transfer; docs/adr/0030-partial-refunds.md, "Refund accounts"): sealed
//! with the app's [`Sealer`](crate::ports::Sealer) into the item
//! `REFUNDACCOUNT#<n>` beside the order, in the transaction that asks for
//! the refund; opened by compensation for the PG's cancel; deleted in the
//! transaction that records the PG's answer. The sealed box is bound to
//! that item (its key is the associated data), and only the refund number
//! travels in events, queues, DLQs and the archive.

use crate::App;
use shop_domain::{OrderId, RefundAccount};
use shop_store::TxOp;
use shop_store::refund_accounts::StoredAccount;

/// What the box is bound to: the item it lives in.
fn context(order: &OrderId, number: u32) -> Vec<u8> {
    let (pk, sk) = shop_store::keys::refund_account(order, number);
    format!("{pk}/{sk}").into_bytes()
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Plain {
    bank: String,
    account_number: String,
    holder_name: String,
}

/// The put of `account`, sealed, for the order's refund `number`.
pub async fn op_keep(app: &App, order: &OrderId, number: u32, account: &RefundAccount) -> anyhow::Result<TxOp> {
    let (bank, number_digits, holder) = account.fields();
    let plain = serde_json::to_vec(&Plain {
        bank: bank.to_owned(),
        account_number: number_digits.to_owned(),
        holder_name: holder.to_owned(),
    })?;
    let sealed = app.sealer.seal(&plain, &context(order, number)).await?;
    let stored = StoredAccount { bank: bank.to_owned(), sealed, created_at: app.clock.now() };
    Ok(app.store.refund_accounts().op_put(order, number, &stored)?)
}

/// The account of the order's refund `number`: `Ok(None)` when none is
/// kept (the PG answered, or it never had one).
pub async fn open(app: &App, order: &OrderId, number: u32) -> anyhow::Result<Option<RefundAccount>> {
    let Some(stored) = app.store.refund_accounts().get(order, number).await? else {
        return Ok(None);
    };
    let plain = app.sealer.open(&stored.sealed, &context(order, number)).await?;
    let p: Plain = serde_json::from_slice(&plain).map_err(|_| anyhow::anyhow!("the opened box is not an account"))?;
    RefundAccount::parse(&p.bank, &p.account_number, &p.holder_name)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("the kept account no longer parses: {e}"))
}
