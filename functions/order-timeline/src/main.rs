//! `GET /orders/{orderId}/timeline` — the order's saga: its events and every
//! consumer's outcome. The handler is `shop_app::http::orders::order_timeline`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("order-timeline");
    // Configuration errors fail the cold start, not a request.
    let app = shop_app::adapters::aws::app_from_env().await.expect("configuration");
    shop_app::obs::lambda::run_http(service_fn(|req: Request| shop_app::http::orders::order_timeline(&app, req))).await
}
