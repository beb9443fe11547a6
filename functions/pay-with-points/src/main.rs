//! `POST /payments/points` — pay an order's whole amount due from points.
//! The handler is `shop_app::http::payments::pay_with_points`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("pay-with-points");
    // Configuration errors fail the cold start, not a request.
    let app = shop_app::adapters::aws::app_from_env().await.expect("configuration");
    shop_app::obs::lambda::run_http(service_fn(|req: Request| shop_app::http::payments::pay_with_points(&app, req)))
        .await
}
