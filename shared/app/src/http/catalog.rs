//! The public catalog: `GET /products` (a page at a time, in product id
//! order) and `GET /products/{productId}` — name, price and the stock
//! available now. No token; cacheable (`ETag`, `304` on `If-None-Match`,
//! a few seconds of `Cache-Control`: stock moves with every order).

use crate::App;
use crate::http::{self, Problem};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shop_domain::{Product, ProductId};

/// Shared caches may keep a catalog answer this long; the stock it shows
/// can be that old. An order is always checked against the stock of the moment.
pub const CACHE_CONTROL: &str = "public, max-age=5";

/// A product as the API shows it. Money is integer won.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    pub product_id: String,
    pub name: String,
    pub price: u64,
    /// Units not held by any live order.
    pub available: u64,
}

impl From<&Product> for ProductView {
    fn from(p: &Product) -> Self {
        ProductView { product_id: p.id.to_string(), name: p.name.clone(), price: p.price.won(), available: p.available }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProductPage {
    products: Vec<ProductView>,
    next_cursor: Option<String>,
}

/// `GET /products?limit=&cursor=`.
pub async fn list_products(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("list_products", req, |req, ctx| async move {
        let page = http::page_params(&req)?;
        let after = match page.cursor {
            Some(c) => Some(ProductId::parse(c).map_err(|_| Problem::bad_request("cursor is not a catalog position"))?),
            None => None,
        };
        let (products, next) = app.store.catalog().page(page.limit, after.as_ref()).await.map_err(http::internal)?;
        let body = ProductPage {
            products: products.iter().map(ProductView::from).collect(),
            next_cursor: next.map(|id| http::encode_cursor(id.as_str())),
        };
        Ok(http::cacheable(&req, &body, CACHE_CONTROL, &ctx))
    })
    .await
}

/// `GET /products/{productId}`.
pub async fn get_product(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("get_product", req, |req, ctx| async move {
        let not_found = || Problem::not_found("product-not-found", "Product not found", "no such product");
        let id = http::path_param(&req, "productId").and_then(|s| ProductId::parse(s).ok()).ok_or_else(not_found)?;
        let product = app.store.catalog().product(&id).await.map_err(http::internal)?.ok_or_else(not_found)?;
        Ok(http::cacheable(&req, &ProductView::from(&product), CACHE_CONTROL, &ctx))
    })
    .await
}
