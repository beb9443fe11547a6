//! The audit trail's values (docs/console.md, "Audit"): who acted by hand
//! on the shop, why, on what, and how it went. Built at the edge (a
//! console form, a command line) and never trusted further in: a reason is
//! required and bounded, an operator's name is printable and bounded.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an operator's name or a reason was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAudit {
    #[error("an operator is named (1 to {max} printable characters)")]
    Operator { max: usize },
    #[error("an action needs a reason (1 to {max} characters, no control characters)")]
    Reason { max: usize },
}

fn printable(s: &str) -> bool {
    s.chars().all(|c| !c.is_control())
}

/// A trimmed, printable text of 1 to `$max` characters, refused as `$err`.
macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $max:expr, $err:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidAudit> {
                let s: String = s.into();
                let t = s.trim();
                if !t.is_empty() && t.chars().count() <= Self::MAX_LEN && printable(t) {
                    Ok(Self(t.to_owned()))
                } else {
                    Err($err)
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidAudit;
            fn try_from(s: String) -> Result<Self, InvalidAudit> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

bounded_text!(
    /// Who acted: a console session's operator (the token's subject), an AWS
    /// caller identity's ARN (`--stack`; an IAM ARN is at most 2,048
    /// characters), or the name a local command was given.
    Operator,
    2_048,
    InvalidAudit::Operator { max: 2_048 }
);

bounded_text!(
    /// Why an operator acted, in their words: required on every action.
    Reason,
    500,
    InvalidAudit::Reason { max: 500 }
);

/// Where an action came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The saga console (`shop up`'s, or `shop console --stack`).
    Console,
    /// A `shop` command (on a data dir, or with `--stack`).
    Cli,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Console => "console",
            Channel::Cli => "cli",
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditStatus {
    /// Recorded before the work began; still so if the process died in it.
    Started,
    Succeeded,
    Failed,
}

impl AuditStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditStatus::Started => "STARTED",
            AuditStatus::Succeeded => "SUCCEEDED",
            AuditStatus::Failed => "FAILED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_required_bounded_and_printable() {
        assert_eq!(Reason::parse("  data platform back up ").unwrap().as_str(), "data platform back up");
        assert!(Reason::parse("   ").is_err());
        assert!(Reason::parse("").is_err());
        assert!(Reason::parse("line\nbreak").is_err());
        assert!(Reason::parse("é".repeat(Reason::MAX_LEN)).is_ok());
        assert!(Reason::parse("x".repeat(Reason::MAX_LEN + 1)).is_err());
    }

    #[test]
    fn an_operator_is_named_and_printable() {
        assert_eq!(Operator::parse("arn:aws:iam::123456789012:user/ops").unwrap().as_str().len(), 34);
        assert!(Operator::parse("").is_err());
        assert!(Operator::parse("ops\u{7}").is_err());
        assert!(serde_json::from_str::<Operator>("\"\"").is_err());
    }
}
