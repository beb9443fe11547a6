//! A shopper's bank account for the refund of a paid virtual account
//! (docs/adr/0030-partial-refunds.md, "Refund accounts"): deposited money
//! goes back by bank transfer, so Toss's cancel of such a payment needs a
//! `refundReceiveAccount`. Parsed here, at the edge, into the shape Toss
//! accepts; the value is personal data, so it has no `Debug` that shows the
//! number or the holder and no serde derive — the app seals it
//! ([`RefundAccount::fields`]) and never writes it anywhere in clear.

/// Toss's two-digit bank codes (its "은행 코드" reference) that take a
/// refund transfer.
pub const BANKS: &[(&str, &str)] = &[
    ("02", "KDB산업은행"),
    ("03", "IBK기업은행"),
    ("06", "KB국민은행"),
    ("07", "Sh수협은행"),
    ("11", "NH농협은행"),
    ("12", "단위농협"),
    ("20", "우리은행"),
    ("23", "SC제일은행"),
    ("27", "씨티은행"),
    ("31", "DGB대구은행"),
    ("32", "부산은행"),
    ("34", "광주은행"),
    ("35", "제주은행"),
    ("37", "전북은행"),
    ("39", "경남은행"),
    ("45", "새마을금고"),
    ("48", "신협"),
    ("50", "저축은행중앙회"),
    ("54", "홍콩상하이은행"),
    ("64", "산림조합"),
    ("71", "우체국예금보험"),
    ("81", "하나은행"),
    ("88", "신한은행"),
    ("89", "케이뱅크"),
    ("90", "카카오뱅크"),
    ("92", "토스뱅크"),
];

/// Digits of an account number: Korean banks issue 10 to 14, Toss takes
/// at most 20.
pub const NUMBER_DIGITS: std::ops::RangeInclusive<usize> = 10..=20;
/// Characters of a holder's name Toss takes.
pub const HOLDER_MAX_CHARS: usize = 60;

/// A bank account money can be sent back to.
#[derive(Clone, PartialEq, Eq)]
pub struct RefundAccount {
    bank: &'static str,
    number: String,
    holder: String,
}

/// Why an account was refused, worded for the shopper (the account itself
/// is never repeated back).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRefundAccount {
    #[error("bank must be one of the two-digit bank codes the PG takes (for example 88 for 신한은행)")]
    UnknownBank,
    #[error("accountNumber must be 10 to 20 digits, without dashes")]
    BadNumber,
    #[error("holderName must be 1 to 60 characters, without control characters")]
    BadHolder,
}

impl RefundAccount {
    pub fn parse(bank: &str, number: &str, holder: &str) -> Result<RefundAccount, InvalidRefundAccount> {
        let bank = BANKS.iter().find(|(code, _)| *code == bank).map(|(code, _)| *code);
        let bank = bank.ok_or(InvalidRefundAccount::UnknownBank)?;
        if !NUMBER_DIGITS.contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidRefundAccount::BadNumber);
        }
        // As the OpenAPI pattern says it: at most 60 characters, none a
        // control character, one at least not blank (JSON Schema's `\S`
        // also counts U+FEFF as blank).
        let blank = |c: char| c.is_whitespace() || c == '\u{feff}';
        if holder.chars().count() > HOLDER_MAX_CHARS
            || holder.chars().any(char::is_control)
            || holder.chars().all(blank)
        {
            return Err(InvalidRefundAccount::BadHolder);
        }
        Ok(RefundAccount { bank, number: number.to_owned(), holder: holder.trim_matches(blank).to_owned() })
    }

    /// The bank code, the account number and the holder's name, for the
    /// one place that needs them in clear: the sealed box, and the PG call.
    pub fn fields(&self) -> (&str, &str, &str) {
        (self.bank, &self.number, &self.holder)
    }

    /// The bank's name.
    pub fn bank_name(&self) -> &'static str {
        BANKS.iter().find(|(code, _)| *code == self.bank).map_or("", |(_, name)| *name)
    }

    /// The number as Toss shows it back (`110*****7270`): the first three
    /// and last four digits.
    pub fn masked(&self) -> String {
        mask(&self.number)
    }
}

/// `number` with all but its first three and last four digits starred.
pub fn mask(number: &str) -> String {
    let n = number.chars().count();
    number.chars().enumerate().map(|(i, c)| if i < 3 || i + 4 >= n { c } else { '*' }).collect()
}

// Never the number or the holder: an account must not reach a log line.
impl std::fmt::Debug for RefundAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefundAccount").field("bank", &self.bank).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_parsed_at_the_edge() {
        let a = RefundAccount::parse("88", "11012345677270", " 홍길동 ").unwrap();
        assert_eq!(a.fields(), ("88", "11012345677270", "홍길동"));
        assert_eq!(a.bank_name(), "신한은행");
        assert_eq!(a.masked(), "110*******7270");
        assert_eq!(RefundAccount::parse("99", "11012345677270", "x"), Err(InvalidRefundAccount::UnknownBank));
        assert_eq!(RefundAccount::parse("8", "11012345677270", "x"), Err(InvalidRefundAccount::UnknownBank));
        for number in ["110-1234-5678", "123456789", "123456789012345678901", "１２３４５６７８９０", ""] {
            assert_eq!(RefundAccount::parse("88", number, "x"), Err(InvalidRefundAccount::BadNumber), "{number}");
        }
        for holder in ["", "   ", "\u{feff}", "a\nb", "a\u{85}", &"가".repeat(61)] {
            assert_eq!(RefundAccount::parse("88", "1234567890", holder), Err(InvalidRefundAccount::BadHolder));
        }
        assert!(RefundAccount::parse("88", "12345678901234567890", &"가".repeat(60)).is_ok());
    }

    #[test]
    fn debug_never_shows_the_number_or_the_holder() {
        let a = RefundAccount::parse("20", "1002345678901", "김토스").unwrap();
        let shown = format!("{a:?}");
        assert!(!shown.contains("1002345678901") && !shown.contains("김토스"), "{shown}");
    }
}
