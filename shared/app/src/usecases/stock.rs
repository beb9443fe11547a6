//! The one way reserved stock comes back: every line of an order,
//! released in the transaction that ends it (expiry, cancel, refund).
//! Stock is reserved by placing the order (`place_order`).

use crate::App;
use shop_domain::Order;
use shop_store::tx::TxOp;

/// Stock returns for every line of `order` (expiry, cancel, refund).
pub fn release_stock(app: &App, order: &Order) -> anyhow::Result<Vec<TxOp>> {
    order.lines.iter().map(|l| app.store.catalog().op_release_stock(&l.product_id, l.quantity)).collect()
}
