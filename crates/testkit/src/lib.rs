//! Test-only helpers shared by the crates' tests and `tests/`: a real `docker-registry`
//! started on 127.0.0.1 ([`registry`]) and OCI image layouts built locally ([`images`]).

pub mod images;
pub mod netns;
pub mod registry;
