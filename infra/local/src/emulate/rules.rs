//! EventBridge rules and a pattern evaluator for the local bus.
//!
//! The rules live in `events/rules.json`, once: the local bus evaluates them
//! here and the SAM template must declare the same patterns. The evaluator
//! implements the EventBridge pattern operators the rules use — exact values,
//! `prefix`, `anything-but` (values or a prefix), `numeric` (one or two
//! comparisons), `exists`, and `$or` — with EventBridge's semantics: every
//! field of the pattern must match; an array of matchers matches if any
//! does; an event array matches if any element does; a missing field only
//! matches `{"exists": false}`.

use serde::Deserialize;
use serde_json::Value;

pub const RULES_JSON: &str = include_str!("../../../../events/rules.json");

#[derive(Debug, Clone, Deserialize)]
pub struct Rule {
    pub consumer: String,
    pub description: String,
    pub pattern: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rules {
    pub bus: String,
    pub rules: Vec<Rule>,
}

/// The shipped rules. Parsed and validated by a test; a malformed file is a
/// build-time bug, so this is the one place that may fail at cold start.
pub fn rules() -> anyhow::Result<Rules> {
    let rules: Rules = serde_json::from_str(RULES_JSON)?;
    for r in &rules.rules {
        validate(&r.pattern).map_err(|e| anyhow::anyhow!("rule {}: {e}", r.consumer))?;
    }
    Ok(rules)
}

/// The consumers whose rule matches `event` (an EventBridge event as JSON:
/// `source`, `detail-type`, `detail`, ...).
pub fn consumers_for<'a>(rules: &'a Rules, event: &Value) -> Vec<&'a str> {
    rules.rules.iter().filter(|r| matches(&r.pattern, event)).map(|r| r.consumer.as_str()).collect()
}

/// Checks a pattern uses only what the evaluator implements.
pub fn validate(pattern: &Value) -> Result<(), String> {
    let Value::Object(fields) = pattern else { return Err("a pattern is an object".into()) };
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("$or", Value::Array(alternatives)) => {
                for a in alternatives {
                    validate(a)?;
                }
            }
            (_, Value::Object(_)) => validate(value)?,
            (_, Value::Array(matchers)) => {
                for m in matchers {
                    validate_matcher(m)?;
                }
            }
            (k, _) => return Err(format!("field {k}: expected an array of matchers or a nested pattern")),
        }
    }
    Ok(())
}

fn validate_matcher(m: &Value) -> Result<(), String> {
    match m {
        Value::Object(op) => match op.iter().next().map(|(k, v)| (k.as_str(), v)) {
            Some(("prefix", Value::String(_))) | Some(("exists", Value::Bool(_))) => Ok(()),
            Some(("anything-but", _)) => Ok(()),
            Some(("numeric", Value::Array(c))) if c.len() == 2 || c.len() == 4 => Ok(()),
            other => Err(format!("unsupported matcher {other:?}")),
        },
        Value::Array(_) => Err("nested arrays are not matchers".into()),
        _ => Ok(()),
    }
}

/// Whether `event` matches `pattern`.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    let Value::Object(fields) = pattern else { return false };
    fields.iter().all(|(key, expected)| {
        if key == "$or" {
            return expected.as_array().is_some_and(|alts| alts.iter().any(|a| matches(a, event)));
        }
        let actual = event.get(key);
        match expected {
            Value::Object(_) => actual.is_some_and(|a| matches(expected, a)),
            Value::Array(matchers) => matchers.iter().any(|m| leaf_matches(m, actual)),
            _ => false,
        }
    })
}

fn leaf_matches(matcher: &Value, actual: Option<&Value>) -> bool {
    if let Some(Value::Object(op)) = Some(matcher)
        && let Some(Value::Bool(want)) = op.get("exists")
    {
        return actual.is_some() == *want;
    }
    match actual {
        None => false,
        Some(Value::Array(values)) => values.iter().any(|v| value_matches(matcher, v)),
        Some(v) => value_matches(matcher, v),
    }
}

fn value_matches(matcher: &Value, v: &Value) -> bool {
    match matcher {
        Value::Object(op) => match op.iter().next().map(|(k, v)| (k.as_str(), v)) {
            Some(("prefix", Value::String(p))) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
            Some(("anything-but", but)) => !anything_but_hits(but, v),
            Some(("numeric", Value::Array(c))) => v.as_f64().is_some_and(|x| numeric(c, x)),
            _ => false,
        },
        literal => literal == v,
    }
}

fn anything_but_hits(but: &Value, v: &Value) -> bool {
    match but {
        Value::Array(values) => values.iter().any(|b| b == v),
        Value::Object(op) => match op.get("prefix") {
            Some(Value::String(p)) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
            _ => false,
        },
        single => single == v,
    }
}

fn numeric(conditions: &[Value], x: f64) -> bool {
    conditions.chunks(2).all(|pair| match pair {
        [Value::String(op), n] => n.as_f64().is_some_and(|n| match op.as_str() {
            "=" => x == n,
            "<" => x < n,
            "<=" => x <= n,
            ">" => x > n,
            ">=" => x >= n,
            _ => false,
        }),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(detail_type: &str, data: Value) -> Value {
        json!({"source": "shop.orders", "detail-type": detail_type,
               "detail": {"eventVersion": 1, "correlationId": "c-1", "data": data}})
    }

    #[test]
    fn exact_values() {
        let p = json!({"detail-type": ["OrderPaid", "OrderExpired"]});
        assert!(matches(&p, &ev("OrderPaid", json!({}))));
        assert!(!matches(&p, &ev("OrderPlaced", json!({}))));
        assert!(matches(&json!({"detail": {"data": {"tags": ["b"]}}}), &ev("X", json!({"tags": ["a", "b"]}))));
    }

    #[test]
    fn prefix() {
        let p = json!({"source": [{"prefix": "shop."}]});
        assert!(matches(&p, &ev("X", json!({}))));
        assert!(!matches(&p, &json!({"source": "aws.events"})));
        assert!(!matches(&p, &json!({"source": 5})));
    }

    #[test]
    fn anything_but() {
        let p = json!({"detail-type": [{"anything-but": ["OrderPlaced"]}]});
        assert!(matches(&p, &ev("OrderPaid", json!({}))));
        assert!(!matches(&p, &ev("OrderPlaced", json!({}))));
        let single = json!({"detail-type": [{"anything-but": "OrderPaid"}]});
        assert!(!matches(&single, &ev("OrderPaid", json!({}))));
        let by_prefix = json!({"detail": {"correlationId": [{"anything-but": {"prefix": "synthetic-"}}]}});
        assert!(matches(&by_prefix, &ev("OrderPaid", json!({}))));
        let mut synthetic = ev("OrderPaid", json!({}));
        synthetic["detail"]["correlationId"] = json!("synthetic-load-test");
        assert!(!matches(&by_prefix, &synthetic));
        // A missing field is not "anything but".
        assert!(!matches(&json!({"nope": [{"anything-but": "x"}]}), &ev("OrderPaid", json!({}))));
    }

    #[test]
    fn numeric_ranges() {
        let p = json!({"detail": {"eventVersion": [{"numeric": [">=", 1]}]}});
        assert!(matches(&p, &ev("X", json!({}))));
        let range = json!({"detail": {"data": {"amount": [{"numeric": [">", 0, "<=", 100]}]}}});
        assert!(matches(&range, &ev("X", json!({"amount": 100}))));
        assert!(!matches(&range, &ev("X", json!({"amount": 0}))));
        assert!(!matches(&range, &ev("X", json!({"amount": 101}))));
        assert!(!matches(&range, &ev("X", json!({"amount": "50"}))));
        assert!(matches(&json!({"detail": {"data": {"n": [{"numeric": ["=", 3]}]}}}), &ev("X", json!({"n": 3}))));
    }

    #[test]
    fn exists() {
        let p = json!({"detail": {"data": {"couponId": [{"exists": true}]}}});
        assert!(matches(&p, &ev("OrderPaid", json!({"couponId": "c1"}))));
        assert!(!matches(&p, &ev("OrderPaid", json!({}))));
        let absent = json!({"detail": {"data": {"couponId": [{"exists": false}]}}});
        assert!(matches(&absent, &ev("OrderPaid", json!({}))));
        assert!(!matches(&absent, &ev("OrderPaid", json!({"couponId": "c1"}))));
    }

    #[test]
    fn or_and_nesting() {
        let p = json!({"source": ["shop.orders"], "$or": [
            {"detail-type": ["RefundRequested"]},
            {"detail-type": ["OrderCancelled"], "detail": {"data": {"paymentKey": [{"exists": true}]}}}
        ]});
        assert!(matches(&p, &ev("RefundRequested", json!({}))));
        assert!(matches(&p, &ev("OrderCancelled", json!({"paymentKey": "pk"}))));
        assert!(!matches(&p, &ev("OrderCancelled", json!({}))));
        assert!(!matches(&json!({"detail": {"data": {"x": ["1"]}}}), &json!({"detail": "flat"})));
    }

    #[test]
    fn shipped_rules_route_each_event_type() {
        let rules = rules().unwrap();
        let route = |t: &str, data: Value| consumers_for(&rules, &ev(t, data));
        assert_eq!(route("OrderPaid", json!({"couponId": "c1"})), vec!["coupon", "analytics"]);
        assert_eq!(route("OrderPaid", json!({})), vec!["analytics"]);
        assert_eq!(
            route("OrderCancelled", json!({"couponId": "c1", "paymentKey": "pk"})),
            vec!["coupon", "compensation", "analytics"]
        );
        assert_eq!(route("PaymentOrphaned", json!({})), vec!["compensation"]);
        assert_eq!(route("OrderPaid", json!({"saleId": "drop"})), vec!["analytics", "waiting-room"]);
        assert_eq!(route("VirtualAccountIssued", json!({"saleId": "drop"})), vec!["waiting-room"]);
        assert!(route("OrderPlaced", json!({"saleId": "drop"})).is_empty());
        assert_eq!(route("RefundRequested", json!({"couponId": "c1"})), vec!["compensation"]);
        assert_eq!(route("OrderRefunded", json!({"couponId": "c1"})), vec!["coupon", "analytics"]);
        assert!(route("OrderPlaced", json!({"couponId": "c1"})).is_empty());
        assert!(validate(&json!({"a": [{"suffix": "x"}]})).is_err());
        assert!(validate(&json!({"a": "x"})).is_err());
    }
}
