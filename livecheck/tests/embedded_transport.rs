//! The LiveCheck app on the embedded SQLite log: tests pass through it, and an instance that was down catches up
//! on what was published meanwhile.

use std::{sync::Arc, time::Duration};

mod support;

use livecheck::{
    transport::{SqliteTransport, Transport},
    Case, CaseResult, CaseSettings, LiveCheck, Signal, State, TestRun,
};
use support::TempDb;

struct Order {
    placed: Signal<String>,
    executed: Signal<()>,
}

impl Case for Order {
    type Args = String;
    async fn run(&self, _test: &TestRun, side: String) -> CaseResult {
        assert_eq!(self.placed.wait(Duration::from_secs(10)).await?, side);
        self.executed.wait(Duration::from_secs(10)).await?;
        Ok(())
    }
}

fn app(db: &TempDb) -> (LiveCheck, livecheck::CaseHandle<Order>) {
    let transport: Arc<dyn Transport> = Arc::new(SqliteTransport::open(&db.0).unwrap());
    let app = LiveCheck::builder().shared_transport(transport).build();
    let case = app
        .register(CaseSettings::new("order"), |s| Order {
            placed: s.declare("placed"),
            executed: s.declare("executed"),
        })
        .unwrap();
    (app, case)
}

async fn place(case: &livecheck::CaseHandle<Order>, id: &str, side: &str) {
    let test = case.trigger_with_id(id, &side.to_owned()).await.unwrap();
    livecheck::scope(Some(test), async {
        case.placed.send(&side.to_owned()).await.unwrap();
        case.executed.notify().await.unwrap();
    })
    .await;
}

async fn until(within: Duration, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(within, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("condition reached in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tests_pass_through_the_embedded_log_and_a_restarted_instance_loses_nothing() {
    let db = TempDb::new("app");
    // The service side and the instance use separate handles on the file, as two processes would.
    let (_service_app, service) = app(&db);
    let (instance, _) = app(&db);
    let running = instance.start().await.unwrap();
    place(&service, "o-1", "sell").await;
    until(Duration::from_secs(10), || instance.metrics().tests_finished == 1).await;
    assert_eq!(instance.case_health("order").unwrap().count(State::Pass), 1);
    running.shutdown().await.unwrap();

    // Published while no instance runs.
    place(&service, "o-2", "buy").await;
    place(&service, "o-3", "sell").await;

    let (restarted, _) = app(&db);
    let running = restarted.start().await.unwrap();
    until(Duration::from_secs(10), || restarted.metrics().tests_finished == 2).await;
    let health = restarted.case_health("order").unwrap();
    assert_eq!(health.count(State::Pass), 2, "{health:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(restarted.metrics().tests_finished, 2, "o-1 was committed and is not run again");
    running.shutdown().await.unwrap();
}
