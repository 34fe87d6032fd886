//! pelagos-dockerd's image endpoints through the real docker CLI 28 and raw HTTP: pull with
//! progress, images, inspect, history, tag, rmi (409 in use), prune, save/load, push to a
//! registry and back, login to an htpasswd registry, import, commit; build and search refused
//! clearly; the pelagos CLI sees what the daemon pulled.

mod dockerd_support;

use std::process::Stdio;

use dockerd_support::{served_busybox, Daemon};
use pelagos_testkit::registry::{Auth, Registry};
use serde_json::Value;

/// `docker image inspect NAME`, parsed.
fn inspect(d: &Daemon, name: &str) -> Value {
    let text = d.ok(&["image", "inspect", name]);
    let v: Value = serde_json::from_str(&text).expect("inspect JSON");
    v[0].clone()
}

/// Runs the pelagos CLI on the daemon's root, which must succeed.
fn pelagos_ok(d: &Daemon, args: &[&str]) {
    let out = d.pelagos(args).output().unwrap();
    assert!(
        out.status.success(),
        "pelagos {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The docker CLI with an empty PATH: no credential helper (`pass`) is found, so `docker
/// login` keeps the credentials in the test's own config.json.
fn docker_without_helpers(
    d: &Daemon,
    empty: &std::path::Path,
    args: &[&str],
) -> std::process::Command {
    let mut c = d.docker(args);
    c.env("PATH", empty);
    c
}

/// A root filesystem tarball with one file, for `docker import`.
fn rootfs_tar(dir: &std::path::Path) -> std::path::PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/greeting"), "hello\n").unwrap();
    let tar = dir.join("rootfs.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

#[test]
fn pull_shows_progress_and_the_image_is_listed_inspected_and_shared() {
    let served = served_busybox();
    let d = Daemon::start();
    let out = d.ok(&["pull", &served.image]);
    assert!(out.contains("1: Pulling from"), "{out}");
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains("Digest: sha256:"), "{out}");
    assert!(
        out.contains(&format!(
            "Status: Downloaded newer image for {}",
            served.image
        )),
        "{out}"
    );
    let again = d.ok(&["pull", &served.image]);
    assert!(
        again.contains(&format!("Status: Image is up to date for {}", served.image)),
        "{again}"
    );

    let host = served.registry.host();
    let listed = d.ok(&["images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}"]);
    let image = inspect(&d, &served.image);
    let id = image["Id"].as_str().unwrap().to_string();
    assert_eq!(listed.trim(), format!("{host}/box 1 {}", &id[7..19]));
    assert_eq!(image["RepoTags"][0], served.image.as_str());
    assert_eq!(image["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(image["Os"], "linux");
    assert!(image["RepoDigests"][0]
        .as_str()
        .unwrap()
        .starts_with(&format!("{host}/box@sha256:")));

    // Filters and digests.
    let by_ref = d.ok(&["images", "-q", "--filter", "reference=*/box:1"]);
    assert_eq!(by_ref.trim(), &id[7..19]);
    assert!(d
        .ok(&["images", "-q", "--filter", "reference=nothing*"])
        .trim()
        .is_empty());
    assert!(d
        .ok(&["images", "-q", "--filter", "dangling=true"])
        .trim()
        .is_empty());
    assert!(d.ok(&["images", "--digests"]).contains("sha256:"));

    // A client pinned to the oldest API version lists it too, by repository.
    let pinned = d
        .docker(&["images", "-q", &format!("{host}/box")])
        .env("DOCKER_API_VERSION", "1.24")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&pinned.stdout).trim(), &id[7..19]);

    let history = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}",
        &served.image,
    ]);
    assert_eq!(history.lines().next(), Some(id.as_str()), "{history}");
    let (code, body) = d.http(
        "GET",
        &format!("/v1.41/images/{}/history", served.image),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let rows: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rows[0]["Tags"][0], served.image.as_str());

    // The pelagos CLI on the same root sees the image.
    let out = d.pelagos(&["images"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{host}/box")));
}

#[test]
fn unknown_images_and_tags_fail_with_dockers_messages() {
    let served = served_busybox();
    let d = Daemon::start();
    let missing = format!("{}/box:nope", served.registry.host());
    let (_, err) = d.fail(&["pull", &missing]);
    assert!(err.contains("not found"), "{err}");
    let (code, body) = d.http(
        "POST",
        &format!(
            "/v1.41/images/create?fromImage={}/box&tag=nope",
            served.registry.host()
        ),
        None,
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("manifest for"), "{body}");

    let (code, body) = d.http("GET", "/v1.41/images/nosuch/json", None);
    assert_eq!(code, 404, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["message"], "No such image: nosuch:latest");
    let (code, _) = d.http("DELETE", "/v1.41/images/nosuch", None);
    assert_eq!(code, 404);
    let (code, _) = d.http("POST", "/v1.41/images/nosuch/tag?repo=x&tag=1", None);
    assert_eq!(code, 404);
    let (code, _) = d.http("GET", "/v1.41/images/nosuch/history", None);
    assert_eq!(code, 404);
    let (_, err) = d.fail(&["image", "inspect", "nosuch"]);
    assert!(err.contains("No such image"), "{err}");
    let (_, err) = d.fail(&["rmi", "nosuch"]);
    assert!(err.contains("No such image"), "{err}");
}

#[test]
fn tag_and_rmi_untag_delete_and_refuse_an_image_in_use() {
    let served = served_busybox();
    let d = Daemon::start();
    d.ok(&["pull", "-q", &served.image]);
    let id = inspect(&d, &served.image)["Id"]
        .as_str()
        .unwrap()
        .to_string();
    d.ok(&["tag", &served.image, "other:2"]);
    assert_eq!(inspect(&d, "other:2")["Id"], id.as_str());
    let out = d.ok(&["rmi", "other:2"]);
    assert_eq!(out.trim(), "Untagged: other:2");

    // A container uses the image (made with the pelagos CLI on the same root: the
    // container endpoints are not this file's): its last tag cannot be removed without -f.
    pelagos_ok(
        &d,
        &[
            "create",
            "--network",
            "none",
            "--name",
            "user",
            &served.image,
            "true",
        ],
    );
    let (_, err) = d.fail(&["rmi", &served.image]);
    assert!(
        err.contains("(must force) - container") && err.contains("is using its referenced image"),
        "{err}"
    );
    let (code, body) = d.http("DELETE", &format!("/v1.41/images/{}", &id[7..19]), None);
    assert_eq!(code, 409, "{body}");
    assert!(
        body.contains("image is being used by stopped container"),
        "{body}"
    );
    pelagos_ok(&d, &["rm", "user"]);

    let out = d.ok(&["rmi", &served.image]);
    assert!(
        out.contains(&format!("Untagged: {}", served.image)),
        "{out}"
    );
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(d.ok(&["images", "-q"]).trim().is_empty());
    d.assert_no_container_leftovers();
}

#[test]
fn prune_removes_dangling_then_every_unused_image() {
    let served = served_busybox();
    let d = Daemon::start();
    d.ok(&["pull", "-q", &served.image]);
    let tmp = tempfile::tempdir().unwrap();
    let tar = rootfs_tar(tmp.path());
    let dangling = d.ok(&["import", tar.to_str().unwrap()]);
    let dangling = dangling.trim();
    assert!(dangling.starts_with("sha256:"), "{dangling}");
    let listed = d.ok(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
    assert_eq!(listed.trim(), dangling);
    // The import is newer than busybox's config date.
    let since = d.ok(&[
        "images",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("since={}", served.image),
    ]);
    assert_eq!(since.trim(), dangling);
    let before = d.ok(&[
        "images",
        "--format",
        "{{.Repository}}",
        "--filter",
        &format!("before={dangling}"),
    ]);
    assert_eq!(before.trim(), format!("{}/box", served.registry.host()));

    let out = d.ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {dangling}")), "{out}");
    assert_eq!(d.ok(&["images", "-q"]).lines().count(), 1);
    let out = d.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("Deleted Images"), "{out}");
    assert!(d.ok(&["images", "-q"]).trim().is_empty());
    let (code, body) = d.http(
        "POST",
        "/v1.41/images/prune?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D",
        None,
    );
    assert_eq!(code, 400, "{body}");
}

#[test]
fn save_and_load_round_trip() {
    let served = served_busybox();
    let d = Daemon::start();
    d.ok(&["pull", "-q", &served.image]);
    let id = inspect(&d, &served.image)["Id"].clone();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("box.tar");
    d.ok(&["save", "-o", file.to_str().unwrap(), &served.image]);
    assert!(std::fs::metadata(&file).unwrap().len() > 100_000);
    d.ok(&["rmi", &served.image]);
    let out = d.ok(&["load", "-i", file.to_str().unwrap()]);
    assert!(
        out.contains(&format!("Loaded image: {}", served.image)),
        "{out}"
    );
    assert_eq!(inspect(&d, &served.image)["Id"], id);

    // `docker save | docker load` into another daemon, through pipes.
    let other = Daemon::start();
    let mut save = d
        .docker(&["save", &served.image])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let load = other
        .docker(&["load"])
        .stdin(save.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(save.wait().unwrap().success());
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    assert_eq!(inspect(&other, &served.image)["Id"], id);

    let (code, _) = d.http("GET", "/v1.41/images/get?names=nosuch", None);
    assert_eq!(code, 404);
    // Not an archive: refused with the store's reason, the whole body read first.
    let junk = tmp.path().join("junk.tar");
    std::fs::write(&junk, vec![b'x'; 1 << 20]).unwrap();
    let (_, err) = d.fail(&["load", "-i", junk.to_str().unwrap()]);
    assert!(err.contains("Error response from daemon"), "{err}");
    let junk = "x".repeat(4096);
    let (code, body) = d.http("POST", "/v1.41/images/load", Some(&junk));
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.http(
        "POST",
        "/v1.41/images/create?fromSrc=-&repo=junk",
        Some(&junk),
    );
    assert_eq!(code, 400, "{body}");
    assert!(d.ok(&["images", "-q", "junk"]).trim().is_empty());
}

#[test]
fn push_to_a_registry_then_pull_into_a_second_daemon() {
    let served = served_busybox();
    let d = Daemon::start();
    d.ok(&["pull", "-q", &served.image]);
    let target = format!("{}/copy:2", served.registry.host());
    d.ok(&["tag", &served.image, &target]);
    let out = d.run(&["push", &target]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("The push refers to repository"), "{stdout}");
    assert!(stdout.contains("2: digest: sha256:"), "{stdout}");

    // Without a tag, every tag of the repository is pushed (moby's API).
    let third = format!("{}/copy:3", served.registry.host());
    d.ok(&["tag", &served.image, &third]);
    let (code, body) = d.http(
        "POST",
        &format!("/v1.41/images/{}/copy/push", served.registry.host()),
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("2: digest: sha256:") && body.contains("3: digest: sha256:"),
        "{body}"
    );
    assert!(body.contains("Layer already exists"), "{body}");

    let other = Daemon::start();
    other.ok(&["pull", "-q", &target]);
    other.ok(&["pull", "-q", &third]);
    let id = inspect(&d, &target)["Id"].clone();
    assert_eq!(inspect(&other, &target)["Id"], id);
    assert_eq!(inspect(&other, &third)["Id"], id);
    let (_, err) = d.fail(&["push", &format!("{}/absent:1", served.registry.host())]);
    assert!(err.contains("An image does not exist locally"), "{err}");
}

#[test]
fn login_checks_credentials_and_a_private_image_pulls_after_it() {
    let image = pelagos_testkit::images::busybox().unwrap().cmd(["sh"]);
    let registry = Registry::start(Auth::htpasswd("alice", "s3cret")).unwrap();
    let layouts = tempfile::tempdir().unwrap();
    let dir = layouts.path().join("box");
    image.write(&dir, "1").unwrap();
    registry.push_oci_layout(&dir, "private:1", false).unwrap();
    let host = registry.host();
    let private = format!("{host}/private:1");

    let d = Daemon::start();
    let empty = tempfile::tempdir().unwrap();
    let docker = |args: &[&str]| {
        docker_without_helpers(&d, empty.path(), args)
            .output()
            .unwrap()
    };
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let out = docker(&["pull", &private]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("pull access denied for") && text(&out).contains("docker login"),
        "{}",
        text(&out)
    );
    let out = docker(&["login", "-u", "alice", "-p", "wrong", &host]);
    assert!(!out.status.success());
    assert!(text(&out).contains("unauthorized"), "{}", text(&out));
    let (code, body) = d.http(
        "POST",
        "/v1.41/auth",
        Some(&format!(
            r#"{{"username":"alice","password":"wrong","serveraddress":"{host}"}}"#
        )),
    );
    assert_eq!(code, 401, "{body}");
    let mut login = docker_without_helpers(
        &d,
        empty.path(),
        &["login", "-u", "alice", "--password-stdin", &host],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    {
        use std::io::Write;
        login.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    }
    let out = login.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let out = docker(&["pull", "-q", &private]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(inspect(&d, &private)["RepoTags"][0], private.as_str());

    // Pushes carry the credentials too; without them the registry's refusal is in the stream.
    let second = format!("{host}/private:2");
    d.ok(&["tag", &private, &second]);
    let out = docker(&["push", &second]);
    assert!(out.status.success(), "{}", text(&out));
    let out = docker(&["logout", &host]);
    assert!(out.status.success(), "{}", text(&out));
    let out = docker(&["push", &second]);
    assert!(!out.status.success());
    assert!(text(&out).contains("unauthorized"), "{}", text(&out));
}

#[test]
fn import_and_commit_make_images() {
    let served = served_busybox();
    let d = Daemon::start();
    let tmp = tempfile::tempdir().unwrap();
    let tar = rootfs_tar(tmp.path());
    let id = d.ok(&[
        "import",
        "-m",
        "from a test",
        "-c",
        "ENV A=b",
        tar.to_str().unwrap(),
        "imp:1",
    ]);
    let image = inspect(&d, "imp:1");
    assert_eq!(image["Id"], id.trim());
    assert_eq!(image["Config"]["Env"], serde_json::json!(["A=b"]));

    d.ok(&["pull", "-q", &served.image]);
    pelagos_ok(
        &d,
        &[
            "create",
            "--network",
            "none",
            "--name",
            "snap",
            &served.image,
            "sh",
        ],
    );
    let out = d.ok(&[
        "commit",
        "-m",
        "snapshot",
        "-c",
        "ENV C=d",
        "snap",
        "committed:1",
    ]);
    let image = inspect(&d, "committed:1");
    assert_eq!(image["Id"], out.trim());
    assert_eq!(image["Comment"], "snapshot");
    let env = image["Config"]["Env"].to_string();
    assert!(env.contains("C=d"), "{env}");
    assert_eq!(
        image["RootFS"]["Layers"].as_array().unwrap().len(),
        inspect(&d, &served.image)["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .len()
            + 1
    );
    let (code, _) = d.http("POST", "/v1.41/commit?container=nosuch", None);
    assert_eq!(code, 404);
    pelagos_ok(&d, &["rm", "snap"]);

    // A running container is paused while its changes are read, and runs on.
    pelagos_ok(
        &d,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "live",
            &served.image,
            "sh",
            "-c",
            "echo made > /made; exec sleep 600",
        ],
    );
    dockerd_support::wait_for("/made in the running container", || {
        d.pelagos(&["exec", "live", "cat", "/made"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let out = d.ok(&["commit", "live", "live-snap:1"]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    let state = d
        .pelagos(&["inspect", "--format", "{{.State.Status}}", "live"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "running");
    let layers = inspect(&d, "live-snap:1")["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(layers, 2);
    let made = d
        .pelagos(&[
            "run",
            "--rm",
            "--network",
            "none",
            "live-snap:1",
            "cat",
            "/made",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&made.stdout), "made\n");
    pelagos_ok(&d, &["rm", "-f", "live"]);
    d.assert_no_container_leftovers();
}

#[test]
fn build_and_search_fail_clearly() {
    let d = Daemon::start();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    // Without buildx (these hosts have none) the CLI falls back to the classic builder
    // unless DOCKER_BUILDKIT=1 is explicit, which the CLI refuses by itself.
    let build = |buildkit: Option<&str>| {
        let mut c = d.docker(&["build", tmp.path().to_str().unwrap()]);
        if let Some(v) = buildkit {
            c.env("DOCKER_BUILDKIT", v);
        }
        let out = c.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for err in [build(None), build(Some("0"))] {
        assert!(err.contains("does not support image builds yet"), "{err}");
    }
    let (code, body) = d.http("POST", "/v1.41/build", None);
    assert_eq!(code, 501, "{body}");

    // The registry of the test serves only the v2 API: its search answer is a 404.
    let served = served_busybox();
    let (_, err) = d.fail(&["search", &format!("{}/box", served.registry.host())]);
    assert!(err.contains("Error response from daemon"), "{err}");
    assert!(err.contains("/v1/search"), "{err}");
}

#[test]
fn a_pull_failing_mid_stream_reports_the_error_in_the_stream() {
    let served = served_busybox();
    let host = served.registry.host();
    let manifest = std::process::Command::new("curl")
        .args(["-sf", "-H"])
        .arg("Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
        .arg(format!("http://{host}/v2/box/manifests/1"))
        .output()
        .unwrap();
    let manifest: Value = serde_json::from_slice(&manifest.stdout).expect("manifest JSON");
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let data = served.registry.blob_data_path(layer);
    let size = std::fs::metadata(&data).unwrap().len() as usize;
    std::fs::write(&data, vec![0u8; size]).unwrap();

    let d = Daemon::start();
    let out = d.run(&["pull", &served.image]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("Pulling from"), "{stdout}");
    assert!(stderr.contains("digest"), "{stderr}");
    let (code, body) = d.http(
        "POST",
        &format!("/v1.41/images/create?fromImage={host}/box&tag=1"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let last: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
    assert!(last["errorDetail"]["message"].is_string(), "{body}");
    assert_eq!(last["error"], last["errorDetail"]["message"]);
    assert!(d.ok(&["images", "-q"]).trim().is_empty());
}
