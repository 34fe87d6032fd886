//! One router per API resource, as moby's: each file answers its resource's endpoints and
//! nothing else; [`app`] joins them under the version middleware.

pub mod attach;
pub mod container_io;
pub mod containers;
pub mod distribution;
pub mod exec;
pub mod images;
pub mod networks;
pub mod plugins;
pub mod swarm;
pub mod system;
pub mod volumes;

use axum::extract::DefaultBodyLimit;
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// Every route, with Docker's 404 for the rest and no fixed limit on request bodies
/// (`docker cp` and `docker load` send gigabytes).
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(system::routes())
        .merge(containers::routes())
        .merge(container_io::routes())
        .merge(attach::routes())
        .merge(exec::routes())
        .merge(distribution::routes())
        .merge(images::routes())
        .merge(networks::routes())
        .merge(plugins::routes())
        .merge(swarm::routes())
        .merge(volumes::routes())
        .fallback(page_not_found)
        // moby answers a method a path does not take as an unknown page.
        .method_not_allowed_fallback(page_not_found)
        .layer(axum::middleware::from_fn(crate::error::json_errors))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

async fn page_not_found() -> ApiError {
    ApiError::not_found("page not found")
}
