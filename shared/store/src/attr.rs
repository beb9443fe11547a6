//! Reading and writing DynamoDB attribute values without panics: a missing or
//! mistyped attribute is an `Unexpected` error naming it.

use anyhow::{Context, anyhow};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::str::FromStr;

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> anyhow::Result<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(_) => Err(anyhow!("attribute {name} is not a string")),
        None => Err(anyhow!("attribute {name} is missing")),
    }
}

pub fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

pub fn get_n<T: FromStr>(item: &Item, name: &str) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().with_context(|| format!("attribute {name} = {v}")),
        Some(_) => Err(anyhow!("attribute {name} is not a number")),
        None => Err(anyhow!("attribute {name} is missing")),
    }
}

pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// Builds an item from `(name, value)` pairs.
pub fn item<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// `it` under the key `(pk, sk)`.
pub fn with_key(mut it: Item, (pk, sk): (String, String)) -> Item {
    it.insert("pk".into(), s(pk));
    it.insert("sk".into(), s(sk));
    it
}

/// A money attribute (integer won).
pub fn money(item: &Item, name: &str) -> anyhow::Result<shop_domain::Money> {
    shop_domain::Money::new(get_n::<i128>(item, name)?).with_context(|| format!("attribute {name}"))
}

/// An item in DynamoDB JSON (`{"name": {"S": "…"}}`), as a stream record's
/// image and the wire protocol carry it. Types the table never holds (sets,
/// binary) are left out.
pub fn to_json(item: &Item) -> serde_json::Value {
    serde_json::Value::Object(item.iter().filter_map(|(k, v)| Some((k.clone(), value_json(v)?))).collect())
}

fn value_json(v: &AttributeValue) -> Option<serde_json::Value> {
    use serde_json::json;
    Some(match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::L(l) => json!({ "L": l.iter().filter_map(value_json).collect::<Vec<_>>() }),
        AttributeValue::M(m) => json!({ "M": to_json(m) }),
        _ => return None,
    })
}

/// An item back from DynamoDB JSON; attributes of other types are left out.
pub fn from_json(image: &serde_json::Value) -> Item {
    image
        .as_object()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), json_value(v)?))).collect())
        .unwrap_or_default()
}

fn json_value(v: &serde_json::Value) -> Option<AttributeValue> {
    let (tag, inner) = v.as_object()?.iter().next()?;
    Some(match tag.as_str() {
        "S" => AttributeValue::S(inner.as_str()?.to_owned()),
        "N" => AttributeValue::N(inner.as_str()?.to_owned()),
        "BOOL" => AttributeValue::Bool(inner.as_bool()?),
        "NULL" => AttributeValue::Null(true),
        "L" => AttributeValue::L(inner.as_array()?.iter().filter_map(json_value).collect()),
        "M" => AttributeValue::M(from_json(inner)),
        _ => return None,
    })
}
