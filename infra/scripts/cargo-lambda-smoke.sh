#!/usr/bin/env bash
# cargo-lambda-smoke.sh — proves every API function runs under `cargo lambda
# watch` / `cargo lambda invoke` against the local stack's store:
#   shop up --dynamodb-port  ->  cargo lambda watch (functions with
#   AWS_ENDPOINT_URL_DYNAMODB pointing at it)  ->  invoke each events/ fixture
#   and check the status code; the order created through the function is then
#   read back through the local API.
# Needs cargo-lambda (pip install cargo-lambda==1.9.2). Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../.."

API_PORT=${API_PORT:-34100}
DDB_PORT=${DDB_PORT:-34101}
INVOKE_PORT=${INVOKE_PORT:-34102}
PG_PORT=${PG_PORT:-34103}
SINK_PORT=${SINK_PORT:-34104}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f "cargo-lambda.*--invoke-port ${INVOKE_PORT}" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # url deadline-seconds
  local deadline=$((SECONDS + $2))
  until curl -s -o /dev/null "$1"; do
    if ((SECONDS > deadline)); then echo "timed out waiting for $1" >&2; return 1; fi
    sleep 0.5
  done
}

cargo build -q -p shop-local --bin shop
target/debug/shop up --port "$API_PORT" --dynamodb-port "$DDB_PORT" --pg-port "$PG_PORT" --sink-port "$SINK_PORT" \
  --data-dir "$work/data" \
  >"$work/shop.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:${API_PORT}/healthz" 60

# The data dir's credentials (the DynamoDB port verifies SigV4 against
# them), the PG simulator's secret key and the endpoints, as docs/local.md shows.
eval "$(target/debug/shop env --data-dir "$work/data" --dynamodb-port "$DDB_PORT" --pg-port "$PG_PORT" --sink-port "$SINK_PORT")"
PG_TIMEOUT_MS=5000 EVENT_BUS_NAME=shop-events LIVE_ENDPOINT=http://127.0.0.1:9 \
AWS_ENDPOINT_URL_EVENTBRIDGE=http://127.0.0.1:9 AWS_MAX_ATTEMPTS=1 \
  cargo lambda watch --invoke-port "$INVOKE_PORT" >"$work/watch.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:${INVOKE_PORT}/" 600

invoke() { # function fixture-file -> prints the API Gateway response JSON
  cargo lambda invoke "$1" --invoke-port "$INVOKE_PORT" --data-file "$2"
}
status_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["statusCode"])'; }

fail=0
check() { # name expected actual
  if [[ "$2" == "$3" ]]; then echo "ok   $1 -> $3"; else echo "FAIL $1: expected $2, got $3"; fail=1; fi
}

created=$(invoke create-order events/apigw-create-order.json)
check "create-order (apigw-create-order.json)" 201 "$(status_of <<<"$created")"
order_id=$(python3 -c 'import json,sys; print(json.loads(json.load(sys.stdin)["body"])["orderId"])' <<<"$created")
check "create-order replay (same Idempotency-Key)" 201 "$(invoke create-order events/apigw-create-order.json | status_of)"
check "create-order (apigw-create-order-invalid.json)" 400 "$(invoke create-order events/apigw-create-order-invalid.json | status_of)"
check "create-order (apigw-create-order-unauthenticated.json)" 401 \
  "$(invoke create-order events/apigw-create-order-unauthenticated.json | status_of)"

# The other fixtures, with the ids of this run (they carry the test ids
# fxord000001 / fixture_pk_1; the demo catalog gives the same amount, 20000).
payment_key="smoke_pk_$(date +%s%N)"
patch() { # fixture -> patched copy path
  local out="$work/$(basename "$1")"
  sed -e "s/fxord000001/${order_id}/g" -e "s/fixture_pk_1/${payment_key}/g" "$1" >"$out"
  echo "$out"
}
# The store's port takes only calls signed with the data dir's credentials.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:${DDB_PORT}/" \
  -H 'X-Amz-Target: DynamoDB_20120810.ListTables' -H 'Content-Type: application/x-amz-json-1.0' -d '{}')
check "the DynamoDB port refuses an unsigned call" 400 "$code"
check "get-order (apigw-get-order.json)" 200 "$(invoke get-order "$(patch events/apigw-get-order.json)" | status_of)"
curl -s -o /dev/null -X POST "http://127.0.0.1:${PG_PORT}/v1/sim/checkout" -H 'Content-Type: application/json' \
  -d "{\"orderId\":\"${order_id}\",\"amount\":20000,\"paymentKey\":\"${payment_key}\"}"
check "confirm-payment (apigw-confirm-payment.json)" 200 \
  "$(invoke confirm-payment "$(patch events/apigw-confirm-payment.json)" | status_of)"
check "pg-webhook (apigw-pg-webhook.json)" 200 "$(invoke pg-webhook "$(patch events/apigw-pg-webhook.json)" | status_of)"
check "pay-with-points on a paid order (apigw-pay-with-points.json)" 409 \
  "$(invoke pay-with-points "$(patch events/apigw-pay-with-points.json)" | status_of)"
failures_of() { python3 -c 'import json,sys; print(len(json.load(sys.stdin)["batchItemFailures"]))'; }
check "coupon consumer (sqs-coupon.json)" 0 "$(invoke coupon "$(patch events/sqs-coupon.json)" | failures_of)"
check "analytics consumer (sqs-analytics.json)" 0 "$(invoke analytics "$(patch events/sqs-analytics.json)" | failures_of)"
check "list-coupons (apigw-list-coupons.json)" 200 "$(invoke list-coupons events/apigw-list-coupons.json | status_of)"
check "my-points (apigw-my-points.json)" 200 "$(invoke my-points events/apigw-my-points.json | status_of)"
check "list-orders (apigw-list-orders.json)" 200 "$(invoke list-orders events/apigw-list-orders.json | status_of)"
check "list-products (apigw-list-products.json)" 200 "$(invoke list-products events/apigw-list-products.json | status_of)"
check "get-product (apigw-get-product.json)" 200 "$(invoke get-product events/apigw-get-product.json | status_of)"
check "get-campaign (apigw-get-campaign.json)" 200 "$(invoke get-campaign events/apigw-get-campaign.json | status_of)"
check "claim-coupon (apigw-claim-coupon.json)" 201 "$(invoke claim-coupon events/apigw-claim-coupon.json | status_of)"
check "claim-coupon replay (same Idempotency-Key)" 201 "$(invoke claim-coupon events/apigw-claim-coupon.json | status_of)"
check "create-campaign, a shopper's token (apigw-create-campaign-shopper.json)" 403 \
  "$(invoke create-campaign events/apigw-create-campaign-shopper.json | status_of)"
check "create-campaign (apigw-create-campaign.json)" 201 "$(invoke create-campaign events/apigw-create-campaign.json | status_of)"
check "create-campaign again, the same terms" 200 "$(invoke create-campaign events/apigw-create-campaign.json | status_of)"
check "refund-order (apigw-refund-order.json)" 202 "$(invoke refund-order "$(patch events/apigw-refund-order.json)" | status_of)"
check "cancel-order (apigw-cancel-order.json)" 200 "$(invoke cancel-order "$(patch events/apigw-cancel-order.json)" | status_of)"
check "compensation consumer (sqs-compensation.json)" 0 \
  "$(invoke compensation "$(patch events/sqs-compensation.json)" | failures_of)"
check "order-timeline (apigw-order-timeline.json)" 200 "$(invoke order-timeline "$(patch events/apigw-order-timeline.json)" | status_of)"
# No EventBridge here (its endpoint refuses): the publisher must report the
# outbox record as a batch item failure, and skip the two non-publishable ones.
check "stream-publisher, bus unreachable (dynamodb-stream-outbox.json)" 1 \
  "$(invoke stream-publisher "$(patch events/dynamodb-stream-outbox.json)" | failures_of)"
check "create-sale (apigw-create-sale.json)" 201 "$(invoke create-sale events/apigw-create-sale.json | status_of)"
check "get-sale (apigw-get-sale.json)" 200 "$(invoke get-sale events/apigw-get-sale.json | status_of)"
check "enter-queue (apigw-enter-queue.json)" 201 "$(invoke enter-queue events/apigw-enter-queue.json | status_of)"
ticket=$(invoke my-ticket events/apigw-my-ticket.json)
check "my-ticket (apigw-my-ticket.json)" 200 "$(status_of <<<"$ticket")"
# The WebSocket API's functions, with the live token of that ticket.
live_token=$(python3 -c 'import json,sys; print(json.loads(json.load(sys.stdin)["body"])["liveToken"])' <<<"$ticket")
sed "s/LIVE_TOKEN/${live_token}/" events/ws-live-authorizer.json >"$work/ws-live-authorizer.json"
effect=$(invoke live-authorizer "$work/ws-live-authorizer.json" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["policyDocument"]["Statement"][0]["Effect"])')
check "live-authorizer (ws-live-authorizer.json)" Allow "$effect"
for route in connect message disconnect; do
  check "live \$${route} (ws-live-${route}.json)" 200 "$(invoke live "events/ws-live-${route}.json" | status_of)"
done
check "leave-queue (apigw-leave-queue.json)" 200 "$(invoke leave-queue events/apigw-leave-queue.json | status_of)"
for job in expire-orders reconcile-payments admit-sales; do
  report=$(invoke "$job" "events/schedule-${job}.json")
  if python3 -c 'import json,sys; json.load(sys.stdin)' <<<"$report"; then
    echo "ok   $job (schedule-${job}.json) -> $report"
  else
    echo "FAIL $job: $report"; fail=1
  fi
done

# The same order through the local API: one store behind both.
token=$(target/debug/shop token --data-dir "$work/data" --user u1)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:${API_PORT}/orders/${order_id}")
check "local API sees the order created by the function" 200 "$code"
status=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:${API_PORT}/orders/${order_id}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
check "the order's final state" REFUNDED "$status"

if ((fail)); then
  echo "--- shop.log"; tail -20 "$work/shop.log"; echo "--- watch.log"; tail -40 "$work/watch.log"
  exit 1
fi
echo "cargo lambda smoke: all functions answered as documented"
