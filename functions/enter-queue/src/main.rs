//! `POST /sales/{saleId}/queue` — enter a flash sale's waiting room.
//! The handler is `shop_app::http::sales::enter_queue`.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("enter-queue");
    // Configuration errors fail the cold start, not a request.
    let app = shop_app::adapters::aws::app_from_env().await.expect("configuration");
    shop_app::obs::lambda::run_http(service_fn(|req: Request| shop_app::http::sales::enter_queue(&app, req))).await
}
