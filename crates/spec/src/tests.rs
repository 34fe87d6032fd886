//! Unit tests of [`crate::build`]: Docker's defaults and every config field it honours.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Mount as OciMount, Spec};
use pelagos_model::config::{ContainerConfig, HostConfig, Mount, TmpfsOptions, Ulimit};
use pelagos_model::record::MountPoint;

use super::*;
use crate::process::tests::{image, strings};

fn user() -> ResolvedUser {
    ResolvedUser {
        uid: 1000,
        gid: 1000,
        additional_gids: vec![10],
    }
}

/// The fixed input every test starts from: no image, no mounts, no init, nothing joined.
fn input(user: &ResolvedUser) -> SpecInput<'_> {
    let p = Path::new("/x");
    SpecInput {
        rootfs: Path::new("/r"),
        image: None,
        user,
        hostname: "abcdef123456",
        cwd: "/",
        etc: EtcFiles {
            hosts: p,
            hostname: p,
            resolv_conf: p,
        },
        cgroups_path: "/pelagos/abc",
        annotations: Default::default(),
        mounts: &[],
        init: None,
        joined_namespaces: &[],
        devices: &[],
        shm: None,
    }
}

/// Builds with a fixed input around `mounts` and `init`.
fn build_with(
    config: &ContainerConfig,
    host: &HostConfig,
    mounts: &[MountPoint],
    init: Option<&Path>,
) -> Result<Spec> {
    let user = user();
    let img = image(None, Some(&["sh"]));
    let mut annotations = serde_json::Map::new();
    annotations.insert("io.pelagos.container.name".into(), "web".into());
    let input = SpecInput {
        image: Some(&img),
        annotations,
        mounts,
        init,
        ..input(&user)
    };
    build(&input, config, host)
}

fn spec_of(host: &HostConfig) -> Spec {
    build_with(&ContainerConfig::default(), host, &[], None).unwrap()
}

fn has_ns(spec: &Spec, kind: LinuxNamespaceType) -> bool {
    let linux = spec.linux().as_ref().unwrap();
    linux.namespaces().iter().flatten().any(|n| n.typ() == kind)
}

fn mount_at<'a>(spec: &'a Spec, dest: &str) -> Option<&'a OciMount> {
    spec.mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new(dest))
}

fn options(m: &OciMount) -> Vec<String> {
    m.options().clone().unwrap_or_default()
}

#[test]
fn spec_has_docker_defaults() {
    let spec = spec_of(&HostConfig::default());
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_some());
    assert_eq!(
        linux.masked_paths().as_ref().unwrap().len(),
        MASKED_PATHS.len()
    );
    assert_eq!(
        linux.readonly_paths().as_ref().unwrap().len(),
        READONLY_PATHS.len()
    );
    assert!(has_ns(&spec, LinuxNamespaceType::Network));
    assert!(has_ns(&spec, LinuxNamespaceType::Pid));
    assert_eq!(spec.hostname().as_deref(), Some("abcdef123456"));
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.user().uid(), 1000);
    assert_eq!(
        process.user().additional_gids().as_ref().unwrap(),
        &vec![10]
    );
    assert_eq!(process.args().as_ref().unwrap(), &strings(&["sh"]));
    assert!(!process.terminal().unwrap_or(false));
    let caps = process.capabilities().as_ref().unwrap();
    assert_eq!(
        caps.bounding().as_ref().unwrap().len(),
        DEFAULT_CAPABILITIES.len()
    );
    let shm = mount_at(&spec, "/dev/shm").unwrap();
    assert!(options(shm).contains(&format!("size={}", 64 << 20)));
    assert!(mount_at(&spec, "/etc/hosts").is_some());
    assert!(!spec.root().as_ref().unwrap().readonly().unwrap_or(false));
    let annotations = spec.annotations().as_ref().unwrap();
    assert_eq!(annotations["io.pelagos.container.name"], "web");
}

#[test]
fn host_network_and_unconfined_seccomp() {
    let spec = spec_of(&HostConfig {
        network_mode: "host".into(),
        security_opt: strings(&["seccomp=unconfined", "no-new-privileges"]),
        ..Default::default()
    });
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(!has_ns(&spec, LinuxNamespaceType::Network));
    assert!(has_ns(&spec, LinuxNamespaceType::Uts));
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.no_new_privileges(), Some(true));
    // A bridge network: a new namespace, wired by the monitor between create and start.
    let bridged = build_with(
        &ContainerConfig::default(),
        &HostConfig {
            network_mode: "bridge".into(),
            ..Default::default()
        },
        &[],
        None,
    )
    .unwrap();
    assert!(has_ns(&bridged, LinuxNamespaceType::Network));
}

#[test]
fn privileged_and_read_only() {
    let spec = spec_of(&HostConfig {
        privileged: true,
        readonly_rootfs: true,
        ..Default::default()
    });
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().is_none());
    let devices = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert!(devices[0].allow());
    assert!(options(mount_at(&spec, "/sys").unwrap()).contains(&"rw".to_string()));
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    assert_eq!(caps.bounding().as_ref().unwrap().len(), 41);
    assert!(spec.root().as_ref().unwrap().readonly().unwrap());
    let unconfined = spec_of(&HostConfig {
        security_opt: strings(&["systempaths=unconfined"]),
        ..Default::default()
    });
    assert!(unconfined
        .linux()
        .as_ref()
        .unwrap()
        .masked_paths()
        .is_none());
    let custom = spec_of(&HostConfig {
        masked_paths: Some(strings(&["/proc/kcore"])),
        readonly_paths: Some(Vec::new()),
        ..Default::default()
    });
    let linux = custom.linux().as_ref().unwrap();
    assert_eq!(
        linux.masked_paths().as_ref().unwrap(),
        &strings(&["/proc/kcore"])
    );
    assert!(linux.readonly_paths().as_ref().unwrap().is_empty());
}

#[test]
fn binds_volumes_and_tmpfs_in_depth_order() {
    let d = tempfile::tempdir().unwrap();
    let points = [
        MountPoint {
            kind: "bind".into(),
            source: d.path().display().to_string(),
            destination: "/data/sub".into(),
            rw: false,
            propagation: "rprivate".into(),
            ..Default::default()
        },
        MountPoint {
            kind: "volume".into(),
            name: "v".into(),
            source: "/var/lib/pelagos/volumes/v/_data".into(),
            destination: "/data".into(),
            rw: true,
            ..Default::default()
        },
        MountPoint {
            kind: "bind".into(),
            source: "/srv/hosts".into(),
            destination: "/etc/hosts".into(),
            rw: true,
            ..Default::default()
        },
    ];
    let host = HostConfig {
        tmpfs: [("/run".to_string(), "exec,size=1m".to_string())].into(),
        mounts: vec![Mount {
            kind: "tmpfs".into(),
            target: "/dev/shm".into(),
            tmpfs_options: Some(TmpfsOptions {
                size_bytes: 1 << 20,
                mode: 0o1777,
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let spec = build_with(&ContainerConfig::default(), &host, &points, None).unwrap();
    let dests: Vec<String> = spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().display().to_string())
        .collect();
    let pos = |d: &str| dests.iter().position(|x| x == d).unwrap();
    assert!(pos("/data") < pos("/data/sub"), "{dests:?}");
    assert_eq!(dests.iter().filter(|d| *d == "/etc/hosts").count(), 1);
    assert_eq!(dests.iter().filter(|d| *d == "/dev/shm").count(), 1);
    let sub = mount_at(&spec, "/data/sub").unwrap();
    assert_eq!(options(sub), strings(&["rbind", "rprivate", "ro"]));
    let hosts = mount_at(&spec, "/etc/hosts").unwrap();
    assert_eq!(hosts.source().as_deref(), Some(Path::new("/srv/hosts")));
    let run = mount_at(&spec, "/run").unwrap();
    assert_eq!(
        options(run),
        strings(&["nosuid", "nodev", "exec", "size=1m"])
    );
    let shm = mount_at(&spec, "/dev/shm").unwrap();
    assert_eq!(
        options(shm),
        strings(&["nosuid", "nodev", "size=1048576", "mode=1777"])
    );
}

#[test]
fn limits_ulimits_and_process_settings() {
    let host = HostConfig {
        memory: 64 << 20,
        nano_cpus: 1_500_000_000,
        pids_limit: Some(100),
        shm_size: 1 << 20,
        oom_score_adj: 500,
        ulimits: vec![Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 2048,
        }],
        sysctls: [("net.ipv4.ip_forward".to_string(), "1".to_string())].into(),
        security_opt: strings(&["apparmor=my-profile"]),
        ..Default::default()
    };
    let config = ContainerConfig {
        tty: true,
        domainname: "example.org".into(),
        ..Default::default()
    };
    let spec = build_with(&config, &host, &[], None).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let res = linux.resources().as_ref().unwrap();
    assert_eq!(res.memory().as_ref().unwrap().limit(), Some(64 << 20));
    assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(150_000));
    assert_eq!(res.pids().as_ref().unwrap().limit(), 100);
    assert_eq!(linux.sysctl().as_ref().unwrap()["net.ipv4.ip_forward"], "1");
    let process = spec.process().as_ref().unwrap();
    let rlimits = process.rlimits().as_ref().unwrap();
    assert_eq!((rlimits[0].soft(), rlimits[0].hard()), (1024, 2048));
    assert_eq!(process.oom_score_adj(), Some(500));
    assert_eq!(process.apparmor_profile().as_deref(), Some("my-profile"));
    assert!(process.terminal().unwrap());
    assert!(process
        .env()
        .as_ref()
        .unwrap()
        .contains(&"TERM=xterm".to_string()));
    assert_eq!(spec.domainname().as_deref(), Some("example.org"));
    let shm = mount_at(&spec, "/dev/shm").unwrap();
    assert!(options(shm).contains(&"size=1048576".to_string()));
}

#[test]
fn namespaces_shared_with_the_host() {
    let spec = spec_of(&HostConfig {
        pid_mode: "host".into(),
        ipc_mode: "host".into(),
        uts_mode: "host".into(),
        cgroupns_mode: "host".into(),
        ..Default::default()
    });
    for kind in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Cgroup,
    ] {
        assert!(!has_ns(&spec, kind), "{kind:?}");
    }
    assert!(has_ns(&spec, LinuxNamespaceType::Mount));
    assert!(
        spec.hostname().is_none(),
        "no hostname without a UTS namespace"
    );
    let shm = mount_at(&spec, "/dev/shm").unwrap();
    assert_eq!(shm.source().as_deref(), Some(Path::new("/dev/shm")));
    let no_shm = spec_of(&HostConfig {
        ipc_mode: "none".into(),
        ..Default::default()
    });
    assert!(mount_at(&no_shm, "/dev/shm").is_none());
    assert!(has_ns(&no_shm, LinuxNamespaceType::Ipc));
}

#[test]
fn namespaces_of_another_container_are_joined_by_path() {
    let host = HostConfig {
        pid_mode: "container:db".into(),
        uts_mode: "container:db".into(),
        network_mode: "container:db".into(),
        ..Default::default()
    };
    // The caller must have found the other container's namespaces.
    let err = build_with(&ContainerConfig::default(), &host, &[], None).unwrap_err();
    assert!(err.to_string().contains("pid namespace"), "{err}");
    let user = user();
    let joined = [
        ("pid", PathBuf::from("/proc/42/ns/pid")),
        ("uts", PathBuf::from("/proc/42/ns/uts")),
        ("network", PathBuf::from("/proc/42/ns/net")),
    ];
    let input = SpecInput {
        joined_namespaces: &joined,
        ..input(&user)
    };
    let config = ContainerConfig {
        cmd: Some(vec!["sh".into()]),
        ..Default::default()
    };
    let spec = build(&input, &config, &host).unwrap();
    let namespaces = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
    let path_of = |kind| {
        namespaces
            .iter()
            .find(|n| n.typ() == kind)
            .and_then(|n| n.path().clone())
    };
    assert_eq!(
        path_of(LinuxNamespaceType::Pid),
        Some(PathBuf::from("/proc/42/ns/pid"))
    );
    assert_eq!(
        path_of(LinuxNamespaceType::Uts),
        Some(PathBuf::from("/proc/42/ns/uts"))
    );
    assert_eq!(
        path_of(LinuxNamespaceType::Network),
        Some(PathBuf::from("/proc/42/ns/net"))
    );
    assert_eq!(
        path_of(LinuxNamespaceType::Ipc),
        None,
        "a new IPC namespace"
    );
    assert!(spec.hostname().is_none(), "the other container's hostname");
}

#[test]
fn init_runs_first_from_a_read_only_bind() {
    let host = HostConfig {
        init: Some(true),
        ..Default::default()
    };
    let init = Path::new("/usr/libexec/pelagos/docker-init");
    let spec = build_with(&ContainerConfig::default(), &host, &[], Some(init)).unwrap();
    let args = spec.process().as_ref().unwrap().args().clone().unwrap();
    assert_eq!(args, strings(&[INIT_PATH, "--", "sh"]));
    let m = mount_at(&spec, INIT_PATH).unwrap();
    assert_eq!(m.source().as_deref(), Some(init));
    assert_eq!(options(m), strings(&["bind", "ro"]));
    let err = build_with(&ContainerConfig::default(), &host, &[], None).unwrap_err();
    assert!(err.to_string().contains("--init"), "{err}");
    // Without HostConfig.Init the program is not mounted even when known.
    let plain = build_with(
        &ContainerConfig::default(),
        &HostConfig::default(),
        &[],
        Some(init),
    )
    .unwrap();
    assert!(mount_at(&plain, INIT_PATH).is_none());
}

#[test]
fn annotations_from_the_config_never_override_pelagos_ones() {
    let host = HostConfig {
        annotations: [
            ("org.example/team".to_string(), "infra".to_string()),
            (
                "io.pelagos.container.name".to_string(),
                "spoofed".to_string(),
            ),
        ]
        .into(),
        ..Default::default()
    };
    let spec = spec_of(&host);
    let a = spec.annotations().as_ref().unwrap();
    assert_eq!(a["org.example/team"], "infra");
    assert_eq!(a["io.pelagos.container.name"], "web");
}

#[test]
fn custom_seccomp_profile_and_validation() {
    let host = HostConfig {
        security_opt: strings(&[r#"seccomp={"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}"#]),
        ..Default::default()
    };
    let spec = spec_of(&host);
    assert!(spec.linux().as_ref().unwrap().seccomp().is_some());
    validate(&ContainerConfig::default(), &host).unwrap();
    let bad = HostConfig {
        security_opt: strings(&[r#"seccomp={"defaultAction":"SCMP_ACT_BOGUS"}"#]),
        ..Default::default()
    };
    assert!(validate(&ContainerConfig::default(), &bad).is_err());
    assert!(validate(
        &ContainerConfig::default(),
        &HostConfig {
            memory: 1 << 20,
            ..Default::default()
        }
    )
    .unwrap_err()
    .to_string()
    .contains("--memory"));
}

#[test]
fn a_host_side_dev_shm_is_bound_in_place_of_a_tmpfs() {
    let user = user();
    let shm = Path::new("/var/lib/pelagos/containers/abc/shm");
    let config = ContainerConfig {
        cmd: Some(vec!["sh".into()]),
        ..Default::default()
    };
    for ipc in ["shareable", "container:donor"] {
        let host = HostConfig {
            ipc_mode: ipc.into(),
            ..Default::default()
        };
        let joined = [("ipc", PathBuf::from("/proc/42/ns/ipc"))];
        let input = SpecInput {
            joined_namespaces: if ipc == "shareable" { &[] } else { &joined },
            shm: Some(shm),
            ..input(&user)
        };
        let spec = build(&input, &config, &host).unwrap();
        let m = mount_at(&spec, "/dev/shm").unwrap();
        assert_eq!(m.typ().as_deref(), Some("bind"), "{ipc}");
        assert_eq!(m.source().as_deref(), Some(shm), "{ipc}");
    }
}
