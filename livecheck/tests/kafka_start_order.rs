//! A service started before any LiveCheck instance, on a fresh Kafka-protocol broker that does not create topics on
//! first use — tansu 0.6 never does (checked first, so that the test shows what it claims): the service's triggers
//! and signals create the streams they go to and are stored at once, never held; the instance started later runs
//! those tests.
#![cfg(feature = "kafka")]

mod support;

use std::{collections::HashMap, sync::Arc, time::Duration};

use livecheck::{
    instance::StreamNames,
    transport::{KafkaTransport, Transport},
    wire::TestReport,
    Case, CaseResult, CaseSettings, LiveCheck, Signal, SignalSet, State, TestRun,
};
use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    producer::{FutureProducer, FutureRecord},
    ClientConfig,
};
use support::{read_all, tansu::Tansu};

#[derive(SignalSet)]
struct PingSignals {
    pong: Signal<u32>,
}

/// PASS when `pong` carries the test's argument.
struct Ping {
    signals: PingSignals,
}

impl Case for Ping {
    type Args = u32;
    async fn run(&self, _test: &TestRun, n: u32) -> CaseResult {
        assert_eq!(self.signals.pong.wait(Duration::from_secs(30)).await?, n);
        Ok(())
    }
}

fn settings() -> CaseSettings {
    CaseSettings::new("ping")
}

/// The broker's topics and their partition counts, as its metadata says.
fn topics(tansu: &Tansu) -> HashMap<String, usize> {
    let consumer: BaseConsumer = client(tansu).create().unwrap();
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_owned(), t.partitions().len()))
        .collect()
}

fn client(tansu: &Tansu) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", tansu.url.trim_start_matches("kafka://"));
    config
}

/// A plain producer (asking the broker to create topics, as producers do by default) publishes to a topic that
/// does not exist: the broker must refuse it and create nothing, or this test would not test a broker that does
/// not create topics.
async fn assert_the_broker_does_not_create_topics(tansu: &Tansu) {
    let producer: FutureProducer = client(tansu)
        .set("allow.auto.create.topics", "true")
        .set("topic.metadata.propagation.max.ms", "2000")
        .set("message.timeout.ms", "10000")
        .create()
        .unwrap();
    let record = FutureRecord::to("no-such-topic").key("k").payload("v");
    let sent = producer.send(record, Duration::from_secs(20)).await;
    assert!(sent.is_err(), "tansu took a message for a topic that does not exist: it creates topics after all");
    assert!(!topics(tansu).contains_key("no-such-topic"), "tansu created a topic on first use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_started_before_any_instance_creates_the_streams_it_publishes_to() {
    let tansu = Tansu::start();
    assert_the_broker_does_not_create_topics(&tansu).await;

    // The service: no instance anywhere yet. A long `signal_send_timeout`, so that a publish the broker does not
    // take shows as unconfirmed rather than as a slow one.
    let transport: Arc<dyn Transport> = Arc::new(KafkaTransport::connect(&tansu.url).unwrap());
    let service =
        LiveCheck::builder().shared_transport(transport.clone()).signal_send_timeout(Duration::from_secs(20)).build();
    let ping = service.sender::<u32, PingSignals>(settings()).unwrap();
    let test = ping.trigger(&7).await.unwrap();
    livecheck::scope(Some(test.clone()), ping.pong.send(&7)).await.unwrap();
    let metrics = service.metrics();
    assert_eq!((metrics.tests_unconfirmed, metrics.signals_unconfirmed), (0, 0), "the broker stored both at once");
    let created = topics(&tansu);
    assert_eq!(created.get("livecheck"), Some(&8), "the pending-tests stream, with the transport's partitions");
    assert_eq!(created.get("livecheck-bus"), Some(&8), "the bus, co-partitioned");
    assert_eq!(read_all(&*transport, "livecheck").await.len(), 1);

    // With a partition count configured, the service creates all three streams with it, as an instance would.
    let shop = StreamNames::prefixed("shop");
    let configured = LiveCheck::builder()
        .shared_transport(transport.clone())
        .streams(shop.clone())
        .partitions(3)
        .signal_send_timeout(Duration::from_secs(20))
        .build();
    configured.sender::<u32, PingSignals>(settings()).unwrap().trigger(&1).await.unwrap();
    assert_eq!(configured.metrics().tests_unconfirmed, 0);
    let created = topics(&tansu);
    for stream in [&shop.pending, &shop.bus, &shop.reports] {
        assert_eq!(created.get(stream.as_str()), Some(&3), "`{stream}` with the configured count");
    }

    // The instance, started afterwards on its own connection, runs the test the service triggered before it.
    let instance_transport: Arc<dyn Transport> = Arc::new(KafkaTransport::connect(&tansu.url).unwrap());
    let instance = LiveCheck::builder().shared_transport(instance_transport.clone()).build();
    instance.register(settings(), |signals| Ping { signals: PingSignals::declare(signals) }).unwrap();
    let running = instance.start().await.unwrap();
    let report = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let reports = read_all(&*instance_transport, "livecheck-report").await;
            let ours = reports.into_iter().find_map(|received| {
                let report: TestReport = serde_json::from_slice(&received.message.value).ok()?;
                report.test.as_ref().is_some_and(|t| t.id == test.id()).then_some(report)
            });
            if let Some(report) = ours {
                return report;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("a report for the test triggered before the instance started");
    assert_eq!(report.state, State::Pass, "{report:?}");
    running.shutdown().await.unwrap();
}
