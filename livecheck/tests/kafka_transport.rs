//! The Kafka transport against a real Kafka-protocol broker (tansu, started per test): keys, headers and the
//! murmur2 partitioner; one member for co-partitioned topics and the hand-over between members; commit metadata;
//! and LiveCheck instances on it, through a restart and with a second instance.
#![cfg(feature = "kafka")]

mod support;

use std::{collections::HashMap, sync::Arc, time::Duration};

use livecheck::{
    context::Headers,
    transport::{partition_for_key, Event, KafkaTransport, Message, Subscription, Transport},
    wire::TestReport,
    CaseHandle, LiveCheck, State,
};
use support::{
    order::{register, Order},
    read_all,
    tansu::Tansu,
};

fn transport(tansu: &Tansu) -> KafkaTransport {
    KafkaTransport::connect(&tansu.url).unwrap().with_partitions(4)
}

async fn next_event(subscription: &mut Box<dyn Subscription>) -> Event {
    tokio::time::timeout(Duration::from_secs(30), subscription.recv()).await.expect("an event in time").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_keep_key_headers_and_the_murmur2_partition() {
    let tansu = Tansu::start();
    let kafka = transport(&tansu);
    kafka.create_stream("orders", 4).await.unwrap();
    let mut headers = Headers::new();
    headers.push("LiveCheck-Test-Id", "order-1");
    headers.push("other", vec![0xff, 0]);
    let message = Message { key: Some("order-1".into()), value: b"{\"side\":\"sell\"}".to_vec(), headers };
    let delivery = kafka.publish("orders", message.clone()).await.unwrap();
    assert_eq!(delivery.partition, partition_for_key(b"order-1", 4), "Kafka's partitioner, as Faust uses");
    let read = kafka.read("orders", delivery.partition, 0, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(*read[0].message, message);
    assert_eq!(kafka.end_offsets("orders").await.unwrap().iter().sum::<u64>(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn co_partitioned_topics_go_to_one_member_and_move_only_after_it_let_go() {
    let tansu = Tansu::start();
    let kafka = transport(&tansu);
    let mut a = kafka.subscribe(&["tests", "signals"], "g").await.unwrap();
    let Event::Assigned(all) = next_event(&mut a).await else { panic!("a is assigned every partition") };
    assert_eq!(all.len(), 4);
    // Three tests on partition 1.
    let keys = (0..).map(|i| format!("t{i}")).filter(|key| partition_for_key(key.as_bytes(), 4) == 1).take(3);
    for key in keys {
        kafka.publish("tests", Message { key: Some(key), ..Default::default() }).await.unwrap();
    }
    let committed = kafka.read("tests", 1, 0, 10).await.unwrap().len() as u64;
    assert_eq!(committed, 3);
    // (tansu 0.6 does not return commit metadata; Kafka does, and LiveCheck reads more reports without it.)
    a.commit("tests", 1, committed, "reports=7").unwrap();

    let other = transport(&tansu);
    let mut b = other.subscribe(&["tests", "signals"], "g").await.unwrap();
    // b joining makes the group rebalance: a is told first, and b gets nothing until a asks for its next event.
    let b_waits = tokio::spawn(async move {
        let event = next_event(&mut b).await;
        (b, event)
    });
    let revoked = loop {
        match next_event(&mut a).await {
            Event::Revoked(revoked) => break revoked,
            Event::Message(_) => {}
            Event::Assigned(_) => panic!("a gives its partitions up first"),
        }
    };
    assert!(!revoked.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!b_waits.is_finished(), "b waits for a to let go");
    let mut a_got = Vec::new();
    let (_b, event) = loop {
        // a's next call lets go; it then gets its own share back.
        while let Ok(Ok(event)) = tokio::time::timeout(Duration::from_millis(200), a.recv()).await {
            let Event::Assigned(mine) = event else { continue };
            a_got.extend(mine);
            break;
        }
        if b_waits.is_finished() {
            break b_waits.await.unwrap();
        }
    };
    let Event::Assigned(b_got) = event else { panic!("b is assigned partitions") };
    while a_got.len() + b_got.len() < 4 {
        if let Event::Assigned(mine) = next_event(&mut a).await {
            a_got.extend(mine);
        }
    }
    let (a_partitions, b_partitions): (Vec<u32>, Vec<u32>) =
        (a_got.iter().map(|x| x.partition).collect(), b_got.iter().map(|x| x.partition).collect());
    assert_eq!(a_partitions.len() + b_partitions.len(), 4, "{a_partitions:?} {b_partitions:?}");
    assert!(a_partitions.iter().all(|p| !b_partitions.contains(p)), "{a_partitions:?} {b_partitions:?}");
    for assignment in a_got.iter().chain(&b_got) {
        // Both topics' partition p come together, with the group's committed offsets.
        assert_eq!(assignment.committed.len(), 2);
        if assignment.partition == 1 {
            assert_eq!(assignment.committed("tests").unwrap().offset, committed);
        }
    }
}

fn app(kafka: &KafkaTransport) -> (LiveCheck, CaseHandle<Order>) {
    let transport: Arc<dyn Transport> = Arc::new(kafka.clone());
    let app = LiveCheck::builder().shared_transport(transport).build();
    let case = register(&app);
    (app, case)
}

async fn reports_by_test(kafka: &KafkaTransport) -> HashMap<String, Vec<State>> {
    let mut by_test: HashMap<String, Vec<State>> = HashMap::new();
    for received in read_all(kafka, "livecheck-report").await {
        let report: TestReport = serde_json::from_slice(&received.message.value).unwrap();
        if let Some(test) = report.test {
            by_test.entry(test.id).or_default().push(report.state);
        }
    }
    by_test
}

async fn until(within: Duration, mut done: impl FnMut() -> bool) {
    let _ = tokio::time::timeout(within, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_kafka_give_each_execution_one_pass_through_a_restart_and_a_second_instance() {
    let tansu = Tansu::start();
    let kafka = transport(&tansu);
    let (_service_app, service) = app(&kafka);
    let (first, _) = app(&transport(&tansu));
    let running = first.start().await.unwrap();
    let mut tests = Vec::new();
    for i in 0..10 {
        let test = service.trigger_with_id(&format!("o-{i}"), &"sell".to_owned()).await.unwrap();
        livecheck::scope(Some(test.clone()), service.placed.send(&"sell".to_owned())).await.unwrap();
        tests.push(test);
    }
    until(Duration::from_secs(30), || first.metrics().signals_received >= 10).await;
    // A restart with every test waiting for its second signal: the first must be read again.
    running.shutdown().await.unwrap();
    let (restarted, _) = app(&transport(&tansu));
    let running = restarted.start().await.unwrap();
    let (second, _) = app(&transport(&tansu));
    let running_second = second.start().await.unwrap();
    for test in &tests {
        livecheck::scope(Some(test.clone()), service.executed.notify()).await.unwrap();
    }
    until(Duration::from_secs(60), || restarted.metrics().tests_finished + second.metrics().tests_finished >= 10).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    running.shutdown().await.unwrap();
    running_second.shutdown().await.unwrap();
    let reports = reports_by_test(&kafka).await;
    for test in &tests {
        assert_eq!(reports.get(test.id()), Some(&vec![State::Pass]), "{}: {reports:?}", test.id());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_per_group_and_another_takes_over_when_it_leaves() {
    let tansu = Tansu::start();
    let leader_now = |a: &dyn livecheck::transport::Leadership, b: &dyn livecheck::transport::Leadership| {
        (a.is_leader(), b.is_leader())
    };
    let a = transport(&tansu).elect_leader("g").await.unwrap();
    until(Duration::from_secs(30), || a.is_leader()).await;
    assert!(a.is_leader(), "a lone candidate leads");
    let b = transport(&tansu).elect_leader("g").await.unwrap();
    // While the group rebalances, neither may lead for a moment; then exactly one does.
    until(Duration::from_secs(30), || {
        let (a_leads, b_leads) = leader_now(a.as_ref(), b.as_ref());
        a_leads != b_leads
    })
    .await;
    let (a_leads, b_leads) = leader_now(a.as_ref(), b.as_ref());
    assert!(a_leads != b_leads, "exactly one leader: {a_leads} {b_leads}");
    let (gone, stays) = if a_leads { (a, b) } else { (b, a) };
    drop(gone);
    until(Duration::from_secs(30), || stays.is_leader()).await;
    assert!(stays.is_leader(), "the other takes over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_down_at_start_up_is_waited_for() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let kafka = KafkaTransport::connect(&format!("kafka://127.0.0.1:{port}")).unwrap();
    let creating = tokio::spawn(async move { kafka.create_stream("late", 2).await });
    // Longer than one metadata request may take (10 s): the first attempt has failed by then.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(!creating.is_finished(), "no broker yet: still trying, not failed");
    let _tansu = Tansu::start_on(port);
    let created = tokio::time::timeout(Duration::from_secs(60), creating).await.expect("done once the broker is up");
    created.unwrap().unwrap();
}

/// An instance starting while the broker is killed and restarted (the fault run once caught one exiting with
/// "Broker transport failure" while it read the streams' ends): it waits, starts, and runs the next test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_starting_while_the_broker_restarts_waits_for_it() {
    let mut tansu = Tansu::start();
    let kafka = transport(&tansu);
    let (_service_app, service) = app(&kafka);
    // The streams exist, as after an earlier run.
    for stream in ["livecheck", "livecheck-bus", "livecheck-report"] {
        kafka.create_stream(stream, 4).await.unwrap();
    }
    let (instance, _) = app(&transport(&tansu));
    let starting = tokio::spawn(async move {
        let running = instance.start().await;
        (instance, running)
    });
    for delay_ms in [150, 400] {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        tansu.restart();
    }
    let (instance, running) = tokio::time::timeout(Duration::from_secs(120), starting).await.unwrap().unwrap();
    let running = running.expect("started once the broker was back");
    let test = service.trigger_with_id("after-restart", &"sell".to_owned()).await.unwrap();
    livecheck::scope(Some(test), async {
        service.placed.send(&"sell".to_owned()).await.unwrap();
        service.executed.notify().await.unwrap();
    })
    .await;
    until(Duration::from_secs(60), || instance.metrics().tests_finished >= 1).await;
    running.shutdown().await.unwrap();
    assert_eq!(reports_by_test(&kafka).await.get("after-restart"), Some(&vec![State::Pass]));
}
