//! `DELETE /sales/{saleId}/queue/me` — leave the queue or give the slot back.
//! The handler is `shop_app::http::sales::leave_queue`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("leave-queue");
    // Configuration errors fail the cold start, not a request.
    let app = shop_app::adapters::aws::app_from_env().await.expect("configuration");
    shop_app::obs::lambda::run_http(service_fn(|req: Request| shop_app::http::sales::leave_queue(&app, req))).await
}
