//! The catalog: each product with its stock on one item, and the `CATALOG`
//! listing partition (one entry per product, ids only) that `GET /products`
//! pages through. Stock moves only by conditional updates of the product.

use crate::attr::{Item, get_n, get_s, item, key, money, n, s, with_key};
use crate::error::Result;
use crate::tx::{TxItem, TxOp, put};
use crate::{Store, keys};
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use shop_domain::sale::Gate;
use shop_domain::{Product, ProductId, Quantity, SaleId, Timestamp};
use std::collections::HashMap;

/// Products and the catalog listing (see [`Store::catalog`]).
#[derive(Clone, Copy)]
pub struct Catalog<'a>(pub(crate) &'a Store);

pub fn product_item(p: &Product) -> Item {
    with_key(
        item([
            ("type", s("PRODUCT")),
            ("productId", s(p.id.as_str())),
            ("name", s(p.name.clone())),
            ("price", n(p.price.won())),
            ("available", n(p.available)),
        ]),
        keys::product(&p.id),
    )
}

pub fn product_from(it: &Item) -> anyhow::Result<Product> {
    Ok(Product {
        id: ProductId::parse(get_s(it, "productId")?)?,
        name: get_s(it, "name")?.to_owned(),
        price: money(it, "price")?,
        available: get_n(it, "available")?,
    })
}

/// The sale gating the product stored as `it`, if any (attributes
/// `gateSale` and `gateUntil`, epoch ms; see [`Catalog::op_gate`]).
pub fn gate_from(it: &Item) -> anyhow::Result<Option<Gate>> {
    if !it.contains_key("gateSale") {
        return Ok(None);
    }
    Ok(Some(Gate {
        sale: SaleId::parse(get_s(it, "gateSale")?)?,
        until: Timestamp::from_millis(get_n(it, "gateUntil")?),
    }))
}

/// A product's catalog listing entry: only the id; name, price and stock
/// are read from the product's own item.
fn entry_item(id: &ProductId) -> Item {
    with_key(item([("type", s("CATALOG")), ("productId", s(id.as_str()))]), keys::catalog_entry(id))
}

/// A stock update of `product` by `expression`, under `condition`.
fn stock_update(
    store: &Store,
    product: &ProductId,
    expression: &str,
    condition: &str,
    values: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
) -> anyhow::Result<TxOp> {
    let (pk, sk) = keys::product(product);
    let mut update = Update::builder()
        .table_name(store.table())
        .set_key(Some(key(pk, sk)))
        .update_expression(expression)
        .condition_expression(condition);
    for (name, v) in values {
        update = update.expression_attribute_values(*name, v.clone());
    }
    Ok(TxOp {
        item: TransactWriteItem::builder().update(update.build()?).build(),
        label: TxItem::Stock(product.to_string()),
    })
}

impl Catalog<'_> {
    pub async fn product(&self, id: &ProductId) -> Result<Option<Product>> {
        self.0.get(keys::product(id)).await?.map(|it| product_from(&it)).transpose().map_err(Into::into)
    }

    /// The products of `ids` that exist, in no particular order (one
    /// BatchGetItem per 100, consistent).
    pub async fn products(&self, ids: &[ProductId]) -> Result<Vec<Product>> {
        let items = self.0.batch_get(ids.iter().map(keys::product).collect()).await?;
        items.iter().map(|it| product_from(it).map_err(Into::into)).collect()
    }

    /// The product and the sale gating it, if any.
    pub async fn product_with_gate(&self, id: &ProductId) -> Result<Option<(Product, Option<Gate>)>> {
        let Some(it) = self.0.get(keys::product(id)).await? else { return Ok(None) };
        Ok(Some((product_from(&it)?, gate_from(&it)?)))
    }

    /// Reserve `qty` units: only if that many are available and the price is
    /// still the one the order was priced at.
    pub fn op_reserve_stock(&self, product: &Product, qty: Quantity) -> anyhow::Result<TxOp> {
        let values = [(":q", n(qty.get())), (":price", n(product.price.won()))];
        stock_update(
            self.0,
            &product.id,
            "SET available = available - :q",
            "available >= :q AND price = :price",
            &values,
        )
    }

    /// Return `qty` reserved units.
    pub fn op_release_stock(&self, product: &ProductId, qty: Quantity) -> anyhow::Result<TxOp> {
        stock_update(self.0, product, "SET available = available + :q", "attribute_exists(pk)", &[(":q", n(qty.get()))])
    }

    /// `gate` on `product`, set when its sale is created: only while no
    /// other sale's gate applies at `now` (one sale per product at a time);
    /// setting the same sale's again changes nothing. Re-seeding a product
    /// drops its gate (creating the sale again puts it back).
    pub fn op_gate(&self, product: &ProductId, gate: &Gate, now: Timestamp) -> anyhow::Result<TxOp> {
        let (pk, sk) = keys::product(product);
        let update = Update::builder()
            .table_name(self.0.table())
            .set_key(Some(key(pk, sk)))
            .update_expression("SET gateSale = :sale, gateUntil = :until")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(gateSale) OR gateSale = :sale OR gateUntil <= :now)",
            )
            .expression_attribute_values(":sale", s(gate.sale.as_str()))
            .expression_attribute_values(":until", n(gate.until.millis()))
            .expression_attribute_values(":now", n(now.millis()))
            .build()?;
        Ok(TxOp { item: TransactWriteItem::builder().update(update).build(), label: TxItem::Gate(product.to_string()) })
    }

    /// Seeding: a product with its stock (overwrites), and its catalog
    /// listing entry.
    pub fn ops_seed_product(&self, product: &Product) -> anyhow::Result<[TxOp; 2]> {
        let any = "attribute_exists(pk) OR attribute_not_exists(pk)";
        Ok([
            put(self.0.table(), product_item(product), any, TxItem::Seed(product.id.to_string()))?,
            put(self.0.table(), entry_item(&product.id), any, TxItem::Seed(format!("catalog entry {}", product.id)))?,
        ])
    }

    /// One page of the catalog in product id order: at most `limit`
    /// products after `after`, and the position of the next page when
    /// there is one. Name, price and stock come from each product's item
    /// (one BatchGetItem, consistent), so the stock shown is the stock now.
    pub async fn page(&self, limit: usize, after: Option<&ProductId>) -> Result<(Vec<Product>, Option<ProductId>)> {
        let after = after.map(keys::catalog_entry);
        let (entries, more) = self.0.prefix_page(keys::CATALOG_PK, keys::CATALOG_PREFIX, limit, true, after).await?;
        let ids = entries
            .iter()
            .map(|it| Ok(ProductId::parse(get_s(it, "productId")?)?))
            .collect::<anyhow::Result<Vec<ProductId>>>()?;
        let mut found: HashMap<ProductId, Product> = HashMap::new();
        for it in self.0.batch_get(ids.iter().map(keys::product).collect()).await? {
            let p = product_from(&it)?;
            found.insert(p.id.clone(), p);
        }
        let next = if more { ids.last().cloned() } else { None };
        // An entry whose product is gone is skipped, never shown half.
        Ok((ids.iter().filter_map(|id| found.remove(id)).collect(), next))
    }
}
