//! `docker search`: the v1 search API of an index (Docker Hub's `index.docker.io` for a bare
//! term, `HOST` for `HOST/term`), as moby asks it. Registries that serve only the
//! Distribution API v2 answer 404, which the error then says.

use crate::client::{body_text, Client};
use crate::error::{from_reqwest, status_error, RegistryError};

/// Docker Hub's search index.
const DOCKER_HUB_INDEX: &str = "index.docker.io";

/// moby's `splitReposSearchTerm`: `HOST/term` searches HOST when the first part looks like a
/// host (has a `.` or `:`, or is `localhost`); anything else searches Docker Hub.
pub(crate) fn split_search_term(term: &str) -> (&str, &str) {
    match term.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            (host, rest)
        }
        _ => (DOCKER_HUB_INDEX, term),
    }
}

/// Percent-encodes a query value (unreserved characters kept).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Client {
    /// Searches the index `term` names for at most `limit` repositories; the index's
    /// `results` (`name`, `description`, `star_count`, `is_official`, `is_automated`).
    pub async fn search(&self, term: &str, limit: u32) -> Result<serde_json::Value, RegistryError> {
        let (host, query) = split_search_term(term);
        self.on_endpoint(host, |ep| async move {
            let url = format!(
                "{}://{}/v1/search?q={}&n={limit}",
                ep.scheme,
                ep.host,
                encode(query)
            );
            let what = format!("GET {url}");
            let resp = ep
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| from_reqwest(&e, host, &what))?;
            let status = resp.status().as_u16();
            if !resp.status().is_success() {
                let text = body_text(resp).await;
                return Err(status_error(host.to_owned(), &what, url, status, text));
            }
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| from_reqwest(&e, host, &what))?;
            let parsed: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
                    host: host.to_owned(),
                    message: format!("{what}: the answer is not JSON: {e}"),
                })?;
            Ok(parsed["results"].clone())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_name_their_index() {
        assert_eq!(split_search_term("busybox"), ("index.docker.io", "busybox"));
        assert_eq!(
            split_search_term("user/app"),
            ("index.docker.io", "user/app")
        );
        assert_eq!(
            split_search_term("localhost:5000/box"),
            ("localhost:5000", "box")
        );
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}
