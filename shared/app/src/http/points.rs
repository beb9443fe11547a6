//! `GET /me/points`: the caller's balance and ledger, a page at a time.

use crate::App;
use crate::http;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shop_store::LedgerCursor;

/// `GET /me/points`: the balance and a page of the ledger, newest first.
/// The ledger is read first and the balance after it, both strongly
/// consistent; the balance is the sum of every row (each row also carries
/// the balance it left).
pub async fn my_points(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("my_points", req, |req, ctx| async move {
        let user = http::caller(&req)?;
        let page = http::page_params(&req)?;
        let after = match page.cursor {
            Some(c) => Some(ledger_cursor(c)?),
            None => None,
        };
        let (rows, next) =
            app.store.points().ledger_page(&user, page.limit, after.as_ref()).await.map_err(http::internal)?;
        let balance = app.store.points().balance(&user).await.map_err(http::internal)?;
        let ledger: Vec<Value> = rows.iter().map(ledger_row).collect();
        let next = next.map(|c| http::encode_cursor(&c.0));
        Ok(http::json(200, &json!({ "balance": balance.won(), "ledger": ledger, "nextCursor": next }), &ctx))
    })
    .await
}

/// A ledger position: `<ms, 13 digits>#<txId>`.
fn ledger_cursor(c: String) -> Result<LedgerCursor, http::Problem> {
    if http::timed_position(&c, 200) {
        Ok(LedgerCursor(c))
    } else {
        Err(http::Problem::bad_request("cursor is not a ledger position"))
    }
}

/// One ledger entry as the API shows it.
pub fn ledger_row(r: &shop_domain::points::LedgerEntry) -> Value {
    json!({
        "at": r.at.to_rfc3339(),
        "delta": r.delta,
        "reason": r.reason,
        "orderId": r.order_id,
        "balanceAfter": r.balance_after.won(),
    })
}
