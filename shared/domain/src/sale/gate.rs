//! The gate a sale puts on its products: from the sale's creation until it
//! ends, only a shopper it admitted may order them, one order per
//! admission. The product's item carries its [`Gate`] (read with the
//! product in the placing transaction's reads, so an ungated order pays
//! nothing for it); the order is placed in the sale [`sale_of_order`]
//! names, and its ticket moves ADMITTED → ORDERED in the same transaction
//! ([`super::Ticket::order`]).

use super::TicketError;
use crate::{ProductId, SaleId, Timestamp};
use serde::{Deserialize, Serialize};

/// `sale` gates a product until `until` (the sale's end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    pub sale: SaleId,
    pub until: Timestamp,
}

impl Gate {
    pub fn applies(&self, now: Timestamp) -> bool {
        now < self.until
    }
}

/// Why an order of gated products is refused (403 `not-admitted`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAdmitted {
    #[error("product {product} is in sale {sale}: order it with an admission to that sale (the Admission header)")]
    NoAdmission { product: ProductId, sale: SaleId },
    #[error("product {product} is in sale {sale}; the admission is for sale {admitted}")]
    OtherSale { product: ProductId, sale: SaleId, admitted: SaleId },
    #[error("the admission is not valid: {0}")]
    Token(&'static str),
    #[error("no ticket for sale {0}")]
    NoTicket(SaleId),
    #[error(transparent)]
    Ticket(#[from] TicketError),
}

/// The sale an order of `lines` (each product with its gate) is placed in
/// at `now`, the caller holding an admission to `admitted`: `None` when no
/// line is gated now (an admission sent anyway is left unused). Every
/// gated line must be gated by the admitted sale.
pub fn sale_of_order<'a>(
    lines: impl IntoIterator<Item = (&'a ProductId, Option<&'a Gate>)>,
    admitted: Option<&SaleId>,
    now: Timestamp,
) -> Result<Option<SaleId>, NotAdmitted> {
    let mut sale = None;
    for (product, gate) in lines {
        let Some(gate) = gate.filter(|g| g.applies(now)) else { continue };
        match admitted {
            None => return Err(NotAdmitted::NoAdmission { product: product.clone(), sale: gate.sale.clone() }),
            Some(a) if *a != gate.sale => {
                return Err(NotAdmitted::OtherSale {
                    product: product.clone(),
                    sale: gate.sale.clone(),
                    admitted: a.clone(),
                });
            }
            Some(a) => sale = Some(a.clone()),
        }
    }
    Ok(sale)
}
