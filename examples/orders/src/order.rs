//! The order, as the services pass it around.

use serde::{Deserialize, Serialize};

/// An order placed by a user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Order {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) side: String,
    pub(crate) quantity: f64,
    pub(crate) price: f64,
    /// Made by LiveCheck's fake traffic: not executed for real.
    pub(crate) fake: bool,
}

/// The longest id or user id an order may carry.
pub(crate) const MAX_ID_BYTES: usize = 256;

impl Order {
    /// Why the order cannot be taken as it is, if so: ids too long to be real (a flood of them would fill the
    /// caches), a side that is neither buy nor sell, a quantity or price that is not a finite number.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.id.len() > MAX_ID_BYTES || self.user_id.len() > MAX_ID_BYTES {
            return Some(format!("an order's id and user_id are at most {MAX_ID_BYTES} bytes"));
        }
        if self.side != "buy" && self.side != "sell" {
            return Some(format!("side is buy or sell, not `{}`", self.side.chars().take(32).collect::<String>()));
        }
        if !self.quantity.is_finite() || !self.price.is_finite() {
            return Some("quantity and price are numbers".into());
        }
        None
    }
}

/// The arguments of a `test_order` execution.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct OrderArgs {
    pub(crate) side: String,
}
