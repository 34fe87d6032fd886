//! `ps --filter`: Docker's container filters, parsed once into types and matched against
//! reconciled records (values of one key OR, different keys AND; `label` values AND).

use std::time::SystemTime;

use pelagos_model::filters::{port_keys, FilterError, Filters};
use pelagos_model::record::ContainerRecord;
use pelagos_model::state::{HealthStatus, Status};

use crate::error::{Error, Result};
use crate::Engine;

/// The keys Docker's `ps` accepts that this engine filters on.
const KEYS: &[&str] = &[
    "status", "label", "name", "id", "ancestor", "exited", "before", "since", "health", "volume",
    "is-task", "publish", "expose", "network",
];

/// A container's health as the `health` filter names it (`none` without a healthcheck).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthFilter {
    Starting,
    Healthy,
    Unhealthy,
    None,
}

/// Parsed `--filter` values.
#[derive(Debug, Clone, Default)]
pub struct PsFilter {
    status: Vec<Status>,
    /// Every filter as given: `label` (`key` or `key=value`, all must match) is read here.
    parsed: Filters,
    names: Vec<String>,
    ids: Vec<String>,
    /// Image ids (with their layer chains) the container's image must be or descend from;
    /// `Some(empty)` when no value named a known image (nothing matches, as Docker).
    ancestors: Option<Vec<(String, Vec<String>)>>,
    exited: Vec<i64>,
    health: Vec<HealthFilter>,
    volumes: Vec<String>,
    /// Container ports (`80/tcp`) of which one must be bound (`HostConfig.PortBindings`).
    publish: Vec<String>,
    /// Container ports of which one must be exposed (`Config.ExposedPorts`).
    expose: Vec<String>,
    /// Network names or full ids of which the container must be on one (moby's exact match).
    networks: Vec<String>,
    /// `is-task=true`: only swarm tasks, of which there are none here.
    tasks_only: bool,
    /// Creation time bounds from `before` and `since`.
    before: Option<SystemTime>,
    since: Option<SystemTime>,
}

fn invalid(key: &str, value: &str) -> Error {
    FilterError::Value {
        key: key.to_string(),
        value: value.to_string(),
    }
    .into()
}

impl PsFilter {
    /// Parses `key=value` filters as Docker does, resolving names (`before`, `since`,
    /// `ancestor`) against the store.
    pub fn parse(engine: &Engine, filters: &[String]) -> Result<PsFilter> {
        let parsed = Filters::parse(filters, KEYS)?;
        let mut f = PsFilter {
            parsed: parsed.clone(),
            ..PsFilter::default()
        };
        for key in KEYS {
            for value in parsed.get(key) {
                f.add(engine, key, value)?;
            }
        }
        Ok(f)
    }

    fn add(&mut self, engine: &Engine, key: &str, value: &str) -> Result<()> {
        match key {
            "status" => self.status.push(parse_status(value)?),
            "label" => {} // matched through `parsed`
            "name" => self.names.push(value.to_string()),
            "id" => self.ids.push(value.to_string()),
            "exited" => self
                .exited
                .push(value.parse().map_err(|_| invalid("exited", value))?),
            "health" => self.health.push(match value {
                "starting" => HealthFilter::Starting,
                "healthy" => HealthFilter::Healthy,
                "unhealthy" => HealthFilter::Unhealthy,
                "none" => HealthFilter::None,
                _ => {
                    return Err(FilterError::Other(format!(
                        "Unrecognised filter value for health: {value}"
                    ))
                    .into())
                }
            }),
            "volume" => self.volumes.push(value.to_string()),
            "publish" => self.publish.extend(port_keys(key, value)?),
            "expose" => self.expose.extend(port_keys(key, value)?),
            "network" => self.networks.push(value.to_string()),
            "is-task" => match value {
                "true" => self.tasks_only = true,
                "false" => {}
                _ => return Err(invalid("is-task", value)),
            },
            "before" => self.before = Some(bound(engine, value)?),
            "since" => self.since = Some(bound(engine, value)?),
            "ancestor" => {
                let known = self.ancestors.get_or_insert_with(Vec::new);
                // An unknown image matches nothing (Docker logs it and goes on).
                if let Ok(image) = engine.images().get(value) {
                    known.push((image.id.to_string(), chain(&image)));
                }
            }
            _ => return Err(FilterError::Key(key.to_string()).into()),
        }
        Ok(())
    }

    /// Whether the listing must include stopped containers (`status` asks for states).
    pub fn wants_all(&self) -> bool {
        !self.status.is_empty()
    }

    /// Whether `r` passes every filter.
    pub fn matches(&self, engine: &Engine, r: &ContainerRecord) -> bool {
        let created = created_at(&r.created);
        !self.tasks_only
            && any_or_empty(&self.status, |s| *s == r.state.status)
            && self.parsed.labels_match(&r.config.labels)
            && any_or_empty(&self.names, |n| r.name.contains(n.trim_start_matches('/')))
            && any_or_empty(&self.ids, |i| r.id.to_string().starts_with(i.as_str()))
            && any_or_empty(&self.exited, |c| {
                r.state.status == Status::Exited && i64::from(r.state.exit_code) == *c
            })
            && any_or_empty(&self.health, |h| *h == health_of(r))
            && any_or_empty(&self.volumes, |v| {
                r.mounts.iter().any(|m| m.name == *v || m.destination == *v)
            })
            && any_or_empty(&self.publish, |p| {
                r.host_config.port_bindings.contains_key(p)
            })
            && any_or_empty(&self.expose, |p| {
                r.config
                    .exposed_ports
                    .as_ref()
                    .is_some_and(|e| e.contains_key(p))
            })
            && any_or_empty(&self.networks, |n| {
                r.networking
                    .endpoints_config
                    .iter()
                    .any(|(name, e)| name == n || e.network_id == *n)
            })
            && self.before.as_ref().is_none_or(|b| created < *b)
            && self.since.as_ref().is_none_or(|s| created > *s)
            && self.ancestor_matches(engine, r)
    }

    fn ancestor_matches(&self, engine: &Engine, r: &ContainerRecord) -> bool {
        let Some(ancestors) = &self.ancestors else {
            return true;
        };
        let image_chain = engine
            .images()
            .get(&r.image_id)
            .map(|i| chain(&i))
            .unwrap_or_default();
        ancestors.iter().any(|(id, layers)| {
            *id == r.image_id
                || (!layers.is_empty()
                    && image_chain.len() > layers.len()
                    && image_chain.starts_with(layers))
        })
    }
}

/// Docker's status names (`container.IsValidStateString`).
fn parse_status(value: &str) -> Result<Status> {
    Ok(match value {
        "created" => Status::Created,
        "restarting" => Status::Restarting,
        "running" => Status::Running,
        "removing" => Status::Removing,
        "paused" => Status::Paused,
        "exited" => Status::Exited,
        "dead" => Status::Dead,
        _ => return Err(invalid("status", value)),
    })
}

/// The layer chain of an image: a descendant's starts with its ancestor's.
fn chain(image: &pelagos_image::ImageRecord) -> Vec<String> {
    image.chain_ids.iter().map(|d| d.to_string()).collect()
}

/// The creation time of the container `before`/`since` names.
fn bound(engine: &Engine, name_or_id: &str) -> Result<SystemTime> {
    let r = super::lookup(engine, name_or_id)?;
    Ok(created_at(&r.created))
}

fn created_at(rfc3339: &str) -> SystemTime {
    humantime::parse_rfc3339_weak(rfc3339).unwrap_or(SystemTime::UNIX_EPOCH)
}

fn health_of(r: &ContainerRecord) -> HealthFilter {
    match r.state.health.as_ref().map(|h| h.status) {
        Some(HealthStatus::Starting) => HealthFilter::Starting,
        Some(HealthStatus::Healthy) => HealthFilter::Healthy,
        Some(HealthStatus::Unhealthy) => HealthFilter::Unhealthy,
        None => HealthFilter::None,
    }
}

fn any_or_empty<T>(values: &[T], pred: impl Fn(&T) -> bool) -> bool {
    values.is_empty() || values.iter().any(pred)
}
