//! A group that stops consuming is noticed and healed, on a real Kafka-protocol broker (tansu 0.6).
//!
//! tansu's coordinator does not replace a member that dies while the group is stable: the survivors rejoin and get
//! their old shares back, and the dead member's partitions stay assigned to it for good. Here a LiveCheck instance
//! shares its group with another member (a child process, so that it can die without leaving the group), which is
//! SIGKILLed and never restarted; tests are then triggered on its partitions. The instance must notice the
//! partitions that have tests waiting and no owner — an ERROR, `unowned_partitions` in `/healthz`, `/api/status`
//! and the metrics — rejoin its group, get them, and run the tests.
#![cfg(all(feature = "kafka", feature = "web"))]

mod support;

use std::{
    collections::HashSet,
    io::BufRead,
    process::{Child, Command, Stdio},
    sync::{mpsc, Arc},
    time::{Duration, Instant},
};

use livecheck::{
    transport::{partition_for_key, Event, KafkaTransport, Transport},
    wire::TestReport,
    Case, CaseResult, CaseSettings, LiveCheck, State, TestRun,
};
use support::{read_all, tansu::Tansu};

/// The child member's broker, when this test binary runs as the child.
const CHILD_BROKER: &str = "LIVECHECK_TEST_CHILD_BROKER";
const PARTITIONS: u32 = 4;
/// Short sessions, so that the test takes seconds, not minutes: a dead member is noticed after two of them.
const SETTINGS: &str = "session.timeout.ms=6000&heartbeat.interval.ms=500";
/// Bounds every wait of the test: generous, not a speed check.
const PATIENCE: Duration = Duration::from_secs(120);

/// PASS at once.
struct Instant0;

impl Case for Instant0 {
    type Args = ();
    async fn run(&self, _test: &TestRun, _args: ()) -> CaseResult {
        Ok(())
    }
}

fn kafka(tansu: &Tansu) -> KafkaTransport {
    KafkaTransport::connect(&format!("{}?{SETTINGS}", tansu.url)).unwrap().with_partitions(PARTITIONS)
}

/// The other member of the instance's group, in a process of its own, SIGKILLed when dropped.
struct ChildMember {
    child: Child,
    assigned: mpsc::Receiver<Vec<u32>>,
}

impl ChildMember {
    fn start(tansu: &Tansu) -> ChildMember {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_member", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_BROKER, &tansu.url)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, assigned) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                // (The test harness starts the first line with the test's name.)
                if let Some((_, list)) = line.split_once("child member holds ") {
                    let _ = tx.send(serde_json::from_str(list).unwrap());
                }
            }
        });
        ChildMember { child, assigned }
    }
}

impl Drop for ChildMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run by the test below in a child process: one member of the group `livecheck` for the instance's streams,
/// printing what it holds. Does nothing in a normal test run.
#[tokio::test]
#[ignore = "the child process of the test below"]
async fn child_member() {
    let Ok(broker) = std::env::var(CHILD_BROKER) else { return };
    let kafka = KafkaTransport::connect(&format!("{broker}?{SETTINGS}")).unwrap().with_partitions(PARTITIONS);
    let mut member = kafka.subscribe(&["livecheck", "livecheck-bus"], "livecheck").await.unwrap();
    let mut held = HashSet::new();
    loop {
        match member.recv().await.unwrap() {
            Event::Assigned(assignments) => held.extend(assignments.iter().map(|a| a.partition)),
            Event::Revoked(partitions) => held.retain(|p| !partitions.contains(p)),
            Event::Message(_) => continue,
        }
        let mut list: Vec<u32> = held.iter().copied().collect();
        list.sort_unstable();
        println!("child member holds {}", serde_json::to_string(&list).unwrap());
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_of_a_member_killed_for_good_are_noticed_and_taken_over() {
    // The instance's logs, shown when the test fails (RUST_LOG for more).
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "livecheck=info,livecheck::app::watchers=warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    let tansu = Tansu::start();
    let transport: Arc<dyn Transport> = Arc::new(kafka(&tansu));
    let app = LiveCheck::builder().shared_transport(transport.clone()).web_address("127.0.0.1:0").build();
    app.register(CaseSettings::new("instant"), |_| Instant0).unwrap();
    let running = app.start().await.unwrap();
    let web = format!("http://{}", running.web_address().unwrap());

    // The child joins: the group rebalances and it gets its share.
    let child = ChildMember::start(&tansu);
    let deadline = Instant::now() + PATIENCE;
    let childs = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match child.assigned.recv_timeout(left) {
            Ok(held) if !held.is_empty() => break held,
            Ok(_) => {}
            Err(_) => panic!("the child member got no partition within {PATIENCE:?}"),
        }
    };
    // The group has settled when the child has held its share for a while.
    while let Ok(held) = child.assigned.recv_timeout(Duration::from_secs(3)) {
        assert!(!held.is_empty(), "the child lost its partitions before it was killed: {held:?}");
    }
    drop(child);

    // Tests on the dead member's partitions: nobody consumes them until the instance heals the group.
    let service = LiveCheck::builder().shared_transport(transport.clone()).build();
    let sender = service.sender::<(), ()>(CaseSettings::new("instant")).unwrap();
    let mut ids = Vec::new();
    for &partition in &childs {
        let id = (0..).map(|i| format!("t{i}")).find(|id| partition_for_key(id.as_bytes(), PARTITIONS) == partition);
        let id = id.unwrap();
        sender.trigger_with_id(&id, &()).await.unwrap();
        ids.push(id);
    }

    let http = reqwest::Client::new();
    let (mut seen_unowned, mut reported) = (HashSet::new(), HashSet::new());
    while reported.len() < ids.len() {
        assert!(
            Instant::now() < deadline,
            "tests on partitions {childs:?} of the killed member were not run within {PATIENCE:?}; reported: \
             {reported:?}; unowned partitions seen: {seen_unowned:?}; group health now: {:?}",
            app.group_health()
        );
        let healthz = get_json(&http, &format!("{web}/healthz")).await;
        for p in healthz["unowned_partitions"].as_array().expect("/healthz lists unowned partitions") {
            seen_unowned.insert(p.as_u64().unwrap() as u32);
        }
        for received in read_all(&*transport, "livecheck-report").await {
            let report: TestReport = serde_json::from_slice(&received.message.value).unwrap();
            let id = report.test.as_ref().map(|t| t.id.clone()).unwrap_or_default();
            if ids.contains(&id) {
                assert_eq!(report.state, State::Pass, "{report:?}");
                reported.insert(id);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let childs_set: HashSet<u32> = childs.iter().copied().collect();
    assert!(
        !seen_unowned.is_empty() && seen_unowned.is_subset(&childs_set),
        "/healthz listed the dead member's partitions {childs:?} as unowned while they were: {seen_unowned:?}"
    );
    let health = app.group_health();
    assert!(health.rejoins >= 1, "the instance rejoined its group: {health:?}");
    let metrics = app.metrics();
    assert_eq!(metrics.group_rejoins, health.rejoins);
    let status = get_json(&http, &format!("{web}/api/status")).await;
    assert_eq!(status["instance"]["metrics"]["group_rejoins"], health.rejoins);
    assert!(status["instance"]["unowned_partitions"].is_array(), "{status}");
    let exported = http.get(format!("{web}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(exported.contains(&format!("livecheck_group_rejoins_total {}", health.rejoins)), "{exported}");
    assert!(exported.contains("livecheck_unowned_partitions "), "{exported}");
    running.shutdown().await.unwrap();
}
