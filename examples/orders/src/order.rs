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

/// The arguments of a `test_order` execution.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct OrderArgs {
    pub(crate) side: String,
}
