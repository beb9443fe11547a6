//! `GET /sales/{saleId}` — a flash sale's figures (public).
//! The handler is `shop_app::http::sales::get_sale`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("get-sale");
    // Configuration errors fail the cold start, not a request.
    let app = shop_app::adapters::aws::app_from_env().await.expect("configuration");
    shop_app::obs::lambda::run_http(service_fn(|req: Request| shop_app::http::sales::get_sale(&app, req))).await
}
