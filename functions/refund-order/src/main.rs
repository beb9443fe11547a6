//! `POST /orders/{orderId}/refunds` — part of a paid order back (chosen
//! units, or an amount), or the rest of it. The handler is
//! `shop_app::http::refunds::refund_order`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("refund-order");
    // Configuration errors fail the cold start, not a request.
    let app = shop_app::adapters::aws::app_from_env().await.expect("configuration");
    let app = shop_app::adapters::aws::with_refund_accounts(app, "refund-order").await.expect("configuration");
    shop_app::obs::lambda::run_http(service_fn(|req: Request| shop_app::http::refunds::refund_order(&app, req))).await
}
