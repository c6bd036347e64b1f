use std::future::Future;

use super::{Headers, TestContext};

tokio::task_local! {
    static CURRENT_TEST: Option<TestContext>;
}

/// The test the running task belongs to, if any.
///
/// Set by [`scope`]: by `maybe_trigger` / `trigger` callers, by the header-reading middleware of a service, and
/// by the runner inside an executing test.
pub fn current_test() -> Option<TestContext> {
    CURRENT_TEST.try_with(|test| test.clone()).ok().flatten()
}

/// Runs `f` with a reference to the current test without cloning it.
pub(crate) fn current_test_ref<R>(f: impl FnOnce(Option<&TestContext>) -> R) -> R {
    let mut f = Some(f);
    match CURRENT_TEST.try_with(|test| (f.take().expect("called once"))(test.as_ref())) {
        Ok(r) => r,
        Err(_) => (f.take().expect("not called yet"))(None),
    }
}

/// Appends the current test's headers to the headers of a message being produced, with the same in the
/// `livecheck.test.*` members of its `baggage` header (once: nothing is added when test headers are present
/// already; see [`TestContext::append_to`]); with no current test the headers are left untouched. A test made or
/// read by an app that signs test context carries its signature, appended with the four.
pub fn append_current_test(headers: &mut Headers) {
    current_test_ref(|test| {
        if let Some(test) = test {
            test.append_to(headers);
        }
    });
}

/// Runs `future` with `test` as the current test: `Some` makes it current, `None` makes sure no test is current
/// (a message without test headers inside a handler that had one sees none). Nothing leaks past the future.
pub fn scope<F: Future>(test: Option<TestContext>, future: F) -> impl Future<Output = F::Output> {
    CURRENT_TEST.scope(test, future)
}

/// [`scope`] with a nameable future type, for `tower` services.
#[cfg(feature = "http")]
pub(crate) fn scope_future<F: Future>(
    test: Option<TestContext>,
    future: F,
) -> tokio::task::futures::TaskLocalFuture<Option<TestContext>, F> {
    CURRENT_TEST.scope(test, future)
}

/// Wraps `future` so that it runs with the test that is current *now*: use it for tasks spawned from a test.
///
/// ```
/// # async fn demo() {
/// tokio::spawn(livecheck::context::carry_current_test(async {
///     // livecheck::current_test() here is the caller's test
/// }));
/// # }
/// ```
pub fn carry_current_test<F: Future>(future: F) -> impl Future<Output = F::Output> {
    CURRENT_TEST.scope(current_test(), future)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn test(id: &str) -> TestContext {
        TestContext::new(id, "case", Utc::now(), Utc::now())
    }

    #[tokio::test]
    async fn scope_sets_and_masks_the_current_test() {
        assert_eq!(current_test(), None);
        scope(Some(test("a")), async {
            assert_eq!(current_test().unwrap().id(), "a");
            scope(None, async { assert_eq!(current_test(), None) }).await;
            assert_eq!(current_test().unwrap().id(), "a");
        })
        .await;
        assert_eq!(current_test(), None);
    }

    #[tokio::test]
    async fn spawned_tasks_get_the_test_only_when_carried() {
        let (carried, plain) = scope(Some(test("a")), async {
            let carried = tokio::spawn(carry_current_test(async { current_test() }));
            let plain = tokio::spawn(async { current_test() });
            (carried.await.unwrap(), plain.await.unwrap())
        })
        .await;
        assert_eq!(carried.unwrap().id(), "a");
        assert_eq!(plain, None);
    }
}
