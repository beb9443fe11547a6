//! `POST /orders/{orderId}/cancel` — cancel before payment (stock and points
//! back at once) or request a refund after (a paid virtual account's to the
//! refund account given, sealed under KMS). The handler is
//! `shop_app::http::orders::cancel_order`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("cancel-order");
    // Configuration errors fail the cold start, not a request.
    let app = shop_app::adapters::aws::app_from_env().await.expect("configuration");
    let app = shop_app::adapters::aws::with_refund_accounts(app, "cancel-order").await.expect("configuration");
    shop_app::obs::lambda::run_http(service_fn(|req: Request| shop_app::http::orders::cancel_order(&app, req))).await
}
