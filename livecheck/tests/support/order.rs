//! The order case the instance, restart and transport tests run: it waits for `placed` (with the side the test
//! was issued with) and then `executed`, 30 s each.

use std::time::Duration;

use livecheck::{Case, CaseHandle, CaseResult, CaseSettings, LiveCheck, Signal, TestRun};

pub struct Order {
    pub placed: Signal<String>,
    pub executed: Signal<()>,
}

impl Case for Order {
    type Args = String;
    async fn run(&self, _test: &TestRun, side: String) -> CaseResult {
        assert_eq!(self.placed.wait(Duration::from_secs(30)).await?, side);
        self.executed.wait(Duration::from_secs(30)).await?;
        Ok(())
    }
}

/// Registers the case, named `order`.
pub fn register(app: &LiveCheck) -> CaseHandle<Order> {
    app.register(CaseSettings::new("order"), |s| Order { placed: s.declare("placed"), executed: s.declare("executed") })
        .unwrap()
}
