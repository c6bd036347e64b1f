//! A case's signals declared together, as one struct: what the case waits for and the services send.

use super::Signals;

/// The signals of a case as one struct, declared together: what a [`crate::CaseSender`] derefs to, and what a case
/// keeps to wait on. Derive it — `#[derive(SignalSet)]` names each signal after its field (see the derive's
/// documentation).
///
/// ```
/// use livecheck::{CaseSettings, LiveCheck, Signal, SignalSet};
///
/// #[derive(SignalSet)]
/// struct OrderSignals {
///     order_sent_to_db: Signal<String>,
///     order_executed: Signal<()>,
/// }
///
/// # fn main() -> livecheck::Result<()> {
/// let livecheck = LiveCheck::builder().build();
/// let test_order = livecheck.sender::<(), OrderSignals>(CaseSettings::new("test_order"))?;
/// assert_eq!(test_order.order_executed.name(), "order_executed");
/// assert_eq!(OrderSignals::NAMES, ["order_sent_to_db", "order_executed"]);
/// # Ok(()) }
/// ```
///
/// Written by hand, it is the explicit form of declaring signals:
///
/// ```
/// # use livecheck::{Signal, SignalSet, Signals};
/// # struct OrderSignals { order_sent_to_db: Signal<String>, order_executed: Signal<()> }
/// impl SignalSet for OrderSignals {
///     const NAMES: &'static [&'static str] = &["order_sent_to_db", "order_executed"];
///
///     fn declare(signals: &mut Signals) -> Self {
///         OrderSignals {
///             order_sent_to_db: signals.declare("order_sent_to_db"),
///             order_executed: signals.declare("order_executed"),
///         }
///     }
/// }
/// ```
pub trait SignalSet: Sized {
    /// The signals' names, in declaration order (e.g. for a command-line option that names one).
    const NAMES: &'static [&'static str];

    /// Declares every signal of the set, in the order of [`SignalSet::NAMES`].
    fn declare(signals: &mut Signals) -> Self;
}

/// No signals: for a case whose services only trigger tests.
impl SignalSet for () {
    const NAMES: &'static [&'static str] = &[];

    fn declare(_: &mut Signals) -> Self {}
}
