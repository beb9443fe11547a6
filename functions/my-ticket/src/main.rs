//! `GET /sales/{saleId}/queue/me` — one's ticket: position, or the admission token.
//! The handler is `shop_app::http::sales::my_ticket`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("my-ticket");
    // Configuration errors fail the cold start, not a request.
    let app = shop_app::adapters::aws::admission_app_from_env("my-ticket").await.expect("configuration");
    shop_app::obs::lambda::run_http(service_fn(|req: Request| shop_app::http::sales::my_ticket(&app, req))).await
}
