//! `GET /me/points` — the caller's points balance and ledger, newest first,
//! a page at a time. The handler is `shop_app::http::points::my_points`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("my-points");
    // Configuration errors fail the cold start, not a request.
    let app = shop_app::adapters::aws::app_from_env().await.expect("configuration");
    shop_app::obs::lambda::run_http(service_fn(|req: Request| shop_app::http::points::my_points(&app, req))).await
}
