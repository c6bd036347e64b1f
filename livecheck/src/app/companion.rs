//! What runs beside an instance without the app knowing what it is: the web server (`web/`) is one. A companion
//! is configured on the builder, bound first when the instance starts (so that, say, a port in use fails the start
//! before anything runs), then served as one of the instance's tasks until shutdown.
// Without the `web` feature no companion exists.
#![cfg_attr(not(feature = "web"), allow(dead_code))]

use std::{any::Any, net::SocketAddr, sync::Arc};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{LiveCheck, LiveCheckBuilder};
use crate::{
    transport::{BoxFuture, Leadership},
    Result,
};

/// Something configured on the builder that runs beside the instance.
pub(crate) trait Companion: Any + Send + Sync {
    /// Takes what it needs before the instance starts (a listening socket); `None` when it is configured off.
    fn bind<'a>(&'a self, app: &'a LiveCheck) -> BoxFuture<'a, Result<Option<Box<dyn BoundCompanion>>>>;
}

/// A companion ready to serve.
pub(crate) trait BoundCompanion: Send {
    /// What it is, for its task's name ("the web server").
    fn name(&self) -> &'static str;

    /// Where it listens, if it does.
    fn address(&self) -> Option<SocketAddr>;

    /// The page an operator opens to see the cases (linked from alerts), if it serves one.
    // Read by the alerts only, which need `http`.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    fn dashboard_url(&self) -> Option<String> {
        None
    }

    /// Serves `instance` until `shutdown`.
    fn serve(self: Box<Self>, instance: StartedInstance, shutdown: CancellationToken) -> BoxFuture<'static, ()>;
}

/// What a companion is told of the instance it serves.
pub(crate) struct StartedInstance {
    pub(crate) app: LiveCheck,
    /// When the instance started.
    pub(crate) started_at: DateTime<Utc>,
    /// The instance's candidacy for leader of its group, when it runs for it (a case has a `frequency`).
    pub(crate) leadership: Option<Arc<dyn Leadership>>,
}

impl LiveCheckBuilder {
    /// The builder's companion of type `C`, added (as `C::default()`) the first time it is asked for.
    pub(crate) fn companion<C: Companion + Default>(&mut self) -> &mut C {
        let found = self.companions.iter().position(|companion| (companion.as_ref() as &dyn Any).is::<C>());
        let index = found.unwrap_or_else(|| {
            self.companions.push(Box::new(C::default()));
            self.companions.len() - 1
        });
        let companion: &mut dyn Any = self.companions[index].as_mut();
        companion.downcast_mut::<C>().expect("found by its type")
    }
}
