//! What every handler shares: the engine (thread-safe, the same one the CLI opens) and a way
//! to call its blocking verbs without stalling the async workers.

use std::sync::Arc;

use pelagos_engine::Engine;

use crate::error::{ApiError, ApiResult};
use crate::execs::Execs;
use crate::hijack::PendingAttaches;

/// The daemon's shared state.
#[derive(Clone)]
pub struct AppState {
    /// The engine: stores, records, monitors.
    pub engine: Arc<Engine>,
    /// Exec instances (Docker keeps them in the daemon's memory too).
    pub execs: Arc<Execs>,
    /// Attaches waiting for their container's start (`docker run`'s order).
    pub attaches: Arc<PendingAttaches>,
    /// Waits in progress, woken by a start.
    pub waits: Arc<crate::routes::containers::wait::Waits>,
}

impl AppState {
    /// State over an opened engine.
    pub fn new(engine: Engine) -> AppState {
        AppState {
            engine: Arc::new(engine),
            execs: Arc::default(),
            attaches: Arc::default(),
            waits: Arc::default(),
        }
    }

    /// Runs an engine call on tokio's blocking pool (engine verbs wait on files, locks and
    /// monitors) and turns its error into Docker's answer.
    pub async fn blocking<T, E>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T, E> + Send + 'static,
    ) -> ApiResult<T>
    where
        T: Send + 'static,
        E: Into<ApiError> + Send + 'static,
    {
        let engine = self.engine.clone();
        match tokio::task::spawn_blocking(move || f(&engine)).await {
            Ok(result) => result.map_err(Into::into),
            Err(e) => Err(ApiError::internal(format!("a worker task failed: {e}"))),
        }
    }
}
