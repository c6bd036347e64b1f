//! Derive macros for [livecheck](https://docs.rs/livecheck). Use them through `livecheck` (`use
//! livecheck::SignalSet;`), which re-exports them next to the traits they implement.

mod compile_errors;
mod signal_set;

use proc_macro::TokenStream;

/// Implements `livecheck::SignalSet` for a struct whose fields are `Signal<T>`: each field declares the signal named
/// after it, in field order, so a signal is written once.
///
/// ```
/// use livecheck::{Signal, SignalSet};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Order { id: String }
///
/// #[derive(SignalSet)]
/// struct OrderSignals {
///     order_sent_to_db: Signal<Order>,  // the signal "order_sent_to_db"
///     #[signal(name = "order_executed")] // the name on the wire, when it must differ from the field's
///     executed: Signal<String>,
/// }
///
/// assert_eq!(OrderSignals::NAMES, ["order_sent_to_db", "order_executed"]);
/// ```
///
/// It writes what you would write by hand: `OrderSignals { order_sent_to_db: signals.declare("order_sent_to_db"),
/// executed: signals.declare("order_executed") }` (a leading `r#` is not part of the name).
///
/// Compile errors point at the code to change: a field that is not a `Signal<T>` (or whose `T` is not
/// `Serialize + Deserialize`) at its type, two fields with one name at the second, and enums, tuple structs and
/// generic structs at the item. The generated code names the crate `::livecheck`: depend on it under that name.
#[proc_macro_derive(SignalSet, attributes(signal))]
pub fn signal_set(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    signal_set::expand(&input).unwrap_or_else(syn::Error::into_compile_error).into()
}
