//! pelagos-dockerd's `/volumes` endpoints through the real docker CLI: create/ls/inspect/rm/
//! prune, a named volume's data shared by two containers, removal refused while in use.

mod dockerd_support;

use dockerd_support::{served_busybox, Daemon};

#[test]
fn volumes_are_created_listed_inspected_removed_and_pruned() {
    let d = Daemon::start();
    assert_eq!(
        d.ok(&["volume", "create", "--label", "team=a", "data"])
            .trim(),
        "data"
    );
    // A second create of the same name answers the existing volume, as Docker's.
    assert_eq!(d.ok(&["volume", "create", "data"]).trim(), "data");
    d.ok(&["volume", "create", "scratch"]);
    let anonymous = d.ok(&["volume", "create"]);
    let anonymous = anonymous.trim();
    assert_eq!(anonymous.len(), 64, "{anonymous}");

    let listed = d.ok(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]);
    for name in ["data", "scratch", anonymous] {
        assert!(
            listed.contains(&format!("local {name}")),
            "{name}: {listed}"
        );
    }
    let labelled = d.ok(&["volume", "ls", "-q", "--filter", "label=team=a"]);
    assert_eq!(labelled.trim(), "data");
    let inspected = d.ok(&[
        "volume",
        "inspect",
        "data",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels.team}} {{.Mountpoint}}",
    ]);
    let root = d.root.display().to_string();
    assert_eq!(
        inspected.trim(),
        format!("data local local a {root}/volumes/data/_data")
    );

    let (code, err) = d.fail(&["volume", "inspect", "nosuchvolume"]);
    assert_eq!(code, 1);
    assert!(err.contains("no such volume"), "{err}");
    let (status, body) = d.http("GET", "/v1.41/volumes/nosuchvolume", None);
    assert_eq!(status, 404, "{body}");
    let (status, body) = d.http("DELETE", "/volumes/nosuchvolume?force=1", None);
    assert_eq!(status, 204, "{body}");
    let (status, body) = d.http(
        "POST",
        "/volumes/create",
        Some(r#"{"Name":"x","Driver":"nfs"}"#),
    );
    assert_eq!(status, 404, "{body}");
    let (status, body) = d.http("POST", "/volumes/create", Some(r#"{"Name":7}"#));
    assert_eq!(status, 400, "{body}");
    let (status, body) = d.http(
        "GET",
        "/volumes?filters=%7B%22nope%22%3A%7B%22x%22%3Atrue%7D%7D",
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert!(d.ok(&["volume", "ls", "-q"]).lines().all(|l| l != "x"));

    assert_eq!(d.ok(&["volume", "rm", "scratch"]).trim(), "scratch");
    let (status, body) = d.http(
        "POST",
        "/volumes/prune?filters=%7B%22label%22%3A%7B%22team%22%3Atrue%7D%7D",
        None,
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("prune JSON");
    assert_eq!(v["VolumesDeleted"], serde_json::json!(["data"]));
    // API 1.41 prunes every unused volume, named or anonymous.
    let pruned = d.ok(&["volume", "prune", "-f"]);
    assert!(pruned.contains(anonymous), "{pruned}");
    assert!(d.ok(&["volume", "ls", "-q"]).trim().is_empty());
}

/// `docker run -d --network none -v shared:/data ARGS…` until it exits 0: its output.
fn run_to_end(d: &Daemon, args: &[&str]) -> String {
    let mut all = vec!["run", "-d", "--network", "none", "-v", "shared:/data"];
    all.extend_from_slice(args);
    let id = d.ok(&all);
    let id = id.trim();
    assert_eq!(d.ok(&["wait", id]).trim(), "0", "{}", d.ok(&["logs", id]));
    let out = d.ok(&["logs", id]);
    d.ok(&["rm", id]);
    out
}

#[test]
fn a_named_volume_is_shared_and_kept_while_in_use() {
    let served = served_busybox();
    let d = Daemon::start();
    d.ok(&["pull", &served.image]);
    run_to_end(
        &d,
        &[&served.image, "sh", "-c", "echo from-first > /data/note"],
    );
    let read = run_to_end(&d, &[&served.image, "cat", "/data/note"]);
    assert_eq!(read.trim(), "from-first");

    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "none",
        "-v",
        "shared:/data",
        &served.image,
        "sleep",
        "300",
    ]);
    let id = id.trim();
    let (code, err) = d.fail(&["volume", "rm", "shared"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("remove shared: volume is in use - [{id}]")),
        "{err}"
    );
    let (status, body) = d.http("DELETE", "/volumes/shared?force=1", None);
    assert_eq!(status, 409, "{body}");
    let df = d.ok(&[
        "system",
        "df",
        "-v",
        "--format",
        "{{range .Volumes}}{{.Name}}:{{.Links}} {{end}}",
    ]);
    assert!(df.contains("shared:1"), "{df}");
    // An unused volume goes with prune; the used one stays.
    d.ok(&["volume", "create", "loose"]);
    let pruned = d.ok(&["volume", "prune", "-f"]);
    assert!(
        pruned.contains("loose") && !pruned.contains("shared"),
        "{pruned}"
    );

    d.ok(&["rm", "-f", "holder"]);
    assert_eq!(d.ok(&["volume", "rm", "shared"]).trim(), "shared");
    d.assert_no_container_leftovers();
}
