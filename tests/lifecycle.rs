//! Lifecycle through the CLI: create, start, state, kill, delete, run, and their errors.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Stdio;

use serde_json::{json, Value};
use support::*;

/// A container init that exits 0 on SIGTERM (pid 1 of a namespace ignores signals it has no
/// handler for) and says when the trap is in place.
const TRAP_TERM: &str = "trap 'exit 0' TERM; touch /tmp/ready; while true; do sleep 0.02; done";

/// Force-delete the given containers on drop. Declared after containers that share one
/// `--root`, it runs before their own drops (which remove that root).
struct ForceDelete<'a>(Vec<&'a Container>);

impl Drop for ForceDelete<'_> {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = c.rt(&["delete", "--force", &c.id]);
        }
    }
}

fn wait_ready(c: &Container) {
    let ready = c.bundle.rootfs().join("tmp/ready");
    wait_until("the container's ready marker", || ready.exists());
}

fn wait_dead(pid: i64) {
    wait_until(&format!("pid {pid} to exit"), || !pid_alive(pid));
}

/// Expect a failure with exit code 1 whose stderr contains `words`.
fn assert_fails(out: &std::process::Output, words: &str) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected failure, got {:?}: {}",
        out.status,
        out.stderr_text()
    );
    assert!(
        out.stderr_text().contains(words),
        "stderr does not contain {words:?}: {}",
        out.stderr_text()
    );
}

/// The full lifecycle, ended by `kill ID signal`.
fn full_lifecycle(signal: &str, args: &[&str], wait_trap: bool) {
    let c = Container::new("life");
    c.bundle.set_args(args);
    c.create_ok();

    let st = c.state();
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], c.id.as_str());
    assert_eq!(st["ociVersion"], "1.2.0");
    assert_eq!(
        Path::new(st["bundle"].as_str().unwrap()),
        c.bundle.dir.as_path()
    );
    assert_eq!(
        Path::new(st["rootfs"].as_str().unwrap()),
        c.bundle.rootfs().as_path()
    );
    assert!(st["created"].as_str().is_some_and(|t| t.ends_with('Z')));
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0, "{st}");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert!(
        c.cgroup_dir().exists(),
        "no cgroup for the created container"
    );
    assert!(c.root.join(&c.id).exists());

    c.rt_ok(&["start", &c.id]);
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid, "start must not change the init pid");
    if wait_trap {
        wait_ready(&c);
    }

    c.rt_ok(&["kill", &c.id, signal]);
    c.wait_status("stopped");
    assert_eq!(c.state()["pid"], 0, "a stopped container reports pid 0");

    c.rt_ok(&["delete", &c.id]);
    let out = c.rt(&["state", &c.id]);
    assert_fails(&out, "does not exist");
    c.assert_gone();
    wait_dead(pid);
}

#[test]
fn lifecycle_kill_term_by_name() {
    full_lifecycle("TERM", &["sh", "-c", TRAP_TERM], true);
}

#[test]
fn lifecycle_kill_sigterm_by_full_name() {
    full_lifecycle("SIGTERM", &["sh", "-c", TRAP_TERM], true);
}

#[test]
fn lifecycle_kill_term_by_number() {
    full_lifecycle("15", &["sh", "-c", TRAP_TERM], true);
}

#[test]
fn lifecycle_kill_kill() {
    full_lifecycle("KILL", &["sleep", "1000"], false);
}

#[test]
fn run_prints_and_passes_exit_code() {
    let c = Container::new("run-exit");
    c.bundle.set_args(&["sh", "-c", "echo hello; exit 3"]);
    let out = c.rt(&["run", &c.id]);
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "hello\n");
    c.assert_gone();
}

#[test]
fn run_exit_code_zero() {
    let c = Container::new("run-zero");
    c.bundle.set_args(&["sh", "-c", "echo ok"]);
    let out = c.rt(&["run", &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "ok\n");
    c.assert_gone();
}

#[test]
fn run_killed_by_signal_exits_128_plus_n() {
    let c = Container::new("run-sig");
    c.bundle.set_args(&["sleep", "1000"]);
    let mut child = c
        .command(&["run", &c.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn run");
    wait_until("run to start the container", || {
        let out = c.rt(&["state", &c.id]);
        out.status.success()
            && serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|s| s["status"] == "running")
    });
    c.rt_ok(&["kill", &c.id, "KILL"]);
    let status = child.wait().expect("wait run");
    assert_eq!(status.code(), Some(128 + 9));
    c.assert_gone();
}

#[test]
fn run_without_pid_namespace_init_killed_by_itself() {
    // Without its own pid namespace the init is not protected: USR1 ends it.
    let c = Container::new("run-sig-nopidns");
    c.bundle.edit(|cfg| {
        let ns = cfg["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
        cfg["process"]["args"] = json!(["sh", "-c", "kill -USR1 $$; sleep 5"]);
    });
    let out = c.rt(&["run", &c.id]);
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGUSR1),
        "{}",
        out.stderr_text()
    );
    c.assert_gone();
}

#[test]
fn run_detach_leaves_it_running() {
    let c = Container::new("run-d");
    c.bundle.set_args(&["sleep", "1000"]);
    let pid_file = c.bundle.dir.join("run.pid");
    let out = c.rt_files(&[
        "run",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
    ]);
    assert!(out.status.success(), "{}", out.stderr_text());
    assert_eq!(c.status(), "running");
    let pid = c.pid();
    assert!(pid_alive(pid));
    let written = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(written.trim().parse::<i64>().unwrap(), pid);
    c.rt_ok(&["delete", "--force", &c.id]);
    c.assert_gone();
    wait_dead(pid);
}

#[test]
fn run_keep_keeps_stopped_state() {
    let c = Container::new("run-keep");
    c.bundle.set_args(&["sh", "-c", "exit 5"]);
    let out = c.rt(&["run", "--keep", &c.id]);
    assert_eq!(out.status.code(), Some(5), "{}", out.stderr_text());
    let st = c.state();
    assert_eq!(st["status"], "stopped", "{st}");
    assert!(c.root.join(&c.id).exists());
    c.rt_ok(&["delete", &c.id]);
    c.assert_gone();
}

#[test]
fn create_pid_file_has_init_pid() {
    let c = Container::new("pidfile");
    c.bundle.set_args(&["sleep", "1000"]);
    let pid_file = c.bundle.dir.join("init.pid");
    let bundle = c.bundle.dir.to_str().unwrap().to_string();
    let out = c.rt_files(&[
        "create",
        "--bundle",
        &bundle,
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
    ]);
    assert!(out.status.success(), "{}", out.stderr_text());
    let written = std::fs::read_to_string(&pid_file).expect("pid file");
    let pid: i64 = written.trim().parse().expect("a pid");
    assert_eq!(pid, c.pid());
    assert!(pid_alive(pid));
    assert_eq!(c.status(), "created");
}

#[test]
fn list_shows_containers_of_the_root() {
    let a = Container::new("list-a");
    let mut b = Container::new("list-b");
    b.root = a.root.clone();
    let _cleanup = ForceDelete(vec![&a, &b]);
    a.bundle.set_args(&["sleep", "1000"]);
    b.bundle.set_args(&["sleep", "1000"]);
    a.create_ok();
    b.create_ok();
    b.rt_ok(&["start", &b.id]);

    let table = a.rt_ok(&["list"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap_or("");
    for col in ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"] {
        assert!(header.contains(col), "header {header:?} lacks {col}");
    }
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{table}");
    let row_a = rows.iter().find(|r| r.starts_with(&a.id)).expect("row a");
    let row_b = rows.iter().find(|r| r.starts_with(&b.id)).expect("row b");
    assert!(row_a.contains("created"), "{row_a}");
    assert!(row_a.contains(&a.pid().to_string()), "{row_a}");
    assert!(row_b.contains("running"), "{row_b}");

    let json: Value = serde_json::from_str(&a.rt_ok(&["list", "--format", "json"])).unwrap();
    let items = json.as_array().expect("array");
    assert_eq!(items.len(), 2, "{json}");
    let item_a = items.iter().find(|i| i["id"] == a.id.as_str()).unwrap();
    let item_b = items.iter().find(|i| i["id"] == b.id.as_str()).unwrap();
    assert_eq!(item_a["status"], "created");
    assert_eq!(item_a["pid"], a.pid());
    assert_eq!(item_b["status"], "running");
    assert_eq!(item_b["pid"], b.pid());

    let quiet = a.rt_ok(&["list", "-q"]);
    let mut want = vec![a.id.clone(), b.id.clone()];
    want.sort();
    assert_eq!(quiet.lines().collect::<Vec<_>>(), want);

    // Another root lists nothing of these.
    let other = Container::new("list-other");
    assert_eq!(other.rt_ok(&["list", "-q"]), "");
}

#[test]
fn ps_lists_host_pids() {
    let c = Container::new("ps");
    c.bundle.set_args(&[
        "sh",
        "-c",
        "sleep 1000 & sleep 1000 & touch /tmp/ready; wait",
    ]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    wait_ready(&c);
    let init = c.pid();
    let mut pids: Vec<i64> = vec![];
    wait_until("three processes in ps", || {
        let v: Value = serde_json::from_str(&c.rt_ok(&["ps", "--format", "json", &c.id])).unwrap();
        pids = v
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_i64().unwrap())
            .collect();
        pids.len() == 3
    });
    assert!(pids.contains(&init), "{pids:?} lacks init {init}");
    let cg = format!("0::{}/{}", test_cgroup_parent(), c.id);
    for pid in &pids {
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert!(
            cgroup.lines().any(|l| l == cg),
            "host pid {pid} not in {cg}: {cgroup}"
        );
    }
    let table = c.rt_ok(&["ps", &c.id]);
    assert!(table.lines().next().unwrap().contains("PID"), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
}

/// The pid of the container's `sleep 1000`.
fn long_sleep_pid(c: &Container) -> i64 {
    let mut found = 0;
    wait_until("the container's sleep 1000", || {
        let v: Value = serde_json::from_str(&c.rt_ok(&["ps", "--format", "json", &c.id])).unwrap();
        for p in v.as_array().unwrap() {
            let pid = p.as_i64().unwrap();
            if std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c == b"sleep\x001000\x00")
            {
                found = pid;
                return true;
            }
        }
        false
    });
    found
}

#[test]
fn kill_all_signals_every_process() {
    let c = Container::new("kill-all");
    // sh is pid 1 without a TERM handler: TERM from the host does not reach it.
    c.bundle
        .set_args(&["sh", "-c", "sleep 1000 & while true; do sleep 0.02; done"]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    let init = c.pid();
    let long = long_sleep_pid(&c);

    // Plain kill: only the init, which ignores it.
    c.rt_ok(&["kill", &c.id, "TERM"]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        pid_alive(long),
        "kill without --all reached a non-init process"
    );
    assert_eq!(c.status(), "running");

    // --all: every process, so the background sleep dies and the init stays.
    c.rt_ok(&["kill", "--all", &c.id, "TERM"]);
    wait_dead(long);
    assert!(pid_alive(init));
    assert_eq!(c.status(), "running");

    c.rt_ok(&["kill", "-a", &c.id, "KILL"]);
    c.wait_status("stopped");
    wait_dead(init);
    c.rt_ok(&["delete", &c.id]);
    c.assert_gone();
}

#[test]
fn kill_stopped_container_fails() {
    let c = Container::new("kill-stopped");
    c.bundle.set_args(&["true"]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    c.wait_status("stopped");
    let out = c.rt(&["kill", &c.id, "KILL"]);
    assert_fails(&out, "container not running");
    assert_eq!(c.status(), "stopped");
}

#[test]
fn delete_refuses_created_and_running_without_force() {
    let c = Container::new("del-refuse");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    let pid = c.pid();

    let out = c.rt(&["delete", &c.id]);
    assert_fails(
        &out,
        &format!("cannot delete container {} that is not stopped", c.id),
    );
    assert_eq!(c.status(), "created");
    assert_eq!(c.pid(), pid);
    assert!(c.cgroup_dir().exists());

    // Untouched: it still starts.
    c.rt_ok(&["start", &c.id]);
    assert_eq!(c.status(), "running");

    let out = c.rt(&["delete", &c.id]);
    assert_fails(
        &out,
        &format!("cannot delete container {} that is not stopped", c.id),
    );
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid);
    assert!(pid_alive(pid));

    c.rt_ok(&["delete", "--force", &c.id]);
    c.assert_gone();
    wait_dead(pid);
    assert_fails(&c.rt(&["state", &c.id]), "does not exist");
}

#[test]
fn delete_force_of_created_container() {
    let c = Container::new("del-force-created");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    let pid = c.pid();
    c.rt_ok(&["delete", "-f", &c.id]);
    c.assert_gone();
    wait_dead(pid);
}

#[test]
fn delete_missing_container() {
    let c = Container::new("del-missing");
    let out = c.rt(&["delete", "--force", &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    let out = c.rt(&["delete", &c.id]);
    assert_fails(&out, "does not exist");
}

#[test]
fn start_twice_fails() {
    let c = Container::new("start-twice");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    let pid = c.pid();
    let out = c.rt(&["start", &c.id]);
    assert_eq!(out.status.code(), Some(1), "second start succeeded");
    assert!(!out.stderr_text().trim().is_empty());
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid);
}

#[test]
fn pause_and_resume() {
    let c = Container::new("pause");
    c.bundle.set_args(&[
        "sh",
        "-c",
        "while true; do echo x >> /tmp/counter; sleep 0.01; done",
    ]);
    let counter = c.bundle.rootfs().join("tmp/counter");
    let size = || std::fs::metadata(&counter).map(|m| m.len()).unwrap_or(0);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    wait_until("the counter to grow", || size() > 4);

    c.rt_ok(&["pause", &c.id]);
    assert_eq!(c.status(), "paused");
    let frozen = size();
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert_eq!(size(), frozen, "the counter advanced while paused");
    assert_eq!(c.status(), "paused");

    c.rt_ok(&["resume", &c.id]);
    assert_eq!(c.status(), "running");
    wait_until("the counter to grow after resume", || size() > frozen);

    // Resuming a running container is an error.
    let out = c.rt(&["resume", &c.id]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn annotations_appear_in_state() {
    let c = Container::new("annot");
    c.bundle.edit(|cfg| {
        cfg["annotations"] = json!({"org.example.key": "value-1", "other": "2"});
        cfg["process"]["args"] = json!(["sleep", "1000"]);
    });
    c.create_ok();
    let st = c.state();
    assert_eq!(st["annotations"]["org.example.key"], "value-1", "{st}");
    assert_eq!(st["annotations"]["other"], "2", "{st}");

    // Without annotations the field is omitted.
    let d = Container::new("no-annot");
    d.bundle.set_args(&["sleep", "1000"]);
    d.create_ok();
    assert!(d.state().get("annotations").is_none());
}

#[test]
fn config_updates_without_affect() {
    let c = Container::new("cfg-update");
    c.bundle.set_args(&["sh", "-c", "echo original"]);
    c.create_ok();
    c.bundle.edit(|cfg| {
        cfg["process"]["args"] = json!(["sh", "-c", "echo changed"]);
        cfg["hostname"] = json!("changed-host");
    });
    c.rt_ok(&["start", &c.id]);
    c.wait_status("stopped");
    assert_eq!(c.container_stdout(), "original\n");
}

#[test]
fn config_without_process_creates_but_cannot_start() {
    let c = Container::new("no-process");
    c.bundle.edit(|cfg| {
        cfg.as_object_mut().unwrap().remove("process");
    });
    c.create_ok();
    assert_eq!(c.status(), "created");
    let out = c.rt(&["start", &c.id]);
    assert_fails(&out, "process");
    // The failed start leaves it as it was; force delete cleans up.
    assert_eq!(c.status(), "created");
    c.rt_ok(&["delete", "--force", &c.id]);
    c.assert_gone();
}

#[test]
fn version_output() {
    for flag in ["--version", "-v"] {
        let out = std::process::Command::new(runtime_bin())
            .arg(flag)
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = out.stdout_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let version = lines[0]
            .strip_prefix("pelagos version ")
            .unwrap_or_else(|| panic!("{text}"));
        let parts: Vec<&str> = version.split('.').collect();
        assert_eq!(parts.len(), 3, "{version}");
        assert!(parts.iter().all(|p| p.parse::<u32>().is_ok()), "{version}");
        let commit = lines[1].strip_prefix("commit: ").expect("commit line");
        assert!(!commit.is_empty());
        assert_eq!(lines[2], "spec: 1.2.0");
    }
}

#[test]
fn features_json_has_the_keys() {
    let out = std::process::Command::new(runtime_bin())
        .arg("features")
        .output()
        .unwrap();
    assert!(out.status.success());
    let f: Value = serde_json::from_slice(&out.stdout).expect("features JSON");
    for key in [
        "ociVersionMin",
        "ociVersionMax",
        "hooks",
        "mountOptions",
        "linux",
        "annotations",
    ] {
        assert!(f.get(key).is_some(), "features lacks {key}");
    }
    assert_eq!(f["ociVersionMax"], "1.2.0");
    let linux = &f["linux"];
    for key in [
        "namespaces",
        "capabilities",
        "cgroup",
        "seccomp",
        "apparmor",
        "selinux",
        "intelRdt",
        "mountExtensions",
    ] {
        assert!(linux.get(key).is_some(), "features.linux lacks {key}");
    }
    for key in ["v1", "v2", "systemd", "systemdUser", "rdma"] {
        assert!(linux["cgroup"].get(key).is_some(), "cgroup lacks {key}");
    }
    for key in [
        "enabled",
        "actions",
        "operators",
        "archs",
        "knownFlags",
        "supportedFlags",
    ] {
        assert!(linux["seccomp"].get(key).is_some(), "seccomp lacks {key}");
    }
    assert!(linux["mountExtensions"]["idmap"].get("enabled").is_some());
    let hooks: Vec<&str> = f["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.contains(&h), "hooks lack {h}");
    }
    let caps = linux["capabilities"].as_array().unwrap();
    assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
    assert!(f["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o == "rbind"));
}

#[test]
fn spec_writes_a_runnable_config() {
    let c = Container::new("spec");
    std::fs::remove_file(c.bundle.dir.join("config.json")).unwrap();
    c.rt_ok(&["spec"]);
    let path = c.bundle.dir.join("config.json");
    let mut cfg: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(cfg["ociVersion"].as_str().unwrap().starts_with("1."));
    assert_eq!(cfg["process"]["terminal"], true);

    // A second spec refuses to overwrite it.
    let out = c.rt(&["spec"]);
    assert_eq!(out.status.code(), Some(1));

    cfg["root"]["path"] = json!("rootfs");
    cfg["process"]["terminal"] = json!(false);
    cfg["process"]["args"] = json!(["sh", "-c", "echo from-spec; hostname"]);
    cfg["linux"]["cgroupsPath"] = json!(format!("{}/{}", test_cgroup_parent(), c.id));
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    let out = c.rt(&["run", &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    let text = out.stdout_text();
    assert!(text.starts_with("from-spec\n"), "{text}");
    c.assert_gone();

    // --bundle writes into another directory.
    let other = c.bundle.dir.join("other");
    std::fs::create_dir(&other).unwrap();
    c.rt_ok(&["spec", "--bundle", other.to_str().unwrap()]);
    assert!(other.join("config.json").exists());
}

#[test]
fn kill_all_after_the_exit_succeeds_as_runc() {
    // containerd's runc v2 shim sends `kill --all ID 9` once the init has exited.
    let c = Container::new("kill-after-exit");
    c.bundle.set_args(&["sh", "-c", "exit 0"]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    c.wait_status("stopped");
    c.rt_ok(&["kill", "--all", &c.id, "9"]);
    c.rt_ok(&["kill", &c.id, "KILL", "--all"]);
    // Without --all the stopped container is still refused, with runc's words.
    let out = c.rt(&["kill", &c.id, "9"]);
    assert_one_line_error(&out, "container not running");
    assert_eq!(c.status(), "stopped");
    c.rt_ok(&["delete", &c.id]);
    c.assert_gone();
}

#[test]
fn flags_after_the_id() {
    let c = Container::new("flags-after");
    c.bundle
        .set_args(&["sh", "-c", "sleep 1000 & while true; do sleep 0.02; done"]);
    let bundle = c.bundle.dir.to_str().unwrap().to_string();
    let out = c.rt_files(&["create", &c.id, "--bundle", &bundle]);
    assert!(out.status.success(), "{}", out.stderr_text());
    assert_eq!(c.status(), "created");
    c.rt_ok(&["start", &c.id]);
    let long = long_sleep_pid(&c);
    // --all after the id and signal.
    c.rt_ok(&["kill", &c.id, "TERM", "--all"]);
    wait_dead(long);
    assert_eq!(c.status(), "running");
    c.rt_ok(&["kill", &c.id, "KILL", "--all"]);
    c.wait_status("stopped");
    c.rt_ok(&["delete", &c.id, "--force"]);
    c.assert_gone();
}

#[test]
fn crun_style_run_with_config_flag() {
    let c = Container::new("crun-style");
    c.bundle.set_args(&["sh", "-c", "echo crun-form"]);
    // A different file name, with config.json made unusable, proves --config is read.
    std::fs::rename(
        c.bundle.dir.join("config.json"),
        c.bundle.dir.join("alt.json"),
    )
    .unwrap();
    std::fs::write(c.bundle.dir.join("config.json"), "{").unwrap();
    let out = std::process::Command::new(runtime_bin())
        .args(["--cgroup-manager", "cgroupfs", "--root"])
        .arg(&c.root)
        .args(["run", "--config", "alt.json", &c.id])
        .current_dir(&c.bundle.dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "crun-form\n");
    c.assert_gone();

    // The literal form of crun's suite: config.json from the bundle directory.
    c.bundle.save();
    let out = std::process::Command::new(runtime_bin())
        .args(["--cgroup-manager", "cgroupfs", "--root"])
        .arg(&c.root)
        .args(["run", "--config", "config.json", &c.id])
        .current_dir(&c.bundle.dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "crun-form\n");
    c.assert_gone();
}

/// A running container for exec tests.
fn running(name: &str) -> Container {
    let c = Container::new(name);
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    c
}

#[test]
fn exec_env_cwd_user_and_exit_code() {
    let c = running("exec");
    assert_eq!(
        c.rt_ok(&["exec", "-e", "X=1", &c.id, "sh", "-c", "echo $X"]),
        "1\n"
    );
    assert_eq!(
        c.rt_ok(&[
            "exec",
            "--env",
            "X=2",
            "--env",
            "Y=3",
            &c.id,
            "sh",
            "-c",
            "echo $X$Y"
        ]),
        "23\n"
    );
    // Words after the command belong to the command, as with runc.
    assert_eq!(
        c.rt_ok(&[
            "exec",
            &c.id,
            "sh",
            "-c",
            "echo \"[$X]\" \"$0\" \"$1\"",
            "-e",
            "X=1"
        ]),
        "[] -e X=1\n"
    );
    assert_eq!(c.rt_ok(&["exec", "--cwd", "/tmp", &c.id, "pwd"]), "/tmp\n");
    assert_eq!(c.rt_ok(&["exec", &c.id, "pwd"]), "/\n");
    assert_eq!(
        c.rt_ok(&["exec", "-u", "1000:1000", &c.id, "sh", "-c", "id -u; id -g"]),
        "1000\n1000\n"
    );
    assert_eq!(
        c.rt_ok(&["exec", "--user", "1000", &c.id, "id", "-u"]),
        "1000\n"
    );
    let out = c.rt(&["exec", &c.id, "sh", "-c", "echo to-stderr >&2; exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(out.stderr_text(), "to-stderr\n");
    assert_eq!(c.status(), "running");
}

#[test]
fn exec_sees_hostname_and_pid_namespace() {
    let c = running("exec-ns");
    assert_eq!(c.rt_ok(&["exec", &c.id, "hostname"]), "pelagos-test\n");
    let ps = c.rt_ok(&["exec", &c.id, "ps", "-o", "pid,comm"]);
    assert!(
        ps.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "sleep"]),
        "{ps}"
    );
    // The exec'd process is in the container's cgroup and namespaces.
    let init = c.pid();
    let out = c.rt_ok(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "for n in pid uts mnt; do readlink /proc/self/ns/$n; done",
    ]);
    let want: Vec<String> = ["pid", "uts", "mnt"]
        .iter()
        .map(|n| {
            std::fs::read_link(format!("/proc/{init}/ns/{n}"))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), want);
}

#[test]
fn exec_process_json() {
    let c = running("exec-pjson");
    let process = json!({
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh", "-c", "echo proc-$Y; pwd"],
        "env": ["PATH=/bin", "Y=2"],
        "cwd": "/tmp",
    });
    let path = c.bundle.dir.join("process.json");
    std::fs::write(&path, process.to_string()).unwrap();
    let out = c.rt_ok(&["exec", "--process", path.to_str().unwrap(), &c.id]);
    assert_eq!(out, "proc-2\n/tmp\n");
    let out = c.rt_ok(&["exec", "-p", path.to_str().unwrap(), &c.id]);
    assert_eq!(out, "proc-2\n/tmp\n");
}

#[test]
fn exec_detach_with_pid_file() {
    let c = running("exec-d");
    let pid_file = c.bundle.dir.join("exec.pid");
    let out = c.rt_files(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
        "sleep",
        "1000",
    ]);
    assert!(out.status.success(), "{}", out.stderr_text());
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(pid));
    assert_ne!(pid, c.pid());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, b"sleep\x001000\x00");
    let v: Value = serde_json::from_str(&c.rt_ok(&["ps", "--format", "json", &c.id])).unwrap();
    assert!(
        v.as_array().unwrap().iter().any(|p| p == pid),
        "{v} lacks exec pid {pid}"
    );
    c.rt_ok(&["delete", "--force", &c.id]);
    c.assert_gone();
    wait_dead(pid);
}

/// A cgroup of the test's own with a `sleep` of the test's in it: what a tampered state.json
/// points at. The process and the cgroup go on drop.
struct Decoy {
    dir: std::path::PathBuf,
    child: std::process::Child,
}

impl Decoy {
    fn new(rel: &str) -> Decoy {
        let dir = cgroup2_root().join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        let child = std::process::Command::new("sleep")
            .arg("1000")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let decoy = Decoy { dir, child };
        std::fs::write(decoy.dir.join("cgroup.procs"), decoy.child.id().to_string()).unwrap();
        decoy
    }

    fn untouched(&self) -> bool {
        let events = std::fs::read_to_string(self.dir.join("cgroup.events")).unwrap_or_default();
        pid_alive(self.child.id().into()) && events.lines().any(|l| l == "frozen 0")
    }
}

impl Drop for Decoy {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("cgroup.freeze"), "0");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Writes the original state.json back on drop (declared after the container, so it runs
/// before the container's own cleanup).
struct RestoreFile(std::path::PathBuf, String);

impl Drop for RestoreFile {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, &self.1);
    }
}

#[test]
fn a_tampered_state_cgroup_is_not_trusted() {
    let c = Container::new("tamper-cgroup");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    let pid = c.pid();
    let state_path = c.root.join(&c.id).join("state.json");
    let original = std::fs::read_to_string(&state_path).unwrap();
    let _restore = RestoreFile(state_path.clone(), original.clone());
    let decoy_rel = format!("{}/{}-decoy", test_cgroup_parent(), c.id);
    let decoy = Decoy::new(&decoy_rel);

    let mut state: Value = serde_json::from_str(&original).unwrap();
    for tampered in [decoy_rel.as_str(), "/../../decoy", "/"] {
        state["cgroup"] = json!(tampered);
        std::fs::write(&state_path, state.to_string()).unwrap();
        for args in [
            vec!["kill", "--all", &c.id, "KILL"],
            vec!["pause", &c.id],
            vec!["delete", "--force", &c.id],
        ] {
            let out = c.rt(&args);
            let line = assert_one_line_error(&out, "not trusted");
            assert!(line.contains(&c.id), "{line}");
            assert!(
                decoy.untouched(),
                "{args:?} with cgroup {tampered:?} touched the decoy"
            );
            assert!(
                pid_alive(pid),
                "{args:?} with cgroup {tampered:?} stopped the container"
            );
        }
    }
    // Untampered, everything works again.
    std::fs::write(&state_path, &original).unwrap();
    c.rt_ok(&["delete", "--force", &c.id]);
    c.assert_gone();
    assert!(decoy.untouched());
}
