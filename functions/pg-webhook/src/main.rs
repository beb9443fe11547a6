//! `POST /webhooks/pg` — the PG's notifications, verified by fetching the
//! payment back from the PG. The handler is `shop_app::http::webhook::pg_webhook`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("pg-webhook");
    // Configuration errors fail the cold start, not a request.
    let app = shop_app::adapters::aws::pg_app_from_env("pg-webhook").await.expect("configuration");
    shop_app::obs::lambda::run_http(service_fn(|req: Request| shop_app::http::webhook::pg_webhook(&app, req))).await
}
