//! Docker's `--filter key=value` arguments (moby's `filters.Args`), parsed once at the edge
//! and checked against the keys a command accepts; the matchers the commands share.

use std::collections::BTreeMap;
use std::time::SystemTime;

/// What is wrong with a filter, in the daemon's words (`invalid filter 'x'`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// No `=` in the argument: Docker's CLI refuses it as a flag value.
    #[error("bad format of filter (expected name=value)")]
    BadFormat(String),
    /// A key the command does not accept.
    #[error("invalid filter '{0}'")]
    Key(String),
    /// A value the key does not accept (several shown as Go prints a list: `[a b]`).
    #[error("invalid filter '{key}={value}'")]
    Value { key: String, value: String },
    /// Anything else the daemon refuses (`more than one until filter specified`).
    #[error("{0}")]
    Other(String),
}

/// Shell-style `*` and `?` matching where neither crosses a `/` (Go's `path.Match`, which
/// Docker's `reference` filters use).
pub fn path_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                go(&p[1..], t) || (t.first().is_some_and(|c| *c != b'/') && go(p, &t[1..]))
            }
            (Some(b'?'), Some(c)) if *c != b'/' => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// Parsed filters: each key with its distinct values, sorted (moby keeps a set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    values: BTreeMap<String, Vec<String>>,
}

impl Filters {
    /// Parses `key=value` arguments as Docker's CLI does (key trimmed and lower-cased, value
    /// trimmed), then refuses keys not in `accepted`, as the daemon does.
    pub fn parse<S: AsRef<str>>(args: &[S], accepted: &[&str]) -> Result<Filters, FilterError> {
        let mut filters = Filters::default();
        for arg in args {
            let arg = arg.as_ref();
            let (key, value) = arg
                .split_once('=')
                .ok_or_else(|| FilterError::BadFormat(arg.to_string()))?;
            filters.add(&key.trim().to_ascii_lowercase(), value.trim());
        }
        filters.validate(accepted)?;
        Ok(filters)
    }

    /// Refuses the first key not in `accepted`.
    pub fn validate(&self, accepted: &[&str]) -> Result<(), FilterError> {
        match self.values.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(k) => Err(FilterError::Key(k.clone())),
            None => Ok(()),
        }
    }

    /// Adds a value (a repeated one is kept once).
    pub fn add(&mut self, key: &str, value: &str) {
        let values = self.values.entry(key.to_string()).or_default();
        if let Err(at) = values.binary_search_by(|v| v.as_str().cmp(value)) {
            values.insert(at, value.to_string());
        }
    }

    /// The values of `key` (none when absent).
    pub fn get(&self, key: &str) -> &[String] {
        self.values.get(key).map_or(&[], Vec::as_slice)
    }

    /// Whether `key` was given.
    pub fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// Whether no filter was given.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// No `key`, or one of its values is `source`.
    pub fn exact(&self, key: &str, source: &str) -> bool {
        !self.contains(key) || self.get(key).iter().any(|v| v == source)
    }

    /// No `key`, or one of its values is found in `source` (a plain-text subset of moby's
    /// regular-expression match).
    pub fn substring(&self, key: &str, source: &str) -> bool {
        !self.contains(key) || self.get(key).iter().any(|v| source.contains(v.as_str()))
    }

    /// moby's `GetBoolOrDefault`: `true`/`1` or `false`/`0`; both or neither is an error.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, FilterError> {
        let values = self.get(key);
        if !self.contains(key) {
            return Ok(default);
        }
        let is_true = values.iter().any(|v| v == "true" || v == "1");
        let is_false = values.iter().any(|v| v == "false" || v == "0");
        if is_true == is_false {
            return Err(self.invalid_value(key));
        }
        Ok(is_true)
    }

    /// `invalid filter 'key=[v1 v2]'` (one value without brackets).
    pub fn invalid_value(&self, key: &str) -> FilterError {
        let values = self.get(key);
        let value = match values {
            [one] => one.clone(),
            many => format!("[{}]", many.join(" ")),
        };
        FilterError::Value {
            key: key.to_string(),
            value,
        }
    }

    /// moby's prune label rule: every `label` value holds (`k` present, `k=v` equal), and
    /// not every `label!` value holds.
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        kv_all(self.get("label"), labels)
            && (!self.contains("label!") || !kv_all(self.get("label!"), labels))
    }

    /// The one `until` value as a time (a duration before `now`, unix seconds or RFC 3339).
    pub fn until(&self, now: SystemTime) -> Result<Option<SystemTime>, FilterError> {
        match self.get("until") {
            [] => Ok(None),
            [one] => crate::timestamp::parse(one, now)
                .map(Some)
                .map_err(|e| FilterError::Other(e.to_string())),
            _ => Err(FilterError::Other(
                "more than one until filter specified".into(),
            )),
        }
    }
}

/// moby's `portOp` for `ps --filter publish=` / `expose=`: `PORT[-END][/PROTO]` (tcp when no
/// protocol is given) → the port keys it names (`"80/tcp"`, each port of a range).
pub fn port_keys(key: &str, value: &str) -> Result<Vec<String>, FilterError> {
    if value.contains(':') {
        return Err(FilterError::Other(format!(
            "filter for '{key}' should not contain ':': {value}"
        )));
    }
    let (ports, proto) = value.split_once('/').unwrap_or((value, "tcp"));
    let proto = match proto.split('/').next() {
        Some("") | None => "tcp",
        Some(p) => p,
    };
    let lookup = |why: String| {
        FilterError::Other(format!("error while looking up for {key} {value}: {why}"))
    };
    let (first, last) = port_range(ports).map_err(lookup)?;
    Ok((first..=last).map(|p| format!("{p}/{proto}")).collect())
}

/// Go's `nat.ParsePortRange` with its errors (`strconv.ParseUint` words for a bad number).
fn port_range(ports: &str) -> Result<(u16, u16), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let number = |text: &str| -> Result<u16, String> {
        let why = if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            "invalid syntax"
        } else {
            "value out of range"
        };
        text.parse::<u16>()
            .map_err(|_| format!("strconv.ParseUint: parsing {text:?}: {why}"))
    };
    let Some((first, rest)) = ports.split_once('-') else {
        let port = number(ports)?;
        return Ok((port, port));
    };
    let last = rest.split('-').next().unwrap_or(rest);
    let (first, last) = (number(first)?, number(last)?);
    if last < first {
        return Err(format!("Invalid range specified for the Port: {ports}"));
    }
    Ok((first, last))
}

/// moby's `MatchKVList`: every `k` or `k=v` holds in `labels` (true without values).
fn kv_all(wanted: &[String], labels: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(w.as_str()),
    })
}

/// A prune's filters: `label`, `label!` and `until` checked and the time resolved once.
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    filters: Filters,
    until: Option<SystemTime>,
}

impl PruneFilter {
    /// Parses prune filters, accepting `accepted` (`until` among them or not).
    pub fn parse<S: AsRef<str>>(args: &[S], accepted: &[&str]) -> Result<PruneFilter, FilterError> {
        let filters = Filters::parse(args, accepted)?;
        PruneFilter::from_filters(filters)
    }

    /// Resolves `until` of filters already checked.
    pub fn from_filters(filters: Filters) -> Result<PruneFilter, FilterError> {
        let until = filters.until(SystemTime::now())?;
        Ok(PruneFilter { filters, until })
    }

    /// The parsed filters.
    pub fn filters(&self) -> &Filters {
        &self.filters
    }

    /// Whether an object with these labels, created at `created` (unknown: `None`), may go.
    pub fn selects(&self, labels: &BTreeMap<String, String>, created: Option<SystemTime>) -> bool {
        let in_time = match (self.until, created) {
            (None, _) => true,
            (Some(u), Some(c)) => c <= u,
            (Some(_), None) => false,
        };
        in_time && self.filters.labels_match(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_like_dockers_cli_and_checks_keys() {
        let f = Filters::parse(
            &[" Label = a=b ", "label!=c", "label=a=b"],
            &["label", "label!"],
        )
        .unwrap();
        assert_eq!(f.get("label"), ["a=b"]);
        assert_eq!(f.get("label!"), ["c"]);
        assert_eq!(
            Filters::parse(&["x=1"], &["label"])
                .unwrap_err()
                .to_string(),
            "invalid filter 'x'"
        );
        assert_eq!(
            Filters::parse(&["label"], &["label"]).unwrap_err(),
            FilterError::BadFormat("label".into())
        );
    }

    #[test]
    fn bools_as_moby() {
        let f = |args: &[&str]| Filters::parse(args, &["dangling"]).unwrap();
        assert!(f(&["dangling=1"]).bool_or("dangling", false).unwrap());
        assert!(!f(&["dangling=false"]).bool_or("dangling", true).unwrap());
        assert!(f(&[]).bool_or("dangling", true).unwrap());
        let both = f(&["dangling=true", "dangling=false"]);
        assert_eq!(
            both.bool_or("dangling", true).unwrap_err().to_string(),
            "invalid filter 'dangling=[false true]'"
        );
        assert_eq!(
            f(&["dangling=yes"])
                .bool_or("dangling", true)
                .unwrap_err()
                .to_string(),
            "invalid filter 'dangling=yes'"
        );
    }

    #[test]
    fn labels_and_negated_labels() {
        let accepted = ["label", "label!"];
        let f = |args: &[&str]| Filters::parse(args, &accepted).unwrap();
        let l = labels(&[("env", "prod"), ("team", "a")]);
        assert!(f(&[]).labels_match(&l));
        assert!(f(&["label=env"]).labels_match(&l));
        assert!(f(&["label=env=prod", "label=team"]).labels_match(&l));
        assert!(!f(&["label=env=dev"]).labels_match(&l));
        assert!(!f(&["label=env", "label=other"]).labels_match(&l));
        assert!(!f(&["label!=env"]).labels_match(&l));
        assert!(f(&["label!=env=dev"]).labels_match(&l));
        // `label!` excludes only when every one of its values holds.
        assert!(f(&["label!=env", "label!=other"]).labels_match(&l));
        assert!(f(&["label!=env"]).labels_match(&BTreeMap::new()));
    }

    #[test]
    fn port_filters_name_ports_and_ranges_as_moby() {
        assert_eq!(port_keys("publish", "80").unwrap(), ["80/tcp"]);
        assert_eq!(port_keys("publish", "80/").unwrap(), ["80/tcp"]);
        assert_eq!(port_keys("expose", "53/udp").unwrap(), ["53/udp"]);
        assert_eq!(
            port_keys("expose", "8000-8002/tcp").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        let colon = port_keys("publish", "8080:80").unwrap_err();
        assert_eq!(
            colon.to_string(),
            "filter for 'publish' should not contain ':': 8080:80"
        );
        assert_eq!(
            port_keys("expose", "http").unwrap_err().to_string(),
            "error while looking up for expose http: strconv.ParseUint: parsing \"http\": invalid syntax"
        );
        assert_eq!(
            port_keys("publish", "90-80").unwrap_err().to_string(),
            "error while looking up for publish 90-80: Invalid range specified for the Port: 90-80"
        );
        assert!(port_keys("publish", "70000").is_err());
        assert!(port_keys("publish", "").is_err());
    }

    #[test]
    fn until_selects_older_objects() {
        let p = PruneFilter::parse(&["until=1700000000"], &["until"]).unwrap();
        let at = |s| Some(UNIX_EPOCH + Duration::from_secs(s));
        assert!(p.selects(&BTreeMap::new(), at(1_600_000_000)));
        assert!(!p.selects(&BTreeMap::new(), at(1_800_000_000)));
        assert!(!p.selects(&BTreeMap::new(), None));
        assert!(PruneFilter::parse(&["until=10m"], &["until"]).is_ok());
        let two = PruneFilter::parse(&["until=1", "until=2"], &["until"]).unwrap_err();
        assert_eq!(two.to_string(), "more than one until filter specified");
        assert!(PruneFilter::parse(&["until=soon"], &["until"]).is_err());
        assert_eq!(
            PruneFilter::parse(&["until=1"], &["label"])
                .unwrap_err()
                .to_string(),
            "invalid filter 'until'"
        );
    }
}
