//! `pelagos network …` through the binary: records only (no bridge is made), Docker's output
//! and errors, the predefined networks, filters, formats, prunes and what stays after errors.

mod cli_support;

use cli_support::Env;
use serde_json::Value;

/// The names `network ls --format {{.Name}}` prints, in its order.
fn names(env: &Env, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["network", "ls", "--format", "{{.Name}}"];
    args.extend_from_slice(extra);
    env.ok(&args).lines().map(str::to_string).collect()
}

/// The network directories under the root (records; nothing else is made).
fn stored(env: &Env) -> usize {
    std::fs::read_dir(env.root.join("networks"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0)
}

fn inspect(env: &Env, name: &str) -> Value {
    let text = env.ok(&["network", "inspect", name]);
    let all: Value = serde_json::from_str(&text).expect("inspect prints JSON");
    all[0].clone()
}

#[test]
fn predefined_networks_as_docker_shows_them() {
    let env = Env::new();
    let table = env.ok(&["network", "ls"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "NETWORK ID     NAME      DRIVER    SCOPE");
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let described: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[1], r[2], r[3])).collect();
    assert_eq!(
        described,
        [
            ("bridge", "bridge", "local"),
            ("host", "host", "local"),
            ("none", "null", "local")
        ]
    );
    assert!(rows.iter().all(|r| r[0].len() == 12), "{table}");
    let bridge = inspect(&env, "bridge");
    assert_eq!(bridge["IPAM"]["Config"][0]["Subnet"], "172.17.0.0/16");
    assert_eq!(bridge["IPAM"]["Config"][0]["Gateway"], "172.17.0.1");
    assert_eq!(bridge["Containers"], serde_json::json!({}));
    // Made once, the same id since.
    assert_eq!(inspect(&env, "bridge")["Id"], bridge["Id"]);
    let (code, err) = env.fail(&["network", "rm", "bridge"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "Error response from daemon: bridge is a pre-defined network and cannot be removed\n"
        )
    );
    let (code, err) = env.fail(&["network", "create", "host"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("operation is not permitted on predefined host network"),
        "{err}"
    );
}

#[test]
fn default_bridge_takes_the_configured_subnet() {
    let env = Env::new();
    env.write_config("[network]\nsubnet = \"10.211.0.0/24\"\nmtu = 1400\n");
    let bridge = inspect(&env, "bridge");
    assert_eq!(bridge["IPAM"]["Config"][0]["Subnet"], "10.211.0.0/24");
    assert_eq!(bridge["Options"]["com.docker.network.driver.mtu"], "1400");
}

#[test]
fn create_inspect_remove() {
    let env = Env::new();
    let id = env.ok(&[
        "network",
        "create",
        "--subnet",
        "10.212.0.0/16",
        "--ip-range",
        "10.212.1.0/24",
        "--gateway",
        "10.212.0.254",
        "--internal",
        "--label",
        "tier=web",
        "--label",
        "plain",
        "-o",
        "com.docker.network.bridge.name=br-it-app",
        "app",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    let app = inspect(&env, "app");
    assert_eq!(app["Id"], id);
    assert_eq!(app["Driver"], "bridge");
    assert_eq!(app["Internal"], true);
    assert_eq!(app["Labels"]["tier"], "web");
    assert_eq!(app["Labels"]["plain"], "");
    assert_eq!(app["IPAM"]["Config"][0]["IPRange"], "10.212.1.0/24");
    assert_eq!(app["IPAM"]["Config"][0]["Gateway"], "10.212.0.254");
    assert_eq!(
        app["Options"]["com.docker.network.bridge.name"],
        "br-it-app"
    );
    // Lookup by id prefix; templates.
    let out = env.ok(&[
        "network",
        "inspect",
        "-f",
        "{{.Name}} {{.Internal}}",
        &id[..7],
    ]);
    assert_eq!(out, "app true\n");
    // Found ones printed, then the missing one's error, exit 1.
    let out = env.run(&["network", "inspect", "-f", "{{.Name}}", "app", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "app\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error response from daemon: network nope not found\n"
    );
    // No bridge interface was made: a record only.
    assert!(!std::path::Path::new("/sys/class/net/br-it-app").exists());
    let out = env.run(&["network", "rm", "nope", "app"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "app\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error response from daemon: network nope not found\n"
    );
    assert_eq!(env.ok(&["network", "rm", "-f", "nope"]), "");
    assert_eq!(names(&env, &[]), ["bridge", "host", "none"]);
    let events = env.ok(&[
        "events",
        "--since",
        "1h",
        "--until",
        "0s",
        "--filter",
        "type=network",
    ]);
    let actions: Vec<&str> = events.lines().filter_map(|l| l.split(' ').nth(2)).collect();
    assert_eq!(actions, ["create", "destroy"], "{events}");
}

#[test]
fn refusals_leave_nothing_behind() {
    let env = Env::new();
    env.ok(&["network", "create", "--subnet", "10.213.0.0/16", "first"]);
    let before = stored(&env);
    let (code, err) = env.fail(&["network", "create", "--subnet", "10.213.128.0/17", "second"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error response from daemon: invalid pool request: Pool overlaps with other one on this address space\n"
    );
    let (code, err) = env.fail(&["network", "create", "first"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "Error response from daemon: network with name first already exists\n"
        )
    );
    let (_, err) = env.fail(&["network", "create", "-d", "overlay", "ov"]);
    assert_eq!(
        err,
        "Error response from daemon: plugin \"overlay\" not found\n"
    );
    let (_, err) = env.fail(&["network", "create", "--subnet", "10.214.0.1/16", "bad"]);
    assert!(
        err.contains("invalid subnet 10.214.0.1/16: it should be 10.214.0.0/16"),
        "{err}"
    );
    let (code, err) = env.fail(&[
        "network",
        "create",
        "--subnet",
        "10.0.0.0/8",
        "--gateway",
        "11.0.0.1",
        "x",
    ]);
    assert_eq!(
        (code, err.as_str()),
        (1, "no matching subnet for gateway 11.0.0.1\n")
    );
    let (code, _) = env.fail(&["network", "create", "--label", "=x", "y"]);
    assert_eq!(code, 125);
    assert_eq!(stored(&env), before);
    assert_eq!(names(&env, &["-f", "type=custom"]), ["first"]);
}

#[test]
fn filters_and_formats() {
    let env = Env::new();
    env.ok(&["network", "create", "--label", "env=prod", "web10"]);
    env.ok(&["network", "create", "--ipv6", "web9"]);
    env.ok(&["network", "create", "db"]);
    // Natural order by name, as Docker's CLI sorts.
    assert_eq!(
        names(&env, &[]),
        ["bridge", "db", "host", "none", "web9", "web10"]
    );
    assert_eq!(names(&env, &["-f", "name=web"]), ["web9", "web10"]);
    assert_eq!(names(&env, &["-f", "label=env=prod"]), ["web10"]);
    assert_eq!(names(&env, &["-f", "driver=null"]), ["none"]);
    assert_eq!(
        names(&env, &["-f", "type=builtin"]),
        ["bridge", "host", "none"]
    );
    assert_eq!(
        names(&env, &["-f", "dangling=true"]),
        ["db", "web9", "web10"]
    );
    assert_eq!(names(&env, &["-f", "scope=local", "-f", "name=db"]), ["db"]);
    let id = inspect(&env, "db")["Id"].as_str().unwrap().to_string();
    assert_eq!(names(&env, &["-f", &format!("id={}", &id[..10])]), ["db"]);
    let quiet = env.ok(&["network", "ls", "-q", "-f", "name=db"]);
    assert_eq!(quiet.trim(), &id[..12]);
    let quiet = env.ok(&["network", "ls", "-q", "--no-trunc", "-f", "name=db"]);
    assert_eq!(quiet.trim(), id);
    let json = env.ok(&["network", "ls", "--format", "json", "-f", "name=web9"]);
    let row: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        (row["Name"].as_str(), row["IPv6"].as_str()),
        (Some("web9"), Some("true"))
    );
    let labelled = env.ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}={{.Label \"env\"}}",
        "-f",
        "name=web10",
    ]);
    assert_eq!(labelled, "web10=prod\n");
    let table = env.ok(&[
        "network",
        "ls",
        "--format",
        "table {{.Name}}\\t{{.IPv6}}",
        "-f",
        "name=web9",
    ]);
    assert_eq!(table, "NAME      IPV6\nweb9      true\n");
    let (code, err) = env.fail(&["network", "ls", "-f", "type=other"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "Error response from daemon: invalid filter: 'type'='other'\n"
        )
    );
    let (_, err) = env.fail(&["network", "ls", "-f", "until=1h"]);
    assert_eq!(err, "Error response from daemon: invalid filter 'until'\n");
}

#[test]
fn prunes_take_unused_custom_networks() {
    let env = Env::new();
    env.ok(&["network", "create", "--label", "keep", "kept"]);
    env.ok(&["network", "create", "gone"]);
    let out = env.ok(&["network", "prune", "-f", "--filter", "label!=keep"]);
    assert_eq!(out, "Deleted Networks:\ngone\n\n");
    assert_eq!(
        env.ok(&["network", "prune", "-f", "--filter", "label=nothing"]),
        ""
    );
    let (_, err) = env.fail(&["network", "prune", "-f", "--filter", "dangling=true"]);
    assert_eq!(
        err,
        "Error response from daemon: invalid filter 'dangling'\n"
    );
    let out = env.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Networks:\nkept\n\n"), "{out}");
    assert_eq!(names(&env, &[]), ["bridge", "host", "none"]);
}

#[test]
fn connect_and_disconnect_name_what_they_cannot_find() {
    let env = Env::new();
    for verb in ["connect", "disconnect"] {
        let (code, err) = env.fail(&["network", verb, "bridge", "nosuch"]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("No such container: nosuch"), "{err}");
    }
}
