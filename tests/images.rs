//! `pelagos` image commands against a real registry (Debian's docker-registry on loopback):
//! pull, images, inspect, tag, rmi, prune, save/load, import, push, login/logout, pulls that
//! go wrong (corrupt blobs, cut connections, kill -9, hostile layers, bad input), and
//! concurrent pulls (processes and tasks of one engine) that fetch each blob once.

mod cli_support;

use std::sync::Arc;

use cli_support::{wait_for, Env, Served};
use pelagos_engine::pull::{pull, NoProgress, Pulled};
use pelagos_engine::{Engine, EngineOptions};
use pelagos_image::Reference;
use pelagos_registry::Platform;
use pelagos_testkit::images::{self as kit, Compression, ImageBuilder, LayerBuilder};
use pelagos_testkit::registry::{Auth, CuttingProxy};
use serde_json::Value;

fn busybox() -> ImageBuilder {
    kit::busybox().expect("busybox image")
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[test]
fn pull_lists_inspects_and_runs() {
    let served = Served::start(Auth::None, &[(&busybox(), "busybox:1")]);
    let built = &served.built[0];
    let env = Env::new();
    let image = served.image("busybox:1");
    let pulled = env.run(&["pull", &image]);
    assert!(pulled.status.success());
    // Not a terminal: Docker's plain status lines, on stdout as `docker pull` prints them,
    // then the reference.
    let status = String::from_utf8_lossy(&pulled.stdout);
    assert_eq!(status.lines().last(), Some(image.as_str()), "{status}");
    assert!(
        status.contains("Pulling fs layer")
            && status.contains("Pull complete")
            && status.contains(&format!("Digest: {}", built.manifest_digest))
            && status.contains("Status: Downloaded newer image for"),
        "{status}"
    );
    assert!(
        pulled.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );

    // images: the row, its digest, and the size of the unpacked layer.
    let rows = json_lines(&env.ok(&["images", "--format", "json"]));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0]["Repository"],
        format!("{}/busybox", served.registry.host())
    );
    assert_eq!(rows[0]["Tag"], "1");
    assert_eq!(rows[0]["Digest"], built.manifest_digest);
    assert_eq!(rows[0]["ID"], built.config_digest[7..19]);
    let quiet = env.ok(&["images", "-q"]);
    assert_eq!(quiet.trim(), &built.config_digest[7..19]);
    let table = env.ok(&["images", "--digests"]);
    assert!(table.contains(&built.manifest_digest), "{table}");

    let inspect: Value = serde_json::from_str(&env.ok(&["image", "inspect", &image])).unwrap();
    let i = &inspect[0];
    assert_eq!(i["Id"], built.config_digest);
    assert_eq!(
        i["RepoDigests"][0],
        format!(
            "{}/busybox@{}",
            served.registry.host(),
            built.manifest_digest
        )
    );
    assert_eq!(i["Config"]["Cmd"][0], "sh");
    assert_eq!(i["RootFS"]["Layers"][0], built.diff_ids[0]);
    assert_eq!(i["Os"], "linux");
    // Size = bytes of the files in the layer, as unpacked.
    let busybox_size = std::fs::metadata("/bin/busybox").unwrap().len();
    let size = i["Size"].as_u64().unwrap();
    assert!(
        size >= busybox_size && size < busybox_size + 64 * 1024,
        "{size}"
    );
    let formatted = env.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{json .Config.Cmd}}",
        &image,
    ]);
    assert_eq!(
        formatted.trim(),
        format!("{} [\"sh\"]", built.config_digest)
    );

    // A second pull is a no-op that says so.
    let again = env.run(&["pull", &image]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("Image is up to date"));

    let out = env.ok(&["run", "--rm", &image, "echo", "hello from the image"]);
    assert_eq!(out, "hello from the image\n");
    env.assert_no_container_leftovers();
}

#[test]
fn run_pulls_a_missing_image_and_passes_the_exit_code() {
    let served = Served::start(Auth::None, &[(&busybox(), "bb:latest")]);
    let env = Env::new();
    let image = served.image("bb");
    let out = env.run(&[
        "run",
        "--rm",
        &image,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unable to find image"), "{stderr}");
    assert!(stderr.ends_with("err\n"), "{stderr}");
    assert_eq!(
        json_lines(&env.ok(&["images", "--format", "json"])).len(),
        1
    );
    // --pull never with a missing image: a clear error, nothing made.
    let (code, err) = env.fail(&[
        "run",
        "--rm",
        "--pull",
        "never",
        &served.image("other:1"),
        "true",
    ]);
    assert_eq!(code, 125);
    assert!(err.contains("other"), "{err}");
    env.assert_no_container_leftovers();
}

#[test]
fn layers_with_whiteouts_zstd_and_docker_media_types() {
    let docker = busybox().format(kit::Format::Docker);
    let zstd = kit::zstd_busybox().unwrap();
    // Whiteouts on top of busybox, so the merged tree can be listed from inside.
    let mut wh = busybox();
    for (layer, compression) in kit::whiteouts().layers() {
        wh = wh.layer(layer.clone(), *compression);
    }
    let served = Served::start(
        Auth::None,
        &[(&wh, "wh:1"), (&zstd, "zstd:1"), (&docker, "docker:1")],
    );
    let env = Env::new();
    for name in ["wh:1", "zstd:1", "docker:1"] {
        env.ok(&["pull", "-q", &served.image(name)]);
    }
    // Layers are keyed by chain id (from the uncompressed diff_ids): the busybox layer is
    // stored once for all three images, whatever its compression. Then the three whiteout
    // layers and zstd's /etc/zstd layer.
    let layers = env.committed_layers();
    assert_eq!(layers.len(), 1 + 3 + 1, "{layers:?}");

    let out = env.ok(&[
        "run",
        "--rm",
        &served.image("wh:1"),
        "sh",
        "-c",
        "cat /a/keep /a/added /d/new /f; ls /d; ls / | grep -c gone; ls -a /a",
    ]);
    assert!(
        out.contains("keep v1\nadded in layer 2\nnew in layer 3\nf v3\n"),
        "{out}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"new"), "{out}");
    assert!(
        !lines.contains(&"old1") && !lines.contains(&"remove-me"),
        "{out}"
    );
    assert!(lines.contains(&"0"), "gone must be gone: {out}");
    assert_eq!(
        env.ok(&["run", "--rm", &served.image("zstd:1"), "cat", "/etc/zstd"]),
        "zstd\n"
    );
    let inspect: Value =
        serde_json::from_str(&env.ok(&["image", "inspect", &served.image("docker:1")])).unwrap();
    assert_eq!(
        inspect[0]["Descriptor"]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        env.ok(&["run", "--rm", &served.image("docker:1"), "echo", "ok"]),
        "ok\n"
    );
    env.assert_no_container_leftovers();
}

#[test]
fn multi_platform_index_picks_the_host_or_the_asked_platform() {
    let served = Served::start(Auth::None, &[]);
    let dir = served.layouts.path().join("index");
    let amd = busybox()
        .platform("linux", "amd64", None)
        .env("ARCH", "amd64");
    let arm = ImageBuilder::new()
        .layer(
            LayerBuilder::new().file("arch", "arm64\n", 0o644),
            Compression::Gzip,
        )
        .platform("linux", "arm64", Some("v8"))
        .cmd(["/arch"]);
    let index = kit::write_index(&dir, "multi", &[amd, arm]).unwrap();
    served
        .registry
        .push_oci_layout(&dir, "multi:multi", true)
        .unwrap();
    let env = Env::new();
    let image = served.image("multi:multi");
    env.ok(&["pull", "-q", &image]);
    let host: Value = serde_json::from_str(&env.ok(&["image", "inspect", &image])).unwrap();
    assert_eq!(host[0]["Architecture"], "amd64");
    // The repo digest Docker records is the index's.
    assert_eq!(
        host[0]["RepoDigests"][0],
        format!("{}/multi@{}", served.registry.host(), index.digest)
    );
    assert_eq!(
        env.ok(&["run", "--rm", &image, "sh", "-c", "echo $ARCH"]),
        "amd64\n"
    );

    let other = Env::new();
    other.ok(&["pull", "-q", "--platform", "linux/arm64", &image]);
    let arm: Value = serde_json::from_str(&other.ok(&["image", "inspect", &image])).unwrap();
    assert_eq!(arm[0]["Architecture"], "arm64");
    assert_eq!(arm[0]["Variant"], "v8");

    let third = Env::new();
    let (_, err) = third.fail(&["pull", "--platform", "linux/s390x", &image]);
    assert!(
        err.contains("s390x") && err.contains("linux/arm64"),
        "{err}"
    );
    assert!(third.committed_layers().is_empty());
}

#[test]
fn an_image_of_many_layers_runs() {
    // 90 layers: their absolute diff paths would not fit in one mount option page.
    let mut tall = busybox();
    for i in 0..89 {
        tall = tall.layer(
            LayerBuilder::new().file(&format!("layer-{i:02}"), format!("{i}\n"), 0o644),
            Compression::Gzip,
        );
    }
    let served = Served::start(Auth::None, &[(&tall, "tall:1")]);
    let env = Env::new();
    let image = served.image("tall:1");
    env.ok(&["pull", "-q", &image]);
    assert_eq!(env.committed_layers().len(), 90);
    let out = env.ok(&[
        "run",
        "--rm",
        &image,
        "sh",
        "-c",
        "ls / | grep -c layer-; cat /layer-00 /layer-88",
    ]);
    assert_eq!(out, "89\n0\n88\n");
    env.assert_no_container_leftovers();
}

#[test]
fn corrupt_blob_is_refused_and_nothing_is_kept() {
    let served = Served::start(Auth::None, &[(&busybox(), "bad:1")]);
    let layer = &served.built[0].layer_digests[0];
    let data = served.registry.blob_data_path(layer);
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();

    let env = Env::new();
    let (_, err) = env.fail(&["pull", &served.image("bad:1")]);
    assert!(
        err.contains(layer.as_str()) || err.contains("digest"),
        "{err}"
    );
    assert!(
        env.committed_layers().is_empty(),
        "{:?}",
        env.committed_layers()
    );
    assert!(!env.committed_blobs().contains(&layer[7..].to_string()));
    assert!(env.ok(&["images", "-q"]).trim().is_empty());
    let tmp = env.image_dir().join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|r| r.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "tmp not cleaned: {left:?}");
}

#[test]
fn cut_connections_resume_or_fail_cleanly() {
    let served = Served::start(Auth::None, &[(&busybox(), "cut:1")]);
    // Cut twice, 300 kB into a response: the reader resumes with Range requests.
    let flaky = CuttingProxy::start(&served.registry.host(), 300_000, 2).unwrap();
    let env = Env::new();
    let image = format!("{}/cut:1", flaky.host());
    env.ok(&["pull", "-q", &image]);
    assert!(flaky.cuts() >= 1, "the proxy never cut");
    assert_eq!(
        env.ok(&["run", "--rm", &image, "echo", "resumed"]),
        "resumed\n"
    );

    // Cut on every connection before anything useful passes: the pull gives up after its
    // retries with an error and keeps nothing.
    let dead = CuttingProxy::start(&served.registry.host(), 100, 1000).unwrap();
    let env2 = Env::new();
    let (_, err) = env2.fail(&["pull", &format!("{}/cut:1", dead.host())]);
    assert!(!err.is_empty());
    assert!(env2.committed_layers().is_empty());
    assert!(env2.ok(&["images", "-q"]).trim().is_empty());
    env.assert_no_container_leftovers();
}

#[test]
fn killed_pull_leaves_nothing_trusted_and_a_later_pull_works() {
    // A big, incompressible layer so the pull is still running when it is killed.
    let mut noise = vec![0u8; 48 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let big = busybox().layer(
        LayerBuilder::new().file("noise", noise, 0o644),
        Compression::Gzip,
    );
    let served = Served::start(Auth::None, &[(&big, "big:1")]);
    // Throttle with a proxy that cuts often: slow enough to be killed midway.
    let env = Env::new();
    let image = served.image("big:1");
    let mut child = env.cmd().args(["pull", "-q", &image]).spawn().unwrap();
    let tmp = env.image_dir().join("tmp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let busy = std::fs::read_dir(&tmp)
            .map(|r| r.count() > 0)
            .unwrap_or(false);
        if busy || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // SAFETY: kill(2) on the pid of the child this test spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    assert!(
        env.ok(&["images", "-q"]).trim().is_empty(),
        "a killed pull recorded an image"
    );
    // Whatever was committed is complete: every committed blob verifies.
    for hex in env.committed_blobs() {
        let data = std::fs::read(env.image_dir().join("blobs/sha256").join(&hex)).unwrap();
        assert_eq!(kit::sha256_digest(&data), format!("sha256:{hex}"));
    }
    env.ok(&["pull", "-q", &image]);
    assert_eq!(
        env.ok(&["run", "--rm", &image, "sh", "-c", "wc -c < /noise"])
            .trim(),
        (48 << 20).to_string()
    );
    // prune removes the leftovers of the killed pull.
    env.ok(&["image", "prune", "-f"]);
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|r| r.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "tmp after prune: {left:?}");
}

/// `len` bytes that do not compress (xorshift from `seed`).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// busybox with a layer of incompressible `/noiseN` per size, so that pulls take a while.
fn busybox_with_noise(sizes: &[usize]) -> ImageBuilder {
    sizes
        .iter()
        .enumerate()
        .fold(busybox(), |image, (i, &size)| {
            image.layer(
                LayerBuilder::new().file(&format!("noise{i}"), noise(size, i as u64 + 7), 0o644),
                Compression::Gzip,
            )
        })
}

/// The image's blobs (config and layers) that the proxy saw fetched other than once.
fn blobs_not_fetched_once(proxy: &CuttingProxy, built: &kit::BuiltImage) -> Vec<(String, usize)> {
    std::iter::once(&built.config_digest)
        .chain(&built.layer_digests)
        .map(|d| (d.clone(), proxy.blob_gets(d)))
        .filter(|(_, gets)| *gets != 1)
        .collect()
}

/// Neither claims nor temporary files are left in the store.
fn assert_no_claims_left(env: &Env) {
    for dir in ["locks", "tmp"] {
        let left: Vec<_> = std::fs::read_dir(env.image_dir().join(dir))
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{dir}/ after the pulls: {left:?}");
    }
}

/// Whether process `pid` is blocked waiting for an flock (a `->` line of /proc/locks).
fn waits_on_flock(pid: u32) -> bool {
    let pid = pid.to_string();
    std::fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&"->") && f.get(2) == Some(&"FLOCK") && f.get(5) == Some(&pid.as_str())
        })
}

/// A spawned `pelagos`, killed (by its pid) if the test fails before it ends.
struct KillOnDrop(Option<std::process::Child>);

impl KillOnDrop {
    fn kill_9(&mut self) {
        if let Some(mut child) = self.0.take() {
            // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    fn output(mut self) -> std::process::Output {
        self.0
            .take()
            .expect("child")
            .wait_with_output()
            .expect("wait")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill_9();
    }
}

fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "pull failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn concurrent_pulls_fetch_each_blob_once() {
    let served = Served::start(
        Auth::None,
        &[(&busybox_with_noise(&[4 << 20, 2 << 20]), "same:1")],
    );
    let built = &served.built[0];
    let counting = CuttingProxy::passthrough(&served.registry.host()).unwrap();
    let image = format!("{}/same:1", counting.host());
    let env = Env::new();
    let pulls: Vec<_> = (0..8)
        .map(|_| {
            KillOnDrop(Some(
                env.cmd()
                    .args(["pull", "-q", &image])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap(),
            ))
        })
        .collect();
    for pull in pulls {
        assert_success(&pull.output());
    }
    assert_eq!(blobs_not_fetched_once(&counting, built), vec![]);
    // One consistent store: the image, each of its layers once, nothing in progress.
    assert_eq!(env.ok(&["images", "-q"]).trim().lines().count(), 1);
    assert_eq!(env.committed_layers().len(), built.diff_ids.len());
    assert_no_claims_left(&env);
    assert_eq!(
        env.ok(&["run", "--rm", &image, "sh", "-c", "wc -c < /noise0"])
            .trim(),
        (4 << 20).to_string()
    );
    env.assert_no_container_leftovers();
}

#[test]
fn a_pull_killed_mid_download_does_not_block_a_waiting_pull() {
    let served = Served::start(Auth::None, &[(&busybox_with_noise(&[8 << 20]), "killed:1")]);
    // The first pull goes through a proxy that holds every response 1 MiB in: it stays
    // mid-download, holding its claims, until it is killed.
    let stalling = CuttingProxy::stalling(&served.registry.host(), 1 << 20).unwrap();
    let env = Env::new();
    let mut first = KillOnDrop(Some(
        env.cmd()
            .args(["pull", "-q", &format!("{}/killed:1", stalling.host())])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    ));
    wait_for("the first pull is mid-download", || stalling.stalled() > 0);
    let image = served.image("killed:1");
    let second = KillOnDrop(Some(
        env.cmd()
            .args(["pull", "-q", &image])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let second_pid = second.0.as_ref().map_or(0, |c| c.id());
    wait_for("the second pull waits for the first one's claim", || {
        waits_on_flock(second_pid)
    });
    first.kill_9();
    // The kernel dropped the dead pull's locks: the waiting pull goes on and completes.
    assert_success(&second.output());
    assert_eq!(
        env.ok(&["run", "--rm", &image, "sh", "-c", "wc -c < /noise0"])
            .trim(),
        (8 << 20).to_string()
    );
    // The dead pull's partial files went with the next opening of the store (`run`).
    assert_no_claims_left(&env);
    env.assert_no_container_leftovers();
}

/// The engine over `env`'s directories, as a daemon would hold it.
fn engine_of(env: &Env) -> Arc<Engine> {
    let options = EngineOptions {
        root: env.root.clone(),
        runroot: env.runroot.clone(),
        config_file: env.engine_config.clone(),
        auth_file: env.config_dir.join("config.json"),
        cgroup_parent: env.cgroup_parent.clone(),
        monitor_program: None,
        short_lived: false,
    };
    Arc::new(Engine::open(options).expect("open the engine"))
}

/// Starts a pull of `image` as a task of the current runtime.
fn spawn_pull(
    engine: &Arc<Engine>,
    image: &str,
) -> tokio::task::JoinHandle<pelagos_engine::Result<Pulled>> {
    let engine = engine.clone();
    let reference = Reference::parse(image).expect("reference");
    tokio::spawn(
        async move { pull(&engine, &reference, &Platform::host(), Arc::new(NoProgress)).await },
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn concurrent_pulls_in_one_process_fetch_each_blob_once() {
    let served = Served::start(
        Auth::None,
        &[(&busybox_with_noise(&[3 << 20, 1 << 20]), "tasks:1")],
    );
    let built = &served.built[0];
    let counting = CuttingProxy::passthrough(&served.registry.host()).unwrap();
    let image = format!("{}/tasks:1", counting.host());
    let env = Env::new();
    let engine = engine_of(&env);
    runtime().block_on(async {
        let pulls: Vec<_> = (0..6).map(|_| spawn_pull(&engine, &image)).collect();
        for p in pulls {
            p.await.expect("pull task").expect("pull");
        }
    });
    assert_eq!(blobs_not_fetched_once(&counting, built), vec![]);
    assert_eq!(env.ok(&["images", "-q"]).trim().lines().count(), 1);
    assert_eq!(env.committed_layers().len(), built.diff_ids.len());
    assert_no_claims_left(&env);
}

#[test]
fn a_dropped_pull_stops_its_downloads_and_gives_its_claims_up() {
    let served = Served::start(
        Auth::None,
        &[(&busybox_with_noise(&[8 << 20]), "dropped:1")],
    );
    let built = &served.built[0];
    let big = built.layer_digests.last().expect("layers");
    let stalling = CuttingProxy::stalling(&served.registry.host(), 1 << 20).unwrap();
    let counting = CuttingProxy::passthrough(&served.registry.host()).unwrap();
    let env = Env::new();
    let engine = engine_of(&env);
    runtime().block_on(async {
        let first = spawn_pull(&engine, &format!("{}/dropped:1", stalling.host()));
        while stalling.stalled() == 0 {
            assert!(
                !first.is_finished(),
                "the first pull ended before it stalled"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        first.abort();
        assert!(first.await.expect_err("aborted").is_cancelled());
        let second = spawn_pull(&engine, &format!("{}/dropped:1", counting.host()));
        // The dropped pull's worker reads on, sees the pull cancelled and gives its claims
        // up; had it finished its download instead, the second pull would fetch nothing.
        stalling.release();
        second.await.expect("pull task").expect("pull");
    });
    assert_eq!(counting.blob_gets(big), 1);
    assert_eq!(env.ok(&["images", "-q"]).trim().lines().count(), 1);
    assert_no_claims_left(&env);
}

#[test]
fn hostile_layers_never_write_outside_the_store() {
    let target = tempfile::tempdir().unwrap();
    let victim = target.path().join("victim");
    kit::hostile_target_prepare(&victim).unwrap();
    let images: Vec<(ImageBuilder, String)> = kit::Hostile::ALL
        .iter()
        .map(|k| (kit::hostile(*k, &victim), format!("hostile-{}:1", k.name())))
        .collect();
    let refs: Vec<(&ImageBuilder, &str)> = images.iter().map(|(i, n)| (i, n.as_str())).collect();
    let served = Served::start(Auth::None, &refs);
    let env = Env::new();
    for (_, name) in &images {
        let out = env.run(&["pull", "-q", &served.image(name)]);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!err.trim().is_empty(), "{name}: failed without a message");
        }
        kit::hostile_target_check(&victim).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
    env.assert_no_container_leftovers();
}

#[test]
fn tag_rmi_and_prune() {
    let other = ImageBuilder::new()
        .layer(
            LayerBuilder::new().file("x", "x\n", 0o644),
            Compression::Gzip,
        )
        .cmd(["/x"]);
    let served = Served::start(Auth::None, &[(&busybox(), "a:1"), (&other, "b:1")]);
    let env = Env::new();
    let a = served.image("a:1");
    env.ok(&["pull", "-q", &a]);
    env.ok(&["pull", "-q", &served.image("b:1")]);
    env.ok(&["tag", &a, "mine/app:v2"]);
    let rows = json_lines(&env.ok(&["images", "--format", "json"]));
    assert!(
        rows.iter()
            .any(|r| r["Repository"] == "mine/app" && r["Tag"] == "v2"),
        "{rows:?}"
    );
    assert_eq!(
        env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}", "mine/app"])
            .trim(),
        "mine/app:v2"
    );
    // Docker's table directive: titles, columns aligned by its tabwriter (minimum width 10,
    // padding 3); full Go templates.
    assert_eq!(
        env.ok(&[
            "images",
            "--format",
            "table {{.Repository}}\\t{{.Tag | upper}}",
            "mine/app"
        ]),
        "REPOSITORY   TAG\nmine/app     V2\n"
    );
    assert_eq!(
        env.ok(&[
            "images",
            "--format",
            "{{if eq .Tag \"v2\"}}{{len .Repository}}{{end}}",
            "mine/app"
        ]),
        "8\n"
    );

    // A container that uses the image keeps it from rmi and prune.
    env.ok(&["run", "--name", "keeper", "mine/app:v2", "true"]);
    let out = env.ok(&["rmi", "mine/app:v2"]);
    assert!(out.contains("Untagged: mine/app:v2"), "{out}");
    let (_, err) = env.fail(&["rmi", &a]);
    assert!(
        err.contains("keeper") || err.contains("in use") || err.contains("used"),
        "{err}"
    );
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("keeper") && ps.contains("Exited (0)"), "{ps}");
    env.ok(&["rm", "keeper"]);
    let out = env.ok(&["rmi", &a]);
    assert!(out.contains("Deleted: sha256:"), "{out}");

    // b is unused: prune -a removes it and every layer and blob.
    let pruned = env.ok(&["image", "prune", "-a", "-f"]);
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    assert!(env.ok(&["images", "-q"]).trim().is_empty());
    assert!(
        env.committed_layers().is_empty(),
        "{:?}",
        env.committed_layers()
    );
    assert!(
        env.committed_blobs().is_empty(),
        "{:?}",
        env.committed_blobs()
    );
    let (_, err) = env.fail(&["rmi", "nothere:1"]);
    assert!(err.contains("nothere"), "{err}");
    env.assert_no_container_leftovers();
}

#[test]
fn save_load_round_trip_and_skopeo_interchange() {
    let served = Served::start(Auth::None, &[(&busybox(), "s:1")]);
    let env = Env::new();
    let image = served.image("s:1");
    env.ok(&["pull", "-q", &image]);
    let archive = env.dir.path().join("saved.tar");
    env.ok(&["save", "-o", archive.to_str().unwrap(), &image]);

    let fresh = Env::new();
    let out = fresh.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {image}")), "{out}");
    let a: Value = serde_json::from_str(&env.ok(&["image", "inspect", &image])).unwrap();
    let b: Value = serde_json::from_str(&fresh.ok(&["image", "inspect", &image])).unwrap();
    assert_eq!(a[0]["Id"], b[0]["Id"]);
    assert_eq!(a[0]["RootFS"], b[0]["RootFS"]);
    assert_eq!(
        fresh.ok(&["run", "--rm", &image, "echo", "loaded"]),
        "loaded\n"
    );

    // skopeo reads our archive as a docker-archive and as an OCI archive...
    let oci = env.dir.path().join("from-save");
    let st = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            &format!("docker-archive:{}", archive.display()),
            &format!("oci:{}:x", oci.display()),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let st = std::process::Command::new("skopeo")
        .args(["inspect", &format!("oci-archive:{}", archive.display())])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    // ...and we load what skopeo writes.
    let skopeo_archive = env.dir.path().join("skopeo.tar");
    let st = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            &format!("oci:{}:x", oci.display()),
            &format!("docker-archive:{}:sk/busybox:7", skopeo_archive.display()),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let third = Env::new();
    let out = third.ok(&["load", "-i", skopeo_archive.to_str().unwrap()]);
    assert!(out.contains("sk/busybox:7"), "{out}");
    assert_eq!(
        third.ok(&["run", "--rm", "sk/busybox:7", "echo", "skopeo"]),
        "skopeo\n"
    );

    // A truncated archive is refused and loads nothing.
    let bytes = std::fs::read(&archive).unwrap();
    let cut = env.dir.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let fourth = Env::new();
    fourth.fail(&["load", "-i", cut.to_str().unwrap()]);
    assert!(fourth.ok(&["images", "-q"]).trim().is_empty());
}

#[test]
fn import_a_rootfs_tarball_and_push_it() {
    let env = Env::new();
    let rootfs = env.dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    std::fs::write(rootfs.join("hello"), "imported\n").unwrap();
    let tarball = env.dir.path().join("rootfs.tar");
    let st = std::process::Command::new("tar")
        .args([
            "-C",
            rootfs.to_str().unwrap(),
            "-cf",
            tarball.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let id = env.ok(&[
        "import",
        "-c",
        "CMD [\"/bin/sh\", \"-c\", \"cat /hello\"]",
        "-c",
        "ENV GREETING=hi",
        tarball.to_str().unwrap(),
        "imported:1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(env.ok(&["run", "--rm", "imported:1"]), "imported\n");
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "imported:1",
            "/bin/sh",
            "-c",
            "echo $GREETING"
        ]),
        "hi\n"
    );

    // push to a registry, then pull it into a fresh store: same image id and manifest.
    let served = Served::start(Auth::None, &[]);
    let target = served.image("pushed/imported:1");
    env.ok(&["tag", "imported:1", &target]);
    let out = env.ok(&["push", &target]);
    assert!(out.contains("digest: sha256:"), "{out}");
    let fresh = Env::new();
    fresh.ok(&["pull", "-q", &target]);
    let a: Value = serde_json::from_str(&env.ok(&["image", "inspect", &target])).unwrap();
    let b: Value = serde_json::from_str(&fresh.ok(&["image", "inspect", &target])).unwrap();
    assert_eq!(a[0]["Id"], b[0]["Id"]);
    assert_eq!(fresh.ok(&["run", "--rm", &target]), "imported\n");
    // A second push finds every blob already there.
    let again = env.run(&["push", &target]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("Layer already exists"));
}

#[test]
fn basic_auth_needs_login() {
    let served = Served::start(
        Auth::htpasswd("alice", "s3cret"),
        &[(&busybox(), "private:1")],
    );
    let env = Env::new();
    let image = served.image("private:1");
    let (_, err) = env.fail(&["pull", &image]);
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("login"),
        "{err}"
    );
    let host = served.registry.host();
    let (_, err) = env.fail(&["login", "-u", "alice", "-p", "wrong", &host]);
    assert!(!err.is_empty());
    let out = env
        .cmd()
        .args(["login", "-u", "alice", "--password-stdin", &host])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"s3cret\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let config = std::fs::read_to_string(env.config_dir.join("config.json")).unwrap();
    assert!(config.contains(&host), "{config}");
    env.ok(&["pull", "-q", &image]);
    assert!(env
        .ok(&["logout", &host])
        .contains("Removing login credentials"));
    let fresh = Env::new();
    fresh.fail(&["pull", &image]);
}

#[test]
fn token_auth_with_login() {
    let served = Served::start(Auth::token("bob", "hunter2"), &[(&busybox(), "tok:1")]);
    let env = Env::new();
    let image = served.image("tok:1");
    env.fail(&["pull", &image]);
    env.ok(&[
        "login",
        "-u",
        "bob",
        "-p",
        "hunter2",
        &served.registry.host(),
    ]);
    env.ok(&["pull", "-q", &image]);
    assert!(served.registry.tokens_issued() > 0);
    assert_eq!(env.ok(&["run", "--rm", &image, "echo", "token"]), "token\n");
}

#[test]
fn mirrors_from_the_engine_config_serve_docker_hub_names() {
    // docker.io/library/busybox is asked for; only the loopback mirror is ever contacted.
    let served = Served::start(Auth::None, &[(&busybox(), "library/busybox:latest")]);
    let env = Env::new();
    env.write_config(&format!(
        "[registries.mirrors]\n\"docker.io\" = [\"{}\"]\n",
        served.registry.host()
    ));
    env.ok(&["pull", "-q", "busybox"]);
    let rows = json_lines(&env.ok(&["images", "--format", "json"]));
    assert_eq!(rows[0]["Repository"], "busybox");
    assert_eq!(
        env.ok(&["run", "--rm", "busybox", "echo", "mirrored"]),
        "mirrored\n"
    );
}

#[test]
fn bad_input_gets_clear_errors() {
    let env = Env::new();
    let (code, err) = env.fail(&["pull", "Not/A:Valid:Ref"]);
    assert_eq!(code, 1);
    assert!(err.contains("Not/A:Valid:Ref"), "{err}");
    let (_, err) = env.fail(&["image", "inspect", "missing:1"]);
    assert!(err.contains("missing:1"), "{err}");
    let (_, err) = env.fail(&["tag", "missing:1", "x:1"]);
    assert!(err.contains("missing"), "{err}");
    env.write_config("[registries]\nbogus = 1\n");
    let (_, err) = env.fail(&["images"]);
    assert!(err.contains("bogus"), "{err}");
}

/// A GnuPG home and a `pass` store for `docker-credential-pass`; the gpg-agent it starts is
/// stopped on drop.
struct PassStore {
    dir: tempfile::TempDir,
}

impl PassStore {
    fn new() -> PassStore {
        let dir = tempfile::tempdir().unwrap();
        let store = PassStore { dir };
        std::fs::create_dir_all(store.gnupg()).unwrap();
        std::fs::set_permissions(
            store.gnupg(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let gen = store
            .command("gpg")
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args([
                "--quick-gen-key",
                "pelagos test <test@pelagos.invalid>",
                "default",
                "default",
                "never",
            ])
            .output()
            .unwrap();
        assert!(
            gen.status.success(),
            "{}",
            String::from_utf8_lossy(&gen.stderr)
        );
        let init = store
            .command("pass")
            .args(["init", "test@pelagos.invalid"])
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        store
    }

    fn gnupg(&self) -> std::path::PathBuf {
        self.dir.path().join("gnupg")
    }

    fn command(&self, program: &str) -> std::process::Command {
        let mut c = std::process::Command::new(program);
        self.apply(&mut c);
        c
    }

    fn apply(&self, c: &mut std::process::Command) {
        c.env("GNUPGHOME", self.gnupg())
            .env("PASSWORD_STORE_DIR", self.dir.path().join("store"));
    }

    fn entries(&self) -> String {
        let out = self.command("pass").arg("ls").output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PassStore {
    fn drop(&mut self) {
        let _ = self
            .command("gpgconf")
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

#[test]
fn login_through_a_credential_helper() {
    // Docker's credsStore: the secret goes to docker-credential-pass (a real helper, over a
    // real pass/GnuPG store), config.json only records that a login exists.
    let served = Served::start(Auth::htpasswd("carol", "helper-pw"), &[(&busybox(), "h:1")]);
    let host = served.registry.host();
    let image = served.image("h:1");
    let store = PassStore::new();
    let env = Env::new();
    std::fs::write(
        env.config_dir.join("config.json"),
        r#"{"credsStore": "pass"}"#,
    )
    .unwrap();
    let run = |args: &[&str], stdin: &[u8]| {
        use std::io::Write;
        let mut c = env.cmd();
        store.apply(&mut c);
        let mut child = c
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(
        &["login", "-u", "carol", "--password-stdin", &host],
        b"helper-pw\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(env.config_dir.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["credsStore"], "pass");
    assert_eq!(config["auths"][&host], serde_json::json!({}), "{config}");
    assert!(!config.to_string().contains("helper-pw"));
    assert!(
        store.entries().contains(&host.replace(':', "")[..9]) || !store.entries().trim().is_empty()
    );
    let out = run(&["pull", "-q", &image], b"");
    assert!(
        out.status.success(),
        "pull with helper credentials: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["logout", &host], b"");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Removing login credentials"));
    assert!(
        !store.entries().contains("carol"),
        "logout erased it: {}",
        store.entries()
    );
    let fresh = Env::new();
    std::fs::write(
        fresh.config_dir.join("config.json"),
        r#"{"credsStore": "pass"}"#,
    )
    .unwrap();
    let mut c = fresh.cmd();
    store.apply(&mut c);
    let out = c.args(["pull", &image]).output().unwrap();
    assert!(
        !out.status.success(),
        "the helper's secret was erased by logout"
    );
}

#[test]
fn images_filters_and_history() {
    let labelled = ImageBuilder::new()
        .layer(
            LayerBuilder::new().file("a", "a\n", 0o644),
            Compression::Gzip,
        )
        .layer(
            LayerBuilder::new().file("b", "bb\n", 0o644),
            Compression::Gzip,
        )
        .label("team", "blue")
        .cmd(["/a"]);
    let served = Served::start(Auth::None, &[(&busybox(), "bb:1"), (&labelled, "lab:1")]);
    let env = Env::new();
    env.ok(&["pull", "-q", &served.image("bb:1")]);
    env.ok(&["pull", "-q", &served.image("lab:1")]);
    let host = served.registry.host();
    let refs = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        full.extend_from_slice(args);
        let mut v: Vec<String> = env.ok(&full).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(
        refs(&["-f", "label=team=blue"]),
        vec![format!("{host}/lab:1")]
    );
    assert_eq!(refs(&["-f", "label=team=red"]), Vec::<String>::new());
    assert_eq!(
        refs(&["-f", &format!("reference={host}/b*")]),
        vec![format!("{host}/bb:1")]
    );
    assert_eq!(refs(&["-f", "dangling=true"]), Vec::<String>::new());
    // Moving the tag leaves the old image dangling.
    env.ok(&["tag", &served.image("lab:1"), &served.image("bb:1")]);
    let dangling = env.ok(&["images", "-q", "-f", "dangling=true"]);
    assert_eq!(dangling.trim(), &served.built[0].config_digest[7..19]);
    let (_, err) = env.fail(&["images", "-f", "colour=blue"]);
    assert!(err.contains("colour"), "{err}");

    // history: newest first, one row per history entry, layer sizes in Docker's units.
    let rows: Vec<Value> = env
        .ok(&["history", "--format", "json", &served.image("lab:1")])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["ID"], served.built[1].config_digest[7..19]);
    assert_eq!(rows[0]["Size"], "3B");
    assert_eq!(rows[1]["ID"], "<missing>");
    assert_eq!(rows[1]["Size"], "2B");
    let table = env.ok(&["image", "history", &served.image("lab:1")]);
    assert!(table.starts_with("IMAGE"), "{table}");
}

#[test]
fn version_and_info_report_the_setup() {
    let served = Served::start(Auth::None, &[(&busybox(), "i:1")]);
    let env = Env::new();
    env.ok(&["pull", "-q", &served.image("i:1")]);
    let info: Value = serde_json::from_str(&env.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(info["Images"], 1);
    assert_eq!(info["Containers"], 0);
    assert_eq!(info["DockerRootDir"], env.root.display().to_string());
    assert_eq!(info["CgroupVersion"], "2");
    // Docker's fields scripts read.
    assert_eq!(info["OSType"], "linux");
    assert_eq!(info["Architecture"], std::env::consts::ARCH);
    assert_eq!(info["ContainersRunning"], 0);
    assert!(info["NCPU"].as_u64().unwrap_or(0) >= 1);
    assert!(info["ClientInfo"].is_object(), "{info}");
    // `docker version`'s Client and Server objects.
    let version = env.ok(&[
        "version",
        "--format",
        "{{.Client.Version}} {{.Server.Version}} {{.Server.ApiVersion}} {{.Server.Os}} \
         {{(index .Server.Components 1).Details.OciRuntimeSpec}}",
    ]);
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(version.trim(), format!("{v} {v} 1.41 linux 1.2.0"));
    let text = env.ok(&["version"]);
    assert!(text.starts_with("Client:\n Version:"), "{text}");
    assert!(text.contains("\nServer: pelagos"), "{text}");
    assert!(env.ok(&["info"]).contains("Storage Driver: overlay"));
}

#[test]
fn a_full_disk_fails_the_pull_and_leaves_the_store_usable() {
    // The store on a 6 MiB tmpfs: a 12 MB incompressible layer cannot fit.
    let mut noise = vec![0u8; 12 << 20];
    let mut x: u64 = 0x2545f4914f6cdd1d;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let big = ImageBuilder::new()
        .layer(
            LayerBuilder::new().file("noise", noise, 0o644),
            Compression::Gzip,
        )
        .cmd(["/noise"]);
    let small = ImageBuilder::new()
        .layer(
            LayerBuilder::new().file("small", "small\n", 0o644),
            Compression::Gzip,
        )
        .cmd(["/small"]);
    let served = Served::start(Auth::None, &[(&big, "big:1"), (&small, "small:1")]);
    let env = Env::new();
    std::fs::create_dir_all(&env.root).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &env.root,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=6m"),
    )
    .unwrap();
    let (_, err) = env.fail(&["pull", &served.image("big:1")]);
    assert!(
        err.contains("No space left") || err.contains("space"),
        "{err}"
    );
    assert!(env.ok(&["images", "-q"]).trim().is_empty());
    assert!(
        env.committed_layers().is_empty(),
        "{:?}",
        env.committed_layers()
    );
    let tmp = env.image_dir().join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|r| r.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "tmp not cleaned: {left:?}");
    // The space came back: a small image pulls and is listed.
    env.ok(&["pull", "-q", &served.image("small:1")]);
    assert_eq!(env.ok(&["images", "-q"]).trim().lines().count(), 1);
    nix::mount::umount2(&env.root, nix::mount::MntFlags::MNT_DETACH).unwrap();
}
