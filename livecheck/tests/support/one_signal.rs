//! A case of one signal: it waits up to 5 s for `done` and checks it carries the test's argument.

use std::time::Duration;

use livecheck::{Case, CaseResult, Signal, TestRun};

pub struct OneSignal {
    pub done: Signal<u32>,
}

impl Case for OneSignal {
    type Args = u32;
    async fn run(&self, _test: &TestRun, n: u32) -> CaseResult {
        assert_eq!(self.done.wait(Duration::from_secs(5)).await?, n);
        Ok(())
    }
}
