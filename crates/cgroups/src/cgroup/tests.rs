//! Tests against this host's real cgroup v2 tree: creation with delegation, cleanup on failure,
//! freeze/thaw/kill with live child processes, destroy, stats and `check_resources`.

use std::path::Path;

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use oci_spec::runtime::{LinuxHugepageLimit, LinuxMemory, LinuxResources};

use super::*;
use crate::available_controllers;
use crate::testutil::TestCgroup;

fn ctrl_list(p: &Path) -> Vec<String> {
    host::read_list(p).unwrap()
}

#[test]
fn create_delegates_and_destroy_removes_what_it_made() {
    let t = TestCgroup::new("create");
    let mut cg = Cgroup::resolve(Some(&format!("{}/a/b", t.rel)), false, "x").unwrap();
    assert_eq!(cg.owned_levels(), 0);
    cg.create().unwrap();
    assert!(cg.path().is_dir());
    // test dir, a, b at least; the shared test parent too when this test made it.
    assert!(cg.owned_levels() >= 3, "{}", cg.owned_levels());
    let root_ctrls = available_controllers().unwrap();
    assert_eq!(ctrl_list(&cg.path().join("cgroup.controllers")), root_ctrls);
    let a = cg.path().parent().unwrap();
    assert_eq!(ctrl_list(&a.join("cgroup.subtree_control")), root_ctrls);
    assert!(
        ctrl_list(&cg.path().join("cgroup.subtree_control")).is_empty(),
        "the leaf keeps no controllers"
    );

    // Creating again is harmless and keeps ownership.
    let owned = cg.owned_levels();
    cg.create().unwrap();
    assert_eq!(cg.owned_levels(), owned);

    cg.destroy().unwrap();
    assert!(!cg.path().exists());
    assert!(
        !t.dir.exists(),
        "ancestors created by create are removed too"
    );
    cg.destroy().unwrap(); // idempotent
}

#[test]
fn existing_leaf_is_not_owned_and_reloaded_leaf_is() {
    let t = TestCgroup::new("reload");
    let mut first = Cgroup::resolve(Some(&format!("{}/leaf", t.rel)), false, "x").unwrap();
    first.create().unwrap();
    std::fs::create_dir(first.path().join("nested")).unwrap();

    let mut second = Cgroup::resolve(Some(&format!("{}/leaf", t.rel)), false, "x").unwrap();
    second.create().unwrap();
    assert_eq!(second.owned_levels(), 0);
    second.destroy().unwrap();
    assert!(
        first.path().is_dir(),
        "never removes a directory it did not create"
    );

    let reloaded = Cgroup::from_relative(first.relative()).unwrap();
    assert_eq!(reloaded.path(), first.path());
    reloaded.destroy().unwrap();
    assert!(!first.path().exists(), "leaf and its child cgroups removed");
    assert!(t.dir.is_dir(), "but not its parent");

    let saved = Cgroup::from_saved(first.relative(), first.owned_levels()).unwrap();
    assert_eq!(saved.owned_levels(), first.owned_levels());
    saved.destroy().unwrap();
    assert!(!t.dir.exists());
}

#[test]
fn failed_create_removes_what_it_made() {
    let t = TestCgroup::new("failing");
    // "cgroup.procs" exists as a file inside "new", so mkdir -p fails below it.
    let mut cg =
        Cgroup::resolve(Some(&format!("{}/new/cgroup.procs/x", t.rel)), false, "x").unwrap();
    let e = cg.create().unwrap_err().to_string();
    assert!(e.contains("cgroup.procs"), "{e}");
    assert!(
        !t.dir.exists(),
        "everything created before the failure is gone"
    );
    assert_eq!(cg.owned_levels(), 0);
}

#[test]
fn freeze_thaw_kill_with_a_live_process() {
    let mut t = TestCgroup::new("freeze");
    let mut cg = Cgroup::resolve(Some(&t.rel), false, "x").unwrap();
    cg.create().unwrap();
    let child = t.spawn_sleeper();
    cg.add_process(child.as_raw()).unwrap();
    assert_eq!(cg.procs().unwrap(), vec![child.as_raw()]);
    assert!(!cg.is_frozen().unwrap());

    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    assert!(
        Path::new(&format!("/proc/{child}/stat")).exists(),
        "frozen, not dead"
    );
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());

    // Processes in child cgroups are listed too.
    let sub = cg.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let grandchild = t.spawn_sleeper();
    std::fs::write(sub.join("cgroup.procs"), grandchild.to_string()).unwrap();
    let mut both = vec![child.as_raw(), grandchild.as_raw()];
    both.sort();
    assert_eq!(cg.procs().unwrap(), both);

    cg.signal_all(libc::SIGTERM).unwrap();
    for pid in [child, grandchild] {
        assert_eq!(
            waitpid(pid, None).unwrap(),
            WaitStatus::Signaled(pid, Signal::SIGTERM, false)
        );
        t.reaped(pid);
    }

    let child = t.spawn_sleeper();
    cg.add_process(child.as_raw()).unwrap();
    cg.freeze().unwrap();
    cg.kill_all().unwrap();
    assert_eq!(
        waitpid(child, None).unwrap(),
        WaitStatus::Signaled(child, Signal::SIGKILL, false)
    );
    t.reaped(child);

    cg.destroy().unwrap();
    assert!(!cg.path().exists());
    assert!(cg.kill_all().is_ok(), "nothing to kill in a removed cgroup");
    assert!(cg.stats().is_err());
}

#[test]
fn destroy_times_out_on_a_busy_cgroup() {
    let mut t = TestCgroup::new("busy");
    let mut cg = Cgroup::resolve(Some(&t.rel), false, "x").unwrap();
    cg.create().unwrap();
    let child = t.spawn_sleeper();
    cg.add_process(child.as_raw()).unwrap();
    let e = cg.destroy().unwrap_err().to_string();
    assert!(e.contains("populated 0") && e.contains(&t.rel), "{e}");
    assert!(cg.path().is_dir());
}

#[test]
fn open_fd_stats_and_apply_on_this_host() {
    let t = TestCgroup::new("apply");
    let mut cg = Cgroup::resolve(Some(&t.rel), false, "x").unwrap();
    cg.create().unwrap();
    let fd = cg.open_dir_fd().unwrap();
    let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap();
    assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFDIR);

    let stats = cg.stats().unwrap();
    assert!(stats.cpu.is_some(), "cpu.stat is a core file");
    serde_json::to_string(&stats).unwrap();
    assert_eq!(cg.oom_kill_count().unwrap(), 0);

    let ctrls = available_controllers().unwrap();
    let mut res = LinuxResources::default();
    let mut m = LinuxMemory::default();
    m.set_limit(Some(64 << 20));
    res.set_memory(Some(m));
    if ctrls.iter().any(|c| c == "memory") {
        assert!(cg.check_resources(&res, false).unwrap().is_empty());
        cg.apply(&res, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(cg.path().join("memory.max"))
                .unwrap()
                .trim(),
            "67108864"
        );
    } else {
        let e = cg.check_resources(&res, false).unwrap_err().to_string();
        assert!(
            e.contains("\"memory\"") && e.contains("memory.limit"),
            "{e}"
        );
        assert!(cg.apply(&res, false).is_err());
        let warnings = cg.check_resources(&res, true).unwrap();
        assert_eq!(warnings.len(), 1);
        cg.apply(&res, true).unwrap();
    }

    let sizes = host::hugepage_sizes();
    if ctrls.iter().any(|c| c == "hugetlb") && sizes.iter().any(|s| s == "2MB") {
        let mut res = LinuxResources::default();
        let mut h = LinuxHugepageLimit::default();
        h.set_page_size("2MB".into());
        h.set_limit(8 << 20);
        res.set_hugepage_limits(Some(vec![h]));
        assert!(cg.check_resources(&res, false).unwrap().is_empty());
        cg.apply(&res, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(cg.path().join("hugetlb.2MB.max"))
                .unwrap()
                .trim(),
            "8388608"
        );
        assert!(cg.stats().unwrap().hugetlb.contains_key("2MB"));
    }
    drop(fd);
    cg.destroy().unwrap();
}

#[test]
fn shared_parent_goes_with_the_last_container_in_any_order() {
    let t = TestCgroup::new("shared-parent");
    let mut a = Cgroup::resolve(Some(&format!("{}/a", t.rel)), false, "a").unwrap();
    a.create().unwrap();
    let mut b = Cgroup::resolve(Some(&format!("{}/b", t.rel)), false, "b").unwrap();
    b.create().unwrap();
    // Reload both as the runtime does from saved state, then delete the oldest first.
    let a = Cgroup::from_saved(a.relative(), a.owned_levels()).unwrap();
    let b = Cgroup::from_saved(b.relative(), b.owned_levels()).unwrap();
    a.destroy().unwrap();
    assert!(t.dir.is_dir(), "the parent stays while b uses it");
    b.destroy().unwrap();
    assert!(
        !t.dir.exists(),
        "the last container removes the shared parent"
    );
}
