//! The waiting room's live connections (docs/adr/0027-the-waiting-room.md):
//! one WebSocket per shopper's tab, on API Gateway's WebSocket API in AWS
//! and on `shop up`'s `/live` locally. Two items per connection: its entry
//! in the sale's partition (`SALE#<sale>#WS#<n>`, `<user>#<id>`: the pusher
//! lists a sale's connections, a user's are one prefix), and a pointer by
//! its id (`WS#<id>`: `$disconnect` knows only the id). Both carry a TTL of
//! two hours, API Gateway's longest connection; `$disconnect` and a push
//! that finds the connection gone delete them sooner.

use crate::attr::{Item, get_s, item, key, n, s, with_key};
use crate::error::{Result, StoreError};
use crate::tx::{TxItem, TxOp, put};
use crate::{Store, Tx, keys};
use anyhow::Context;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use serde::{Deserialize, Serialize};
use shop_domain::sale::Place;
use shop_domain::{SaleId, Timestamp, UserId};

/// Partitions a sale's connections are spread over (by user): a broadcast
/// reads them all, and connects write at most 1,000 a second to each.
pub const SHARDS: u32 = 16;

/// How long a connection's items outlive a connection that never said
/// goodbye: API Gateway closes every WebSocket after two hours.
pub const TTL_SECS: i64 = 2 * 3600;

/// One live connection: whose, to which sale, and the ticket's place (a
/// place never changes, so a position is computed from the sale alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub id: String,
    pub sale: SaleId,
    pub user: UserId,
    pub place: Place,
    pub connected_at: Timestamp,
}

/// Live connections (see [`Store::connections`]).
#[derive(Clone, Copy)]
pub struct Connections<'a>(pub(crate) &'a Store);

fn sale_entry(c: &Connection) -> (String, String) {
    keys::connection(&c.sale, &c.user, &c.id, SHARDS)
}

fn pointer(id: &str) -> (String, String) {
    keys::connection_pointer(id)
}

fn to_item(c: &Connection, at: (String, String)) -> anyhow::Result<Item> {
    Ok(with_key(
        item([
            ("type", s("CONNECTION")),
            ("doc", s(serde_json::to_string(c)?)),
            (crate::schema::TTL_ATTRIBUTE, n(c.connected_at.seconds().saturating_add(TTL_SECS))),
        ]),
        at,
    ))
}

fn from_item(it: &Item) -> anyhow::Result<Connection> {
    serde_json::from_str(get_s(it, "doc")?).context("connection document")
}

impl Connections<'_> {
    /// Records `c` (both items, in one transaction).
    pub async fn put(&self, c: &Connection) -> Result<()> {
        let any = "attribute_exists(pk) OR attribute_not_exists(pk)";
        let label = || TxItem::Connection(c.id.clone());
        let mut tx = Tx::new();
        tx.push(put(self.0.table(), to_item(c, sale_entry(c))?, any, label())?);
        tx.push(put(self.0.table(), to_item(c, pointer(&c.id))?, any, label())?);
        self.0.transact(tx).await
    }

    /// The connection `id`, if it is still recorded.
    pub async fn get(&self, id: &str) -> Result<Option<Connection>> {
        self.0.get(pointer(id)).await?.map(|it| from_item(&it)).transpose().map_err(Into::into)
    }

    /// Forgets `c` (both items; forgetting twice is forgetting once).
    pub async fn delete(&self, c: &Connection) -> Result<()> {
        let mut tx = Tx::new();
        for (pk, sk) in [sale_entry(c), pointer(&c.id)] {
            let delete = Delete::builder()
                .table_name(self.0.table())
                .set_key(Some(key(pk, sk)))
                .build()
                .map_err(StoreError::unexpected("Delete"))?;
            tx.push(TxOp {
                item: TransactWriteItem::builder().delete(delete).build(),
                label: TxItem::Connection(c.id.clone()),
            });
        }
        self.0.transact(tx).await
    }

    /// Every connection to `sale` (one query per shard, every page): what
    /// a broadcast costs grows with the connections, never with history.
    pub async fn of_sale(&self, sale: &SaleId) -> Result<Vec<Connection>> {
        let mut found = Vec::new();
        for shard in 0..SHARDS {
            for it in self.0.query_prefix(&keys::connections_shard(sale, shard), "").await? {
                found.push(from_item(&it).map_err(StoreError::from)?);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_connections_to_a_sale_share_a_partition_and_a_prefix() {
        let c = |id: &str, user: &str| Connection {
            id: id.into(),
            sale: SaleId::parse("drop").unwrap(),
            user: UserId::parse(user).unwrap(),
            place: Place::counted(1, 0, 16).unwrap(),
            connected_at: Timestamp::from_millis(0),
        };
        let (a, b) = (sale_entry(&c("c1", "alice")), sale_entry(&c("c2", "alice")));
        assert_eq!(a.0, b.0);
        assert!(a.1.starts_with("alice#") && b.1.starts_with("alice#"));
        assert_eq!(pointer("c1"), ("WS#c1".to_owned(), "WS".to_owned()));
    }
}
