//! Swarm mode's endpoints (`/swarm`, `/nodes`, `/services`, `/tasks`, `/secrets`,
//! `/configs`): pelagos-dockerd is a single node that never joins a swarm, so each answers as
//! moby's daemon does on a node outside one — 503 with moby's words, which clients (the
//! docker CLI, compose) read as "not in swarm mode" — and `init`/`join` say plainly that
//! swarm mode is not supported.

use axum::routing::{any, post};
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// moby's answer on a node that is not a swarm manager.
pub const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    let not_manager = || any(|| async { unavailable(NOT_A_MANAGER) });
    let mut router = Router::new()
        .route("/swarm/init", post(refuse))
        .route("/swarm/join", post(refuse))
        .route(
            "/swarm/leave",
            post(|| async { unavailable("This node is not part of a swarm") }),
        );
    for path in [
        "/swarm",
        "/swarm/update",
        "/swarm/unlockkey",
        "/swarm/unlock",
    ] {
        router = router.route(path, not_manager());
    }
    for resource in ["nodes", "services", "tasks", "secrets", "configs"] {
        router = router
            .route(&format!("/{resource}"), not_manager())
            .route(&format!("/{resource}/{{*rest}}"), not_manager());
    }
    router
}

/// Refused; the spec `docker swarm init` sends is read first by [`crate::drain`], so the
/// client reads this answer rather than a broken pipe.
async fn refuse() -> ApiError {
    unsupported()
}

fn unavailable(message: &str) -> ApiError {
    ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, message)
}

fn unsupported() -> ApiError {
    ApiError::not_implemented(
        "pelagos-dockerd does not support swarm mode: it runs containers on this host only",
    )
}
