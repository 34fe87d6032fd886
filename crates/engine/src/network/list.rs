//! `network ls --filter` with moby's rules: `driver`, `id`, `label`, `name`, `scope`,
//! `type=custom|builtin` and `dangling`; values of one key OR, different keys AND.

use pelagos_model::filters::{FilterError, Filters};
use pelagos_network::NetworkRecord;

/// The keys `network ls --filter` accepts (moby's `acceptedFilters`).
const LIST_KEYS: &[&str] = &["dangling", "driver", "id", "label", "name", "scope", "type"];

/// `network ls --filter`, checked before anything is listed.
#[derive(Debug, Clone, Default)]
pub struct NetworkListFilter {
    filters: Filters,
    /// `type=builtin` (the predefined networks) and `type=custom` (the others).
    builtin: bool,
    custom: bool,
    /// `dangling=true`: only user networks without endpoints; `false`: the others.
    dangling: Option<bool>,
}

impl NetworkListFilter {
    /// Parses the filters as Docker's CLI and daemon do.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<NetworkListFilter, FilterError> {
        let filters = Filters::parse(args, LIST_KEYS)?;
        let (mut builtin, mut custom) = (false, false);
        for kind in filters.get("type") {
            match kind.as_str() {
                "builtin" => builtin = true,
                "custom" => custom = true,
                other => {
                    return Err(FilterError::Other(format!(
                        "invalid filter: 'type'='{other}'"
                    )))
                }
            }
        }
        let dangling = match filters.contains("dangling") {
            true => Some(filters.bool_or("dangling", false)?),
            false => None,
        };
        Ok(NetworkListFilter {
            filters,
            builtin,
            custom,
            dangling,
        })
    }

    /// Whether `n` passes; `in_use` says whether it has endpoints.
    pub fn matches(&self, n: &NetworkRecord, in_use: bool) -> bool {
        let predefined = n.is_predefined();
        let type_ok = !self.filters.contains("type")
            || (self.builtin && predefined)
            || (self.custom && !predefined);
        let dangling_ok = self.dangling.is_none_or(|d| d == (!predefined && !in_use));
        self.filters.exact("driver", &n.driver)
            && self.filters.exact("scope", &n.scope)
            && self.filters.substring("name", &n.name)
            && self.filters.substring("id", &n.id)
            && self.filters.labels_match(&n.labels)
            && type_ok
            && dangling_ok
    }

    /// Whether matching needs to know which networks have endpoints.
    pub fn needs_endpoints(&self) -> bool {
        self.dangling.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn record(name: &str, id: &str, driver: &str, labels: &[(&str, &str)]) -> NetworkRecord {
        let mut r: NetworkRecord = serde_json::from_value(serde_json::json!({
            "Name": name, "Id": id, "Created": "", "Scope": "local", "Driver": driver,
            "EnableIPv6": false, "IPAM": {"Driver": "default", "Config": [], "Options": {}},
            "Internal": false, "Attachable": false, "Ingress": false, "Options": {},
            "Labels": {}
        }))
        .unwrap();
        r.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>();
        r
    }

    #[test]
    fn filters_as_moby() {
        let app = record("app-net", "abc123", "bridge", &[("tier", "web")]);
        let host = record("host", "ff00", "host", &[]);
        let f = |args: &[&str]| NetworkListFilter::parse(args).unwrap();
        assert!(f(&[]).matches(&app, false));
        assert!(f(&["name=app", "name=db"]).matches(&app, false));
        assert!(!f(&["name=db"]).matches(&app, false));
        assert!(f(&["id=abc"]).matches(&app, false) && !f(&["id=ff"]).matches(&app, false));
        assert!(f(&["driver=host"]).matches(&host, false));
        assert!(!f(&["driver=host"]).matches(&app, false));
        assert!(f(&["label=tier=web"]).matches(&app, false));
        assert!(!f(&["label=tier"]).matches(&host, false));
        assert!(f(&["scope=local"]).matches(&app, false));
        assert!(!f(&["scope=swarm"]).matches(&app, false));
        assert!(f(&["type=builtin"]).matches(&host, false));
        assert!(!f(&["type=builtin"]).matches(&app, false));
        assert!(f(&["type=custom", "type=builtin"]).matches(&app, false));
        assert!(f(&["dangling=true"]).matches(&app, false));
        assert!(!f(&["dangling=true"]).matches(&app, true));
        assert!(!f(&["dangling=true"]).matches(&host, false));
        assert!(f(&["dangling=false"]).matches(&host, false));
        assert!(f(&["dangling=0"]).matches(&app, true));
    }

    #[test]
    fn refuses_what_moby_refuses() {
        let e = |args: &[&str]| NetworkListFilter::parse(args).unwrap_err().to_string();
        assert_eq!(e(&["until=1h"]), "invalid filter 'until'");
        assert_eq!(e(&["type=other"]), "invalid filter: 'type'='other'");
        assert_eq!(e(&["dangling=maybe"]), "invalid filter 'dangling=maybe'");
    }
}
