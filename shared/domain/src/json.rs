//! JSON numbers as the API's schema counts them: JSON Schema's `integer`
//! is any number with a zero fractional part, so `2.0` is an integer and
//! `2.5` is not. Every integer the API reads goes through [`Integer`].

use serde::Deserialize;
use std::fmt;

/// A JSON integer (`2` or `2.0`) within ±2^53, where doubles are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Integer(pub i64);

/// 2^53: beyond it a double no longer says which integer it was.
const EXACT: f64 = 9_007_199_254_740_992.0;

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Integer;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Integer, E> {
                Ok(Integer(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Integer, E> {
                i64::try_from(v).map(Integer).map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Integer, E> {
                if v.is_finite() && v.fract() == 0.0 && v.abs() <= EXACT {
                    // Exact: a whole double within ±2^53 is an i64.
                    Ok(Integer(v as i64))
                } else {
                    Err(E::invalid_type(serde::de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_number_is_an_integer_however_it_is_written() {
        let int = |s: &str| serde_json::from_str::<Integer>(s).map(|i| i.0);
        assert_eq!(int("53").unwrap(), 53);
        assert_eq!(int("53.0").unwrap(), 53);
        assert_eq!(int("-2.0").unwrap(), -2);
        assert_eq!(int("5.3e1").unwrap(), 53);
        assert!(int("2.5").is_err());
        assert!(int("1e300").is_err());
        assert!(int("\"3\"").is_err());
        assert!(int("true").is_err());
        assert!(int("18446744073709551615").is_err());
    }
}
