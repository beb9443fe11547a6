//! The one way reserved stock comes back: the units an order (or a refund
//! of part of it) gives back, released in the transaction that ends it
//! (expiry, cancel, refund). Stock is reserved by placing the order
//! (`place_order`).

use crate::App;
use shop_domain::Order;
use shop_domain::order::RefundLine;
use shop_store::tx::TxOp;

/// Stock returns for every line of `order` (expiry, cancel).
pub fn release_stock(app: &App, order: &Order) -> anyhow::Result<Vec<TxOp>> {
    release_units(app, &order.lines.iter().map(RefundLine::whole).collect::<Vec<_>>())
}

/// Stock returns for `lines` (a refund, whole or in part).
pub fn release_units(app: &App, lines: &[RefundLine]) -> anyhow::Result<Vec<TxOp>> {
    lines.iter().map(|l| app.store.catalog().op_release_stock(&l.product_id, l.quantity)).collect()
}
