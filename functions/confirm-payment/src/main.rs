//! `POST /payments/confirm` — confirm a card or virtual-account payment with
//! the PG. The handler is `shop_app::http::payments::confirm_payment`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("confirm-payment");
    // Configuration errors fail the cold start, not a request.
    let app = shop_app::adapters::aws::pg_app_from_env("confirm-payment").await.expect("configuration");
    shop_app::obs::lambda::run_http(service_fn(|req: Request| shop_app::http::payments::confirm_payment(&app, req)))
        .await
}
