//! An in-memory transport whose publishes and end-offset queries fail or hang on demand, stream by stream: a full
//! disk, a broker away, a transport that stops answering, a slow one.

use std::sync::Arc;

use livecheck::transport::{
    BoxFuture, Delivery, Leadership, MemoryTransport, Message, Received, Subscription, Transport,
};

/// What a call does instead of reaching the inner transport.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// It never completes (a broker away).
    Hang,
    /// A transport error: `retriable` (a full disk, a broker away) or lasting.
    Fail { retriable: bool, context: &'static str },
    /// It completes, after this long (a slow broker).
    Delay(std::time::Duration),
    /// End offsets this much beyond the true ends: messages the broker has that the reader has not read yet (a
    /// consumer behind a backlog). Other calls are not affected.
    Ahead(u64),
}

type Hook = Arc<dyn Fn(&str) -> Option<Fault> + Send + Sync>;

/// `inner`, with a fault for the calls on the streams a hook picks (each hook is asked at every call).
#[derive(Clone)]
pub struct Faulty {
    inner: MemoryTransport,
    publish: Hook,
    end_offsets: Hook,
}

impl Faulty {
    /// No faults yet.
    pub fn new(inner: MemoryTransport) -> Self {
        Faulty { inner, publish: Arc::new(|_| None), end_offsets: Arc::new(|_| None) }
    }

    /// Publishes to a stream get the fault `hook` returns for it.
    pub fn on_publish(mut self, hook: impl Fn(&str) -> Option<Fault> + Send + Sync + 'static) -> Self {
        self.publish = Arc::new(hook);
        self
    }

    /// End-offset queries of a stream get the fault `hook` returns for it.
    pub fn on_end_offsets(mut self, hook: impl Fn(&str) -> Option<Fault> + Send + Sync + 'static) -> Self {
        self.end_offsets = Arc::new(hook);
        self
    }
}

/// `call`, with `fault` instead or before it.
fn fault<'a, T: Send + 'a>(
    fault: Fault,
    call: impl FnOnce() -> BoxFuture<'a, livecheck::Result<T>> + Send + 'a,
) -> BoxFuture<'a, livecheck::Result<T>> {
    match fault {
        Fault::Delay(delay) => Box::pin(async move {
            tokio::time::sleep(delay).await;
            call().await
        }),
        Fault::Hang => Box::pin(std::future::pending()),
        Fault::Ahead(_) => call(),
        Fault::Fail { retriable, context } => {
            Box::pin(
                async move { Err(livecheck::Error::Transport { context: context.into(), retriable, source: None }) },
            )
        }
    }
}

impl Transport for Faulty {
    fn create_stream<'a>(&'a self, stream: &'a str, partitions: u32) -> BoxFuture<'a, livecheck::Result<()>> {
        self.inner.create_stream(stream, partitions)
    }

    fn publish<'a>(&'a self, stream: &'a str, message: Message) -> BoxFuture<'a, livecheck::Result<Delivery>> {
        match (self.publish)(stream) {
            Some(f) => fault(f, move || self.inner.publish(stream, message)),
            None => self.inner.publish(stream, message),
        }
    }

    fn subscribe<'a>(
        &'a self,
        streams: &'a [&'a str],
        group: &'a str,
    ) -> BoxFuture<'a, livecheck::Result<Box<dyn Subscription>>> {
        self.inner.subscribe(streams, group)
    }

    fn end_offsets<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, livecheck::Result<Vec<u64>>> {
        match (self.end_offsets)(stream) {
            Some(Fault::Ahead(more)) => Box::pin(async move {
                Ok(self.inner.end_offsets(stream).await?.into_iter().map(|end| end + more).collect())
            }),
            Some(f) => fault(f, move || self.inner.end_offsets(stream)),
            None => self.inner.end_offsets(stream),
        }
    }

    fn read<'a>(
        &'a self,
        stream: &'a str,
        partition: u32,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'a, livecheck::Result<Vec<Received>>> {
        self.inner.read(stream, partition, from, limit)
    }

    fn elect_leader<'a>(&'a self, group: &'a str) -> BoxFuture<'a, livecheck::Result<Box<dyn Leadership>>> {
        self.inner.elect_leader(group)
    }
}
