//! pelagos-runtime under containerd 1.6's CRI plugin, driven through the CRI v1 gRPC API as
//! the kubelet drives it: a private containerd (own root, state, socket, a private /run), the
//! runc v2 shim with pelagos-runtime as its binary, pods with no pelagos annotation.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use pelagos_testkit::images::{busybox, skopeo_push};
use pelagos_testkit::registry::{Auth, Registry};
use tonic::transport::{Channel, Endpoint, Uri};

/// The runtime the shim runs: the one built beside this test.
fn runtime_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let debug = exe.parent().and_then(Path::parent).expect("target/debug");
    let path = debug.join("pelagos-runtime");
    assert!(
        path.is_file(),
        "{} is missing: cargo build --workspace first",
        path.display()
    );
    path
}

/// A containerd of the test's own, in a mount namespace with a private /run (its shims'
/// sockets and pelagos-runtime's state stay there); ended, with its shims, when dropped.
struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Containerd {
    fn start(registry_host: &str) -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("pelagos-cri-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().display().to_string();
        write_files(dir.path(), registry_host);
        let log = std::fs::File::create(dir.path().join("containerd.log")).expect("log file");
        let child = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &format!("mount -t tmpfs -o mode=0755 tmpfs /run && exec containerd --config {d}/config.toml"),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Containerd { dir, child };
        c.wait_for_socket();
        c
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    fn wait_for_socket(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.socket().exists() {
            assert!(
                Instant::now() < deadline,
                "containerd did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// Every call the shim made to the runtime, one line each.
    fn runtime_calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default()
    }

    /// Processes started for this containerd (its shims carry its socket's path).
    fn shim_pids(&self) -> Vec<i32> {
        let needle = self.socket().display().to_string();
        pids_whose_cmdline_has(&needle)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        for pid in self.shim_pids() {
            // SAFETY: kill(2) on a shim this test's containerd started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn pids_whose_cmdline_has(needle: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

/// containerd's configuration, the node's settings and the runtime wrapper that logs each
/// call (the proof that every call went to pelagos-runtime) and passes the node's settings.
fn write_files(dir: &Path, host: &str) {
    let d = dir.display();
    let config = format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{host}/pause:1"
  # Lowering a process's oom_score_adj needs CAP_SYS_RESOURCE, which this machine's root lacks.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "pelagos"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.pelagos]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.pelagos.options]
        BinaryName = "{d}/pelagos-runtime"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{host}"]
    endpoint = ["http://{host}"]
"#
    );
    std::fs::write(dir.join("config.toml"), config).expect("containerd config");
    // The node's setting, not a pod annotation: this host's cgroup v2 tree has no cpu
    // controller, and CRI gives every sandbox cpu shares.
    std::fs::write(
        dir.join("node.toml"),
        "[runtime]\ncgroup_skip_unavailable = true\n",
    )
    .expect("node settings");
    let wrapper = format!(
        "#!/bin/sh\necho \"$*\" >> {d}/calls.log\nexec {} --config-file {d}/node.toml \"$@\"\n",
        runtime_binary().display()
    );
    let path = dir.join("pelagos-runtime");
    std::fs::write(&path, wrapper).expect("runtime wrapper");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod wrapper");
}

/// A CRI connection over containerd's unix socket.
async fn connect(socket: PathBuf) -> Channel {
    Endpoint::try_from("http://[::]:0")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .expect("connect to containerd's CRI")
}

/// The registry with `pause:1` (busybox sleeping, as the sandbox image) and `box:1`.
fn registry() -> (Registry, tempfile::TempDir) {
    let registry = Registry::start(Auth::None).expect("start registry");
    let layouts = tempfile::tempdir().expect("tempdir");
    for (name, cmd) in [("pause", vec!["sleep", "2147483647"]), ("box", vec!["sh"])] {
        let dir = layouts.path().join(name);
        busybox()
            .expect("busybox image")
            .cmd(cmd)
            .write(&dir, "1")
            .expect("write layout");
        skopeo_push(&dir, "1", &format!("{}/{name}:1", registry.host()), &[]).expect("push");
    }
    (registry, layouts)
}

fn sandbox_config(logs: &Path) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "p1".into(),
            uid: "uid-p1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        log_directory: logs.display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    // The node's network: no CNI here.
                    network: NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn status(what: &'static str) -> impl Fn(tonic::Status) -> String {
    move |s| format!("{what}: {}", s.message())
}

#[test]
fn a_pod_lives_and_ends_through_cri_with_every_call_to_pelagos_runtime() {
    let (registry, _layouts) = registry();
    let containerd = Containerd::start(&registry.host());
    let logs = tempfile::tempdir().expect("logs dir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let result = runtime.block_on(async {
        let channel = connect(containerd.socket()).await;
        let mut rt = RuntimeServiceClient::new(channel.clone());
        let mut images = ImageServiceClient::new(channel);
        pod_lifecycle(&mut rt, &mut images, &registry.host(), logs.path()).await
    });
    if let Err(e) = result {
        panic!(
            "{e}\n--- runtime calls ---\n{}\n--- containerd ---\n{}",
            containerd.runtime_calls(),
            containerd.log()
        );
    }
    let calls = containerd.runtime_calls();
    for verb in ["create", "start", "exec", "kill", "delete"] {
        assert!(
            calls
                .lines()
                .any(|l| l.split_whitespace().any(|w| w == verb)),
            "no `{verb}` reached pelagos-runtime:\n{calls}"
        );
    }
    let d = containerd.dir.path().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    assert!(
        !mounts.lines().any(|l| l.contains(&d)),
        "mounts left under {d}"
    );
}

/// Sandbox, image, container, exec, logs, stats, stop, remove; nothing left after.
async fn pod_lifecycle(
    rt: &mut RuntimeServiceClient<Channel>,
    images: &mut ImageServiceClient<Channel>,
    host: &str,
    logs: &Path,
) -> Result<(), String> {
    let config = sandbox_config(logs);
    let sandbox = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .map_err(status("RunPodSandbox"))?
        .into_inner()
        .pod_sandbox_id;
    let image = ImageSpec {
        image: format!("{host}/box:1"),
        ..Default::default()
    };
    images
        .pull_image(PullImageRequest {
            image: Some(image.clone()),
            ..Default::default()
        })
        .await
        .map_err(status("PullImage"))?;
    let container = rt
        .create_container(CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: "c1".into(),
                    attempt: 0,
                }),
                image: Some(image),
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    "echo hello; exec sleep 1000".into(),
                ],
                log_path: "c1.log".into(),
                ..Default::default()
            }),
            sandbox_config: Some(config),
        })
        .await
        .map_err(status("CreateContainer"))?
        .into_inner()
        .container_id;
    rt.start_container(StartContainerRequest {
        container_id: container.clone(),
    })
    .await
    .map_err(status("StartContainer"))?;
    let exec = rt
        .exec_sync(ExecSyncRequest {
            container_id: container.clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "echo out; echo err >&2; exit 3".into(),
            ],
            timeout: 30,
        })
        .await
        .map_err(status("ExecSync"))?
        .into_inner();
    if (
        exec.stdout.as_slice(),
        exec.stderr.as_slice(),
        exec.exit_code,
    ) != (b"out\n".as_slice(), b"err\n".as_slice(), 3)
    {
        return Err(format!("ExecSync answered {exec:?}"));
    }
    wait_for_log(&logs.join("c1.log"), "hello").await?;
    let state = rt
        .container_status(ContainerStatusRequest {
            container_id: container.clone(),
            verbose: false,
        })
        .await
        .map_err(status("ContainerStatus"))?
        .into_inner()
        .status
        .map(|s| s.state);
    if state != Some(ContainerState::ContainerRunning as i32) {
        return Err(format!("the container is not running: {state:?}"));
    }
    rt.stop_container(StopContainerRequest {
        container_id: container.clone(),
        timeout: 2,
    })
    .await
    .map_err(status("StopContainer"))?;
    rt.remove_container(RemoveContainerRequest {
        container_id: container.clone(),
    })
    .await
    .map_err(status("RemoveContainer"))?;
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: sandbox.clone(),
    })
    .await
    .map_err(status("StopPodSandbox"))?;
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: sandbox.clone(),
    })
    .await
    .map_err(status("RemovePodSandbox"))?;
    let left = rt
        .list_containers(ListContainersRequest::default())
        .await
        .map_err(status("ListContainers"))?
        .into_inner()
        .containers;
    if !left.is_empty() {
        return Err(format!("containers left: {left:?}"));
    }
    for id in [&sandbox, &container] {
        if !pids_whose_cmdline_has(id).is_empty() {
            return Err(format!("processes of {id} left"));
        }
        // containerd's cgroupfs parent for pods; pelagos-runtime makes them in the v2 tree.
        let cgroup = Path::new("/sys/fs/cgroup/unified/k8s.io").join(id);
        if cgroup.exists() {
            return Err(format!("cgroup {} left", cgroup.display()));
        }
    }
    Ok(())
}

/// Waits (60 s at most) for `text` in a CRI log file (`TIME stdout F hello` lines).
async fn wait_for_log(path: &Path, text: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log
            .lines()
            .any(|l| l.contains(" stdout F ") && l.ends_with(text))
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("no {text:?} in {}: {log:?}", path.display()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
