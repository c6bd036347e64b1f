//! Kafka messages as transport messages.

use std::sync::Arc;

use rdkafka::message::Headers as _;

use crate::{
    context::Headers,
    transport::{Message, Received},
};

/// LiveCheck headers from a Kafka message's headers.
fn headers_of(message: &impl rdkafka::Message) -> Headers {
    let mut headers = Headers::new();
    if let Some(kafka_headers) = message.headers() {
        for header in kafka_headers.iter() {
            headers.push(header.key.to_owned(), header.value.unwrap_or_default().to_vec());
        }
    }
    headers
}

/// A received Kafka message as a transport message.
pub(super) fn received(stream: Arc<str>, message: &impl rdkafka::Message) -> Received {
    let key = message.key().map(|k| String::from_utf8_lossy(k).into_owned());
    let value = message.payload().unwrap_or_default().to_vec();
    let message_out = Message { key, value, headers: headers_of(message) };
    Received {
        stream,
        partition: message.partition() as u32,
        offset: message.offset().max(0) as u64,
        message: Arc::new(message_out),
    }
}
