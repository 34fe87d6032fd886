//! `docker events --filter`: moby's rules (`daemon/events/filter.go`). Values of one key are
//! alternatives except `label`, whose values must all hold; different keys must all hold.
//! `container`, `volume`, `network` and `daemon` match the actor's id or `name` attribute by
//! prefix; `image` matches a container's `image` or an image's id or `name`, with or without
//! its tag; `event` matches the action (by prefix for `exec_start`, `exec_create` and
//! `health_status`, whose actions carry a suffix).

use std::collections::BTreeMap;

use super::{Event, EventType};
use crate::error::Result;
use crate::filters::Filters;

/// The keys `docker events --filter` accepts.
const KEYS: [&str; 9] = [
    "container",
    "event",
    "image",
    "label",
    "type",
    "volume",
    "network",
    "daemon",
    "scope",
];

/// Parsed `--filter key=value` arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    filters: Filters,
}

impl Filter {
    /// Parses `key=value` arguments; an unknown key or a missing `=` is an error naming it.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Filter> {
        Ok(Filter {
            filters: Filters::parse(args, &KEYS)?,
        })
    }

    /// Whether `event` passes every filter.
    pub fn matches(&self, event: &Event) -> bool {
        let attrs = &event.actor.attributes;
        self.action_matches(&event.action)
            && self.exact("type", event.kind.as_str())
            && self.exact("scope", &event.scope)
            && self.name_matches("daemon", event)
            && self.name_matches("container", event)
            && self.name_matches("volume", event)
            && self.name_matches("network", event)
            && self.image_matches(event)
            && self.labels_match(attrs)
    }

    fn get(&self, key: &str) -> Option<&[String]> {
        Some(self.filters.get(key)).filter(|v| !v.is_empty())
    }

    /// No filter for `key`, or `source` is one of its values.
    fn exact(&self, key: &str, source: &str) -> bool {
        self.get(key).is_none_or(|v| v.iter().any(|v| v == source))
    }

    /// No filter for `key`, or one of its values is `source` or a prefix of it.
    fn fuzzy(&self, key: &str, source: &str) -> bool {
        self.get(key)
            .is_none_or(|v| v.iter().any(|v| source.starts_with(v.as_str())))
    }

    fn action_matches(&self, action: &str) -> bool {
        let suffixed = ["health_status", "exec_create", "exec_start"];
        match self.get("event") {
            Some(v) if v.iter().any(|v| suffixed.contains(&v.as_str())) => {
                self.fuzzy("event", action)
            }
            _ => self.exact("event", action),
        }
    }

    fn name_matches(&self, key: &str, event: &Event) -> bool {
        let name = event
            .actor
            .attributes
            .get("name")
            .map_or("", String::as_str);
        self.get(key).is_none()
            || (self.fuzzy(key, &event.actor.id) && !event.actor.id.is_empty())
            || (!name.is_empty() && self.fuzzy(key, name))
    }

    fn image_matches(&self, event: &Event) -> bool {
        let attr = if event.kind == EventType::Image {
            "name"
        } else {
            "image"
        };
        let name = event.actor.attributes.get(attr).map_or("", String::as_str);
        let id = event.actor.id.as_str();
        self.get("image").is_none()
            || [id, name, strip_tag(id), strip_tag(name)]
                .iter()
                .any(|s| !s.is_empty() && self.exact("image", s))
    }

    /// Every `label` value holds: `key` present, or `key=value` equal.
    fn labels_match(&self, attrs: &BTreeMap<String, String>) -> bool {
        self.filters.labels_match(attrs)
    }
}

/// `busybox:latest` → `busybox` (a port's colon is kept: `host:5000/busybox` stays whole);
/// a digest reference is left as it is.
fn strip_tag(reference: &str) -> &str {
    if reference.contains('@') || reference.starts_with("sha256:") {
        return reference;
    }
    match reference.rfind(':') {
        Some(i) if !reference[i + 1..].contains('/') => &reference[..i],
        _ => reference,
    }
}
