//! Refund accounts of paid virtual accounts' refunds, sealed
//! (docs/adr/0030-partial-refunds.md, "Refund accounts"): one item per
//! refund that sends cash to a bank account, beside its order, written in
//! the transaction that asks for the refund and deleted in the one that
//! records the PG's answer. The item holds the sealed bytes, the data key's
//! reference and the bank code — never the number or the holder in clear.

use crate::attr::{Item, get_n, get_s, item, n, s, with_key};
use crate::error::{Result, StoreError};
use crate::tx::{TxItem, TxOp, put};
use crate::{Store, keys};
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use shop_domain::{OrderId, Timestamp};

/// An account sealed with AES-256-GCM: the nonce and the ciphertext with
/// its tag, and which data key opens it (a KMS-encrypted data key in AWS,
/// the data dir's key locally).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub data_key: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed").field("bytes", &self.ciphertext.len()).finish_non_exhaustive()
    }
}

/// A refund's sealed account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccount {
    /// The bank's code, kept in clear for the console ("to a 신한은행 account").
    pub bank: String,
    pub sealed: Sealed,
    pub created_at: Timestamp,
}

/// The refund accounts (see [`Store::refund_accounts`]).
#[derive(Clone, Copy)]
pub struct RefundAccounts<'a>(pub(crate) &'a Store);

fn from_item(it: &Item) -> anyhow::Result<StoredAccount> {
    let bytes = |name| -> anyhow::Result<Vec<u8>> { Ok(B64.decode(get_s(it, name)?)?) };
    Ok(StoredAccount {
        bank: get_s(it, "bank")?.to_owned(),
        sealed: Sealed {
            data_key: get_s(it, "dataKey")?.to_owned(),
            nonce: bytes("nonce")?,
            ciphertext: bytes("sealed")?,
        },
        created_at: Timestamp::from_millis(get_n(it, "createdAt")?),
    })
}

impl RefundAccounts<'_> {
    /// Puts the account of the order's refund `number`; a refund number is
    /// used once, so an account already there is a conflict.
    pub fn op_put(&self, order: &OrderId, number: u32, account: &StoredAccount) -> Result<TxOp> {
        let it = with_key(
            item([
                ("type", s("RefundAccount")),
                ("bank", s(account.bank.as_str())),
                ("dataKey", s(account.sealed.data_key.as_str())),
                ("nonce", s(B64.encode(&account.sealed.nonce))),
                ("sealed", s(B64.encode(&account.sealed.ciphertext))),
                ("createdAt", n(account.created_at.millis())),
            ]),
            keys::refund_account(order, number),
        );
        Ok(put(self.0.table(), it, "attribute_not_exists(pk)", TxItem::RefundAccount(order.to_string()))?)
    }

    /// The account of the order's refund `number`, while it is kept.
    pub async fn get(&self, order: &OrderId, number: u32) -> Result<Option<StoredAccount>> {
        self.0.get(keys::refund_account(order, number)).await?.map(|it| from_item(&it)).transpose().map_err(Into::into)
    }

    /// Deletes the account of the order's refund `number` (deleting one
    /// already gone changes nothing).
    pub fn op_delete(&self, order: &OrderId, number: u32) -> Result<TxOp> {
        let (pk, sk) = keys::refund_account(order, number);
        let delete = Delete::builder()
            .table_name(self.0.table())
            .set_key(Some(crate::attr::key(pk, sk)))
            .build()
            .map_err(StoreError::unexpected("Delete"))?;
        Ok(TxOp {
            item: TransactWriteItem::builder().delete(delete).build(),
            label: TxItem::RefundAccount(order.to_string()),
        })
    }
}
