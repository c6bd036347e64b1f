//! Turns a panic in a test body (a failed `assert!`) into a FAIL with its message and location.

use std::{
    cell::{Cell, RefCell},
    future::Future,
    panic::{catch_unwind, AssertUnwindSafe},
    pin::Pin,
    sync::Once,
    task::{Context, Poll},
};

/// A panic caught in a test body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CaughtPanic {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
}

thread_local! {
    /// How many test bodies are being polled on this thread (nesting is possible with `block_on`).
    static CAPTURING: Cell<usize> = const { Cell::new(0) };
    static LAST_PANIC: RefCell<Option<CaughtPanic>> = const { RefCell::new(None) };
}

/// Installs, once per process, a panic hook that records panics raised while a test body is polled (and keeps
/// them off stderr: they are reported with the test) and hands every other panic to the previous hook.
fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) == 0 {
                return previous(info);
            }
            let message = if let Some(s) = info.payload().downcast_ref::<&str>() {
                (*s).to_owned()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                "panic with a non-string payload".to_owned()
            };
            let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            LAST_PANIC.with(|last| *last.borrow_mut() = Some(CaughtPanic { message, location }));
        }));
    });
}

/// A future that resolves to `Err` with the panic's details instead of unwinding. The future is `Unpin` (e.g.
/// boxed), so no second allocation is needed.
pub(crate) struct CatchPanic<F> {
    future: F,
}

impl<F: Future + Unpin> CatchPanic<F> {
    pub(crate) fn new(future: F) -> Self {
        install_hook();
        CatchPanic { future }
    }
}

impl<F: Future + Unpin> Future for CatchPanic<F> {
    type Output = Result<F::Output, CaughtPanic>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        CAPTURING.with(|c| c.set(c.get() + 1));
        let polled = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut self.future).poll(cx)));
        CAPTURING.with(|c| c.set(c.get() - 1));
        match polled {
            Ok(poll) => poll.map(Ok),
            Err(payload) => {
                let caught = LAST_PANIC.with(|last| last.borrow_mut().take()).unwrap_or_else(|| CaughtPanic {
                    message: payload
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panic".to_owned()),
                    location: None,
                });
                Poll::Ready(Err(caught))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_assert_becomes_message_and_location() {
        let caught = CatchPanic::new(Box::pin(async {
            let side = "buy";
            assert_eq!(side, "sell", "side changed");
        }))
        .await
        .unwrap_err();
        assert!(caught.message.contains("side changed"), "{}", caught.message);
        assert!(caught.message.contains("buy"), "{}", caught.message);
        assert!(caught.location.unwrap().starts_with(file!()));
    }

    #[tokio::test]
    async fn no_panic_passes_the_output_through() {
        assert_eq!(CatchPanic::new(Box::pin(async { 7 })).await, Ok(7));
    }
}
