//! The network verbs over a private root: records, filters, events, the default `bridge`.

use super::*;
use pelagos_model::events::TimeRange;
use pelagos_network::create::{IpamConfigRequest, NetworkCreateRequest};
use pelagos_network::EndpointRequest;

fn engine(dir: &std::path::Path, config: &str) -> Engine {
    let config_file = dir.join("config.toml");
    std::fs::write(&config_file, config).unwrap();
    Engine::open(crate::EngineOptions {
        root: dir.join("root"),
        runroot: dir.join("run"),
        config_file,
        ..Default::default()
    })
    .unwrap()
}

fn request(name: &str, subnet: &str, labels: &[(&str, &str)]) -> NetworkCreate {
    let mut r = NetworkCreateRequest {
        name: name.into(),
        ..Default::default()
    };
    if !subnet.is_empty() {
        r.ipam.config.push(IpamConfigRequest {
            subnet: subnet.into(),
            ..Default::default()
        });
    }
    r.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    NetworkCreate::parse(r).unwrap()
}

/// The names, sorted (the store lists oldest first; the CLI sorts by name).
fn names(records: &[NetworkRecord]) -> Vec<&str> {
    let mut names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    names
}

fn all(e: &Engine) -> Vec<NetworkRecord> {
    list(e, &NetworkListFilter::default()).unwrap()
}

#[test]
fn default_bridge_comes_from_the_settings() {
    let d = tempfile::tempdir().unwrap();
    let e = engine(
        d.path(),
        "[network]\nsubnet = \"10.123.0.0/24\"\nmtu = 1400\n",
    );
    let n = all(&e);
    assert_eq!(names(&n), ["bridge", "host", "none"]);
    let bridge = inspect(&e, "bridge").unwrap();
    assert_eq!(bridge.ipam.config[0].subnet.to_string(), "10.123.0.0/24");
    assert_eq!(bridge.ipam.config[0].gateway.to_string(), "10.123.0.1");
    assert_eq!(bridge.options["com.docker.network.driver.mtu"], "1400");
    assert!(bridge.containers.is_empty());
    // Made once: the same id every time.
    assert_eq!(inspect(&e, "bridge").unwrap().id, bridge.id);
}

#[test]
fn default_subnet_is_dockers() {
    let d = tempfile::tempdir().unwrap();
    let e = engine(d.path(), "");
    let bridge = inspect(&e, "bridge").unwrap();
    assert_eq!(bridge.ipam.config[0].subnet.to_string(), "172.17.0.0/16");
}

#[test]
fn create_list_remove_with_events() {
    let d = tempfile::tempdir().unwrap();
    let e = engine(d.path(), "");
    let app = create(&e, &request("app", "10.77.0.0/24", &[("tier", "web")])).unwrap();
    create(&e, &request("db", "", &[])).unwrap();
    let e2 = create(&e, &request("clash", "10.77.0.128/25", &[])).unwrap_err();
    assert_eq!(e2.kind(), pelagos_model::ErrorKind::Conflict);
    let f = |args: &[&str]| list(&e, &NetworkListFilter::parse(args).unwrap()).unwrap();
    assert_eq!(names(&f(&["label=tier"])), ["app"]);
    assert_eq!(names(&f(&["type=custom"])), ["app", "db"]);
    assert_eq!(names(&f(&["type=builtin"])), ["bridge", "host", "none"]);
    assert_eq!(names(&f(&["dangling=true"])), ["app", "db"]);
    let resource = inspect(&e, &app.id[..6]).unwrap();
    assert_eq!(resource.name, "app");
    let outcomes = remove_many(&e, &["app", "nope", "host"]);
    assert_eq!(outcomes[0].as_ref().unwrap().id, app.id);
    let err = |i: usize| outcomes[i].as_ref().unwrap_err().to_string();
    assert_eq!(err(1), "network nope not found");
    assert_eq!(
        err(2),
        "host is a pre-defined network and cannot be removed"
    );
    let mut lines = Vec::new();
    e.events()
        .read(&TimeRange::default(), &mut |ev| {
            lines.push(format!("{} {}", ev.action, ev.actor.attributes["name"]));
            Ok(())
        })
        .unwrap();
    assert_eq!(lines, ["create app", "create db", "destroy app"]);
}

#[test]
fn used_networks_stay_and_prune_takes_the_rest() {
    let d = tempfile::tempdir().unwrap();
    let e = engine(d.path(), "");
    let used = create(&e, &request("used", "", &[])).unwrap();
    create(&e, &request("idle", "", &[])).unwrap();
    create(&e, &request("kept", "", &[("keep", "")])).unwrap();
    let endpoint = EndpointRequest {
        container_id: "c".repeat(64),
        name: "web".into(),
        ..Default::default()
    };
    e.networks().allocate(&used, &endpoint).unwrap();
    let used_view = inspect(&e, "used").unwrap();
    assert_eq!(used_view.containers[&"c".repeat(64)].name, "web");
    let in_use = remove(&e, "used").unwrap_err();
    assert_eq!(in_use.kind(), pelagos_model::ErrorKind::Conflict);
    assert!(in_use.to_string().contains("has active endpoints"));
    let f = |args: &[&str]| list(&e, &NetworkListFilter::parse(args).unwrap()).unwrap();
    assert_eq!(
        names(&f(&["dangling=false"])),
        ["bridge", "host", "none", "used"]
    );
    let removed = prune(&e, &prune_filter(&["label!=keep"]).unwrap()).unwrap();
    assert_eq!(names(&removed), ["idle"]);
    assert_eq!(names(&all(&e)), ["bridge", "host", "kept", "none", "used"]);
    assert!(prune_filter(&["dangling=true"]).is_err());
}

#[test]
fn a_bad_network_table_fails_to_open() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("config.toml"), "[network]\nbip = \"x\"\n").unwrap();
    let opened = Engine::open(crate::EngineOptions {
        root: d.path().join("root"),
        runroot: d.path().join("run"),
        config_file: d.path().join("config.toml"),
        ..Default::default()
    });
    let Err(err) = opened else {
        panic!("opened with a bad [network] table")
    };
    assert!(
        err.to_string().contains("network.bip: unknown key"),
        "{err}"
    );
}
