//! pelagos-dockerd as a library: the Docker Engine API (1.41) over [`pelagos_engine`], served
//! by axum on unix sockets (and TLS TCP), one router per API resource under [`routes`].
//!
//! The daemon is a front end like the `pelagos` CLI: it calls the engine (blocking calls on
//! tokio's blocking pool), never the CLI, and owns no container: each container's monitor
//! does, so the daemon can be restarted (or killed) while containers run.

pub mod drain;
pub mod error;
pub mod execs;
pub mod flags;
pub mod hijack;
pub mod listen;
pub mod query;
pub mod routes;
pub mod server;
pub mod state;
pub mod tls;
pub mod version;

pub use error::{ApiError, ApiResult};
pub use state::AppState;
