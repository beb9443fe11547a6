//! `POST /orders` — place an order (stock, coupon hold, points, outbox event
//! in one DynamoDB transaction). The handler is `shop_app::http::orders::create_order`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("create-order");
    // Configuration errors fail the cold start, not a request.
    let app = shop_app::adapters::aws::admission_app_from_env("create-order").await.expect("configuration");
    shop_app::obs::lambda::run_http(service_fn(|req: Request| shop_app::http::orders::create_order(&app, req))).await
}
