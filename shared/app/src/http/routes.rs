//! The HTTP API's routes: method, path template, the function that serves
//! it, and whether the JWT authorizer guards it. The local stack routes with
//! this table and the SAM template must declare the same routes (a test
//! compares them), so the two never drift.

use crate::App;
use lambda_http::{Body, Request, Response};

/// The functions that call the PG. Only they are given the PG's URL and the
/// SSM name of its secret key (and the right to read it); each refuses to
/// start without a key. The template generator reads this list.
pub const PG_FUNCTIONS: &[&str] = &["confirm-payment", "pg-webhook", "compensation", "reconcile-payments"];

/// The functions that sign or check admission tokens (crate::admission).
/// Only they are given the SSM name of the admission secret (and the right
/// to read it); each refuses to start without one. The template generator
/// reads this list.
pub const ADMISSION_FUNCTIONS: &[&str] = &["create-order", "my-ticket", "live-authorizer"];

/// The functions that seal refund accounts (KMS `GenerateDataKey`) and the
/// one that opens them for the PG's cancel (KMS `Decrypt`): only they are
/// given the KMS key (`REFUND_ACCOUNT_KEY_ID`) and that one right on it,
/// link the KMS client (feature `kms`), and refuse to start without a key.
/// The template generator reads these lists.
pub const SEALING_FUNCTIONS: &[&str] = &["refund-order", "cancel-order"];
pub const OPENING_FUNCTIONS: &[&str] = &["compensation"];

/// The functions that push to the waiting room's WebSocket connections
/// (`PostToConnection`): they get its endpoint and the right to manage its
/// connections, and link the management API's client (feature `live`).
pub const LIVE_FUNCTIONS: &[&str] = &["admit-sales", "live"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// API Gateway syntax: `{name}` is a path parameter.
    pub path: &'static str,
    /// The Lambda function (directory under `functions/`).
    pub function: &'static str,
    pub authorized: bool,
}

pub const ROUTES: &[Route] = &[
    Route { method: "POST", path: "/orders", function: "create-order", authorized: true },
    Route { method: "GET", path: "/orders", function: "list-orders", authorized: true },
    Route { method: "GET", path: "/orders/{orderId}", function: "get-order", authorized: true },
    Route { method: "POST", path: "/orders/{orderId}/cancel", function: "cancel-order", authorized: true },
    Route { method: "POST", path: "/orders/{orderId}/refunds", function: "refund-order", authorized: true },
    Route { method: "GET", path: "/orders/{orderId}/timeline", function: "order-timeline", authorized: true },
    Route { method: "GET", path: "/coupons", function: "list-coupons", authorized: true },
    Route { method: "GET", path: "/me/points", function: "my-points", authorized: true },
    // The catalog and a campaign's terms are public (and cacheable).
    Route { method: "GET", path: "/products", function: "list-products", authorized: false },
    Route { method: "GET", path: "/products/{productId}", function: "get-product", authorized: false },
    Route { method: "GET", path: "/campaigns/{campaignId}", function: "get-campaign", authorized: false },
    Route { method: "POST", path: "/campaigns/{campaignId}/claim", function: "claim-coupon", authorized: true },
    // Operators only: the authorizer verifies the token, the handler its
    // `role` claim (403 for a shopper's), as the console does.
    Route { method: "POST", path: "/campaigns", function: "create-campaign", authorized: true },
    // Flash sales behind the waiting room: the figures are public; a
    // ticket is the caller's; creating a sale is an operator's.
    Route { method: "GET", path: "/sales/{saleId}", function: "get-sale", authorized: false },
    Route { method: "POST", path: "/sales/{saleId}/queue", function: "enter-queue", authorized: true },
    Route { method: "GET", path: "/sales/{saleId}/queue/me", function: "my-ticket", authorized: true },
    Route { method: "DELETE", path: "/sales/{saleId}/queue/me", function: "leave-queue", authorized: true },
    Route { method: "POST", path: "/sales", function: "create-sale", authorized: true },
    Route { method: "POST", path: "/payments/confirm", function: "confirm-payment", authorized: true },
    Route { method: "POST", path: "/payments/points", function: "pay-with-points", authorized: true },
    // The PG cannot present our users' tokens; the handler trusts nothing in the body.
    Route { method: "POST", path: "/webhooks/pg", function: "pg-webhook", authorized: false },
];

/// The route for `method` and `path`, with the path parameters it binds.
pub fn match_route(method: &str, path: &str) -> Option<(&'static Route, Vec<(String, String)>)> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    ROUTES.iter().filter(|r| r.method.eq_ignore_ascii_case(method)).find_map(|r| {
        let pattern: Vec<&str> = r.path.split('/').collect();
        if pattern.len() != segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (p, s) in pattern.iter().zip(&segments) {
            match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if !s.is_empty() => params.push((name.to_owned(), (*s).to_owned())),
                Some(_) => return None,
                None if p == s => {}
                None => return None,
            }
        }
        Some((r, params))
    })
}

/// Whether any route has this path (for 405 vs 404).
pub fn path_exists(path: &str) -> bool {
    ROUTES.iter().any(|r| match_route(r.method, path).is_some_and(|(m, _)| m.path == r.path))
}

/// The methods some route takes on this path (the `Allow` header of a 405).
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    ROUTES
        .iter()
        .filter(|r| match_route(r.method, path).is_some_and(|(m, _)| m.path == r.path))
        .map(|r| r.method)
        .collect()
}

/// Calls the handler of `function`, exactly as its Lambda binary does.
pub async fn invoke(app: &App, function: &str, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    match function {
        "create-order" => crate::http::orders::create_order(app, req).await,
        "get-order" => crate::http::orders::get_order(app, req).await,
        "list-orders" => crate::http::orders::list_orders(app, req).await,
        "list-products" => crate::http::catalog::list_products(app, req).await,
        "get-product" => crate::http::catalog::get_product(app, req).await,
        "get-campaign" => crate::http::campaigns::get_campaign(app, req).await,
        "claim-coupon" => crate::http::campaigns::claim(app, req).await,
        "create-campaign" => crate::http::campaigns::create(app, req).await,
        "cancel-order" => crate::http::orders::cancel_order(app, req).await,
        "refund-order" => crate::http::refunds::refund_order(app, req).await,
        "order-timeline" => crate::http::orders::order_timeline(app, req).await,
        "list-coupons" => crate::http::coupons::list_coupons(app, req).await,
        "my-points" => crate::http::points::my_points(app, req).await,
        "confirm-payment" => crate::http::payments::confirm_payment(app, req).await,
        "pay-with-points" => crate::http::payments::pay_with_points(app, req).await,
        "pg-webhook" => crate::http::webhook::pg_webhook(app, req).await,
        "get-sale" => crate::http::sales::get_sale(app, req).await,
        "enter-queue" => crate::http::sales::enter_queue(app, req).await,
        "my-ticket" => crate::http::sales::my_ticket(app, req).await,
        "leave-queue" => crate::http::sales::leave_queue(app, req).await,
        "create-sale" => crate::http::sales::create_sale(app, req).await,
        other => Err(format!("no handler for function {other}").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_templates() {
        let (r, p) = match_route("GET", "/orders/abc").unwrap();
        assert_eq!(r.function, "get-order");
        assert_eq!(p, vec![("orderId".to_owned(), "abc".to_owned())]);
        assert_eq!(match_route("POST", "/orders").unwrap().0.function, "create-order");
        assert!(match_route("DELETE", "/orders").is_none());
        // A trailing slash is ignored; an empty parameter never matches.
        assert_eq!(match_route("GET", "/orders/").unwrap().0.function, "list-orders");
        assert!(match_route("GET", "/orders//timeline").is_none());
        assert_eq!(match_route("POST", "/orders/o1/cancel").unwrap().0.function, "cancel-order");
        assert!(!match_route("POST", "/webhooks/pg").unwrap().0.authorized);
        assert!(match_route("GET", "/orders/a/b").is_none());
        assert!(path_exists("/orders"));
        assert!(!path_exists("/nope"));
        assert_eq!(allowed_methods("/orders"), vec!["POST", "GET"]);
        assert_eq!(allowed_methods("/campaigns/c1/claim"), vec!["POST"]);
    }
}
