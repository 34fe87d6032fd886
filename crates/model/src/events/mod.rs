//! Docker's events (`docker events`, API 1.41 `EventMessage`) without a daemon: each action
//! appends its event to a bounded log under the root, which `pelagos events` reads and follows.
//!
//! * [`Event`]: the message, with Docker's JSON shape (and its deprecated `status`, `id`,
//!   `from` for containers and images);
//! * [`EventLog`]: JSON lines in `<root>/events/`, appended under a lock, rotated by size into
//!   one older file, read and followed from any process;
//! * [`Filter`]: Docker's `--filter` rules over events.

mod filter;
mod log;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::record::ContainerRecord;

pub use filter::Filter;
pub use log::{EventLog, TimeRange, DEFAULT_MAX_FILE_BYTES, LOG_FILE, OLD_FILE};

/// What an event is about (Docker's `Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Container,
    Image,
    Volume,
    Network,
    Daemon,
}

impl EventType {
    /// Docker's name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Container => "container",
            EventType::Image => "image",
            EventType::Volume => "volume",
            EventType::Network => "network",
            EventType::Daemon => "daemon",
        }
    }
}

/// The object an event is about: its id (or name) and attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One event, as Docker's API sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Deprecated: the action (containers and images).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Deprecated: the actor's id (containers and images).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Deprecated: a container's image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(rename = "Type")]
    pub kind: EventType,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// Always `local` (no swarm).
    pub scope: String,
    /// Seconds since the epoch.
    pub time: i64,
    /// Nanoseconds since the epoch.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Event {
    /// An event now, with Docker's deprecated fields filled as its daemon does.
    pub fn new(
        kind: EventType,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) -> Event {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let (status, deprecated_id, from) = match kind {
            EventType::Container => (
                action.to_string(),
                id.to_string(),
                attributes.get("image").cloned().unwrap_or_default(),
            ),
            EventType::Image => (action.to_string(), id.to_string(), String::new()),
            _ => (String::new(), String::new(), String::new()),
        };
        Event {
            status,
            id: deprecated_id,
            from,
            kind,
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".into(),
            time: nanos.div_euclid(1_000_000_000),
            time_nano: nanos,
        }
    }

    /// A container's event: its labels, `image` and `name`, as Docker's
    /// `LogContainerEventWithAttributes`.
    pub fn container(record: &ContainerRecord, action: &str) -> Event {
        let mut attributes = record.config.labels.clone();
        attributes.insert("image".into(), record.config.image.clone());
        attributes.insert(
            "name".into(),
            record.name.trim_start_matches('/').to_string(),
        );
        Event::new(EventType::Container, action, record.id.as_str(), attributes)
    }

    /// An image's event: Actor.ID the image's id or reference, `name` its reference.
    pub fn image(action: &str, id: &str, name: &str) -> Event {
        let attributes = BTreeMap::from([("name".to_string(), name.to_string())]);
        Event::new(EventType::Image, action, id, attributes)
    }

    /// A volume's event: Actor.ID its name, `driver` local.
    pub fn volume(action: &str, name: &str) -> Event {
        let attributes = BTreeMap::from([("driver".to_string(), "local".to_string())]);
        Event::new(EventType::Volume, action, name, attributes)
    }

    /// A network's event (moby's `LogNetworkEventWithAttributes`): Actor.ID its id, `name`
    /// its name, `type` its driver.
    pub fn network(action: &str, id: &str, name: &str, driver: &str) -> Event {
        let attributes = BTreeMap::from([
            ("name".to_string(), name.to_string()),
            ("type".to_string(), driver.to_string()),
        ]);
        Event::new(EventType::Network, action, id, attributes)
    }

    /// The event with one more attribute.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Event {
        self.actor.attributes.insert(key.into(), value.into());
        self
    }

    /// When it happened.
    pub fn system_time(&self) -> SystemTime {
        if self.time_nano >= 0 {
            UNIX_EPOCH + std::time::Duration::from_nanos(self.time_nano as u64)
        } else {
            UNIX_EPOCH
        }
    }

    /// Docker's text line: `TIME TYPE ACTION ID (k=v, ...)`, attributes sorted by key, the
    /// time in UTC with nanoseconds.
    pub fn to_text(&self) -> String {
        let time = humantime::format_rfc3339_nanos(self.system_time());
        let mut line = format!(
            "{time} {} {} {}",
            self.kind.as_str(),
            self.action,
            self.actor.id
        );
        if !self.actor.attributes.is_empty() {
            let attrs: Vec<String> = self
                .actor
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            line.push_str(&format!(" ({})", attrs.join(", ")));
        }
        line
    }
}

#[cfg(test)]
mod tests;
