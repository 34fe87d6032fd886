//! Named and anonymous volumes: the model's store (`pelagos_model::volumes`), which the
//! monitor also uses to make and fill them at a container's first start; `volume ls` and
//! `volume prune` with Docker's filters.

use pelagos_model::filters::{FilterError, Filters};
pub use pelagos_model::volumes::*;

use crate::error::Result;
use crate::Engine;

/// The keys `volume ls --filter` accepts (moby's `acceptedListFilterTags`).
const LIST_KEYS: &[&str] = &["dangling", "name", "driver", "label"];

/// The keys `volume prune --filter` accepts (moby's `acceptedPruneFilters`).
pub const PRUNE_KEYS: &[&str] = &["label", "label!", "all"];

/// `volume ls --filter`: values of one key OR, different keys AND, `label` values AND.
#[derive(Debug, Clone, Default)]
pub struct VolumeListFilter {
    filters: Filters,
    /// `dangling=true`: only unused volumes; `false`: only used ones.
    dangling: Option<bool>,
}

impl VolumeListFilter {
    /// Parses and checks the filters before anything is listed.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<VolumeListFilter, FilterError> {
        let filters = Filters::parse(args, LIST_KEYS)?;
        let dangling = match filters.contains("dangling") {
            true => Some(filters.bool_or("dangling", false)?),
            false => None,
        };
        Ok(VolumeListFilter { filters, dangling })
    }

    /// Whether `v` passes; `used` says whether a container uses it.
    pub fn matches(&self, v: &VolumeRecord, used: bool) -> bool {
        self.filters.exact("driver", &v.driver)
            && self.filters.substring("name", &v.name)
            && self.filters.labels_match(&v.labels)
            && self.dangling.is_none_or(|d| d != used)
    }
}

/// `volume prune --filter`: `label`, `label!`, and `all` (every unused volume, not only the
/// anonymous ones).
#[derive(Debug, Clone, Default)]
pub struct VolumePruneFilter {
    filters: Filters,
    all: bool,
}

impl VolumePruneFilter {
    /// Parses and checks the filters; `all` is `-a` (as `--filter all=true`).
    pub fn parse<S: AsRef<str>>(args: &[S], all: bool) -> Result<VolumePruneFilter, FilterError> {
        let mut filters = Filters::parse(args, PRUNE_KEYS)?;
        if all {
            filters.add("all", "true");
        }
        let all = match filters.get("all") {
            [] => false,
            [one] => go_bool(one).ok_or_else(|| {
                FilterError::Other(format!(
                    "invalid filter 'all': strconv.ParseBool: parsing {one:?}: invalid syntax"
                ))
            })?,
            _ => {
                return Err(FilterError::Other(format!(
                    "invalid filter 'all=[{}]': only one value is expected",
                    filters.get("all").join(" ")
                )))
            }
        };
        Ok(VolumePruneFilter { filters, all })
    }

    /// Whether the unused volume `v` goes.
    pub fn selects(&self, v: &VolumeRecord) -> bool {
        (self.all || v.is_anonymous()) && self.filters.labels_match(&v.labels)
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The volumes `filter` lets through, by name.
pub fn list(engine: &Engine, filter: &VolumeListFilter) -> Result<Vec<VolumeRecord>> {
    let used = engine.containers().volumes_in_use()?;
    Ok(engine
        .volumes()
        .list()?
        .into_iter()
        .filter(|v| filter.matches(v, used.contains(&v.name)))
        .collect())
}

/// Removes the unused volumes `filter` selects: their names and the bytes reclaimed.
pub fn prune(engine: &Engine, filter: &VolumePruneFilter) -> Result<(Vec<String>, u64)> {
    let used = engine.containers().volumes_in_use()?;
    Ok(engine
        .volumes()
        .prune(&|v| !used.contains(&v.name) && filter.selects(v))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn volume(name: &str, labels: &[(&str, &str)]) -> VolumeRecord {
        VolumeRecord {
            name: name.into(),
            driver: "local".into(),
            mountpoint: "/nowhere".into(),
            created_at: String::new(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            scope: "local".into(),
        }
    }

    #[test]
    fn list_filters_or_within_a_key_and_across_keys() {
        let web = volume("web-data", &[("app", "web")]);
        let db = volume("db-data", &[("app", "db"), ("tier", "back")]);
        let f = |args: &[&str]| VolumeListFilter::parse(args).unwrap();
        assert!(f(&[]).matches(&web, true));
        assert!(f(&["name=web", "name=db"]).matches(&db, false));
        assert!(!f(&["name=web", "label=tier"]).matches(&web, false));
        assert!(f(&["label=app=db", "label=tier"]).matches(&db, false));
        assert!(!f(&["label=app=db"]).matches(&web, false));
        assert!(f(&["driver=local"]).matches(&web, false));
        assert!(!f(&["driver=nfs"]).matches(&web, false));
        assert!(f(&["dangling=true"]).matches(&web, false));
        assert!(!f(&["dangling=1"]).matches(&web, true));
        assert!(f(&["dangling=false"]).matches(&web, true));
        let err = |args: &[&str]| VolumeListFilter::parse(args).unwrap_err().to_string();
        assert_eq!(err(&["x=1"]), "invalid filter 'x'");
        assert_eq!(err(&["label!=a"]), "invalid filter 'label!'");
        assert_eq!(err(&["dangling=maybe"]), "invalid filter 'dangling=maybe'");
    }

    #[test]
    fn prune_takes_anonymous_volumes_unless_all() {
        let anon = volume("0123", &[(ANONYMOUS_LABEL, "")]);
        let named = volume("data", &[("keep", "yes")]);
        let f = |args: &[&str], all| VolumePruneFilter::parse(args, all).unwrap();
        assert!(f(&[], false).selects(&anon) && !f(&[], false).selects(&named));
        assert!(f(&[], true).selects(&named));
        assert!(f(&["all=1"], false).selects(&named));
        assert!(!f(&["all=true", "label!=keep"], false).selects(&named));
        assert!(f(&["all=true", "label=keep=yes"], false).selects(&named));
        assert!(!f(&["all=false"], false).selects(&named));
        let err = |args: &[&str], all| VolumePruneFilter::parse(args, all).unwrap_err();
        assert_eq!(
            err(&["until=10m"], false).to_string(),
            "invalid filter 'until'"
        );
        assert!(err(&["all=false"], true)
            .to_string()
            .contains("only one value is expected"));
        assert!(err(&["all=maybe"], false)
            .to_string()
            .contains("invalid filter 'all'"));
    }
}
