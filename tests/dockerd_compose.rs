//! Debian's docker-compose 1.29 (with its own docker-py 5.0.3) against pelagos-dockerd in a
//! network namespace of the test's own: a two-service project on a user network with a named
//! volume and a published port through up, ps, logs, exec, restart, stop/start and down -v.

mod dockerd_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use dockerd_support::{served_busybox, wait_for, Daemon, Options};

static PROJECTS: AtomicU32 = AtomicU32::new(0);

/// Debian's docker-compose, installed by `scripts/deps`.
fn compose_bin() -> &'static str {
    let path = "/usr/bin/docker-compose";
    assert!(
        Path::new(path).exists(),
        "{path} is missing: run scripts/deps (it installs Debian's docker-compose 1.29.2)"
    );
    path
}

fn netns_daemon() -> Daemon {
    Daemon::start_with(Options {
        netns: true,
        ..Options::default()
    })
}

/// One compose project: its unique name and the file the test wrote.
struct Project<'a> {
    d: &'a Daemon,
    name: String,
    file: PathBuf,
}

/// What a docker-compose run printed.
struct Printed {
    stdout: String,
    stderr: String,
}

impl<'a> Project<'a> {
    /// Writes `yaml` as the project's compose file in the daemon's temp dir.
    fn new(d: &'a Daemon, yaml: &str) -> Project<'a> {
        let n = PROJECTS.fetch_add(1, Ordering::SeqCst);
        let name = format!("plit{}x{n}", std::process::id());
        let dir = d.dir.path().join(&name);
        std::fs::create_dir_all(&dir).expect("project dir");
        let file = dir.join("docker-compose.yml");
        std::fs::write(&file, yaml).expect("write compose file");
        Project { d, name, file }
    }

    /// docker-compose on this project, against the test's daemon, exec without a docker CLI.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(compose_bin());
        c.env("DOCKER_HOST", format!("unix://{}", self.d.socket.display()))
            .env("DOCKER_CONFIG", &self.d.docker_config)
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("COMPOSE_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME")
            .args(["--ansi", "never"])
            .arg("-p")
            .arg(&self.name)
            .arg("-f")
            .arg(&self.file)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("spawn docker-compose")
    }

    /// Runs docker-compose, which must exit with `code`; what it printed.
    fn expect(&self, code: i32, args: &[&str]) -> Printed {
        let out = self.run(args);
        let printed = Printed {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_eq!(
            out.status.code(),
            Some(code),
            "docker-compose {args:?}: {}{}\n--- daemon log ---\n{}",
            printed.stdout,
            printed.stderr,
            self.d.log()
        );
        printed
    }

    /// Runs docker-compose, which must succeed.
    fn ok(&self, args: &[&str]) -> Printed {
        self.expect(0, args)
    }

    /// `NAME_SERVICE_1`, compose's name for the first container of `service`.
    fn container(&self, service: &str) -> String {
        format!("{}_{service}_1", self.name)
    }

    /// `docker ps` of the project's containers (compose's project label): `NAME STATE SERVICE`.
    fn docker_ps(&self, all: bool) -> Vec<String> {
        let label = format!("label=com.docker.compose.project={}", self.name);
        let format = "{{.Names}} {{.State}} {{.Label \"com.docker.compose.service\"}}";
        let mut args = vec!["ps", "--filter", &label, "--format", format];
        if all {
            args.push("-a");
        }
        let mut rows: Vec<String> = self.d.ok(&args).lines().map(String::from).collect();
        rows.sort();
        rows
    }

    /// The full ids of the project's containers, sorted.
    fn ids(&self) -> Vec<String> {
        let label = format!("label=com.docker.compose.project={}", self.name);
        let out = self.d.ok(&["ps", "-aq", "--no-trunc", "--filter", &label]);
        let mut ids: Vec<String> = out.lines().map(String::from).collect();
        ids.sort();
        ids
    }

    /// `docker logs` of `service`'s container holds `text`.
    fn wait_for_log(&self, service: &str, text: &str) {
        let container = self.container(service);
        wait_for(&format!("{text:?} in the logs of {container}"), || {
            let out = self.d.run(&["logs", &container]);
            String::from_utf8_lossy(&out.stdout).contains(text)
        });
    }

    /// `exec -T SERVICE ARGS…` through compose's own exec calls: exit code and stdout.
    /// docker-py reads the output from the raw socket once it parsed the 101's head, and
    /// would lose what came with the head: the daemon sends nothing after the 101 until the
    /// client has read it (see docs/api.md), which this proves with commands printing at once.
    fn exec(&self, service: &str, args: &[&str]) -> (i32, String) {
        let mut all = vec!["exec", "-T", service];
        all.extend_from_slice(args);
        let out = self.run(&all);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

/// The two-service project: `store` serves files of the named volume `data` over the user
/// network `backend` (and on the published port 18082), `app` fetches from it by its service
/// name once it answers, then idles; both leave at once on SIGTERM. `store` counts its
/// starts in the volume before it says it is up.
fn two_services(image: &str) -> String {
    format!(
        r#"version: "3.8"
services:
  store:
    image: {image}
    command:
      - sh
      - -c
      - >-
        trap 'exit 0' TERM;
        echo started >> /data/starts;
        echo hello-from-store > /data/index.html;
        echo "store up as $$ROLE";
        httpd -f -p 80 -h /data & wait
    environment:
      ROLE: keeper
    labels:
      it.pelagos.role: store
    volumes:
      - data:/data
    networks:
      - backend
    ports:
      - "18082:80"
  app:
    image: {image}
    command:
      - sh
      - -c
      - >-
        trap 'exit 0' TERM;
        until wget -q -O /tmp/got http://store/index.html; do sleep 0.2; done;
        echo "app got $$(cat /tmp/got) as $$GREETING";
        sleep 3600 & wait
    environment:
      GREETING: hi
    labels:
      it.pelagos.role: app
    depends_on:
      - store
    networks:
      - backend
networks:
  backend:
    labels:
      it.pelagos.net: backend
volumes:
  data:
    labels:
      it.pelagos.vol: data
"#
    )
}

/// The published port answers from inside the daemon's namespace: the body it served.
fn fetch_published(d: &Daemon, url: &str) -> String {
    let holder = d.netns.as_ref().expect("the daemon's netns");
    // A new network namespace starts with its loopback down.
    holder.ok("ip", &["link", "set", "lo", "up"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = holder
            .cmd("wget")
            .args(["-q", "-T", "2", "-t", "1", "-O", "-", url])
            .output()
            .expect("spawn wget");
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        if !body.is_empty() {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "no answer on {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lines of `docker-compose logs` output whose prefix is `container_name` (`store_1  | …`).
fn prefixed<'t>(logs: &'t str, short_name: &str) -> Vec<&'t str> {
    logs.lines()
        .filter_map(|l| l.split_once(" | "))
        .filter(|(prefix, _)| prefix.trim_end() == short_name)
        .map(|(_, line)| line)
        .collect()
}

/// Waits for a child up to 60 s; its output.
fn wait_output(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{what} did not end: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_two_service_project_goes_up_serves_by_name_keeps_its_volume_and_comes_down() {
    let served = served_busybox();
    let d = netns_daemon();
    d.pull_on_host(&served.image);
    let p = Project::new(&d, &two_services(&served.image));
    let (store, app) = (p.container("store"), p.container("app"));

    let config = p.ok(&["config", "--services"]);
    let mut services: Vec<&str> = config.stdout.lines().collect();
    services.sort();
    assert_eq!(services, ["app", "store"], "{}", config.stderr);

    let up = p.ok(&["up", "-d"]);
    for made in [
        format!("Creating network \"{}_backend\"", p.name),
        format!("Creating volume \"{}_data\"", p.name),
        format!("Creating {store}"),
        format!("Creating {app}"),
    ] {
        assert!(up.stderr.contains(&made), "{made}: {}", up.stderr);
    }
    assert_eq!(
        p.docker_ps(false),
        [
            format!("{app} running app"),
            format!("{store} running store")
        ]
    );
    // compose's labels and the file's, the environment, the network mode and alias, the
    // volume bind: as compose asked.
    let inspect = d.ok(&[
        "inspect",
        &store,
        "--format",
        "{{index .Config.Labels \"com.docker.compose.project\"}} \
         {{index .Config.Labels \"com.docker.compose.container-number\"}} \
         {{index .Config.Labels \"it.pelagos.role\"}} {{.HostConfig.NetworkMode}} \
         {{range .Config.Env}}{{.}},{{end}} {{json .HostConfig.Binds}}",
    ]);
    assert!(
        inspect.starts_with(&format!("{} 1 store {}_backend ", p.name, p.name)),
        "{inspect}"
    );
    assert!(inspect.contains("ROLE=keeper,"), "{inspect}");
    assert!(
        inspect.contains(&format!("[\"{}_data:/data:rw\"]", p.name)),
        "{inspect}"
    );
    let aliases = d.ok(&[
        "inspect",
        &store,
        "--format",
        &format!(
            "{{{{json (index .NetworkSettings.Networks \"{}_backend\").Aliases}}}}",
            p.name
        ),
    ]);
    assert!(aliases.contains("\"store\""), "{aliases}");
    // The network and the volume carry compose's labels and the file's.
    let labels = "{{index .Labels \"com.docker.compose.project\"}} \
                  {{index .Labels \"com.docker.compose.network\"}}{{index .Labels \"com.docker.compose.volume\"}} \
                  {{index .Labels \"it.pelagos.net\"}}{{index .Labels \"it.pelagos.vol\"}}";
    let backend = format!("{}_backend", p.name);
    let network = d.ok(&["network", "inspect", &backend, "--format", labels]);
    assert_eq!(network.trim(), format!("{} backend backend", p.name));
    let volume = d.ok(&[
        "volume",
        "inspect",
        &format!("{}_data", p.name),
        "--format",
        labels,
    ]);
    assert_eq!(volume.trim(), format!("{} data data", p.name));

    // app found store by its service name over the user network.
    p.wait_for_log("app", "app got hello-from-store as hi");
    p.wait_for_log("store", "store up as keeper");
    let ps = p.ok(&["ps"]);
    let row = |name: &str| {
        ps.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in compose ps: {}", ps.stdout))
            .to_string()
    };
    assert!(row(&app).contains(" Up"), "{}", ps.stdout);
    assert!(
        row(&store).contains(" Up") && row(&store).contains("0.0.0.0:18082->80/tcp"),
        "{}",
        ps.stdout
    );
    assert_eq!(
        fetch_published(&d, "http://127.0.0.1:18082/index.html").trim(),
        "hello-from-store"
    );

    let logs = p.ok(&["logs", "--no-color"]).stdout;
    assert!(
        prefixed(&logs, "app_1").contains(&"app got hello-from-store as hi"),
        "{logs}"
    );
    assert!(
        prefixed(&logs, "store_1").contains(&"store up as keeper"),
        "{logs}"
    );
    let tail = p.ok(&["logs", "--no-color", "--tail=1", "store"]).stdout;
    assert_eq!(prefixed(&tail, "store_1"), ["store up as keeper"], "{tail}");

    // port, top, pause and unpause.
    let port = p.ok(&["port", "store", "80"]).stdout;
    assert_eq!(port.trim(), "0.0.0.0:18082");
    let top = p.ok(&["top", "store"]).stdout;
    assert!(
        top.contains(&store) && top.contains("httpd -f -p 80"),
        "{top}"
    );
    p.ok(&["pause", "app"]);
    assert!(row_has(&p.ok(&["ps"]).stdout, &app, "Paused"));
    p.ok(&["unpause", "app"]);
    assert!(row_has(&p.ok(&["ps"]).stdout, &app, "Up"));

    // exec: output and exit code through compose's own exec calls.
    let (code, body) = p.exec("app", &["wget", "-q", "-O", "-", "http://store/index.html"]);
    assert_eq!((code, body.trim()), (0, "hello-from-store"));
    assert_eq!(
        p.exec("app", &["sh", "-c", "echo $GREETING; exit 7"]),
        (7, "hi\n".into())
    );
    let (code, _) = p.exec("store", &["sh", "-c", "echo kept > /data/kept"]);
    assert_eq!(code, 0);
    // Without COMPOSE_INTERACTIVE_NO_CLI compose runs the docker CLI on the PATH.
    let out = p
        .cmd(&["exec", "-T", "app", "sh", "-c", "echo via-cli; exit 5"])
        .env_remove("COMPOSE_INTERACTIVE_NO_CLI")
        .output()
        .expect("spawn docker-compose");
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        (Some(5), "via-cli"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A second `up -d` finds both containers by their labels and leaves them.
    let ids = p.ids();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let again = p.ok(&["up", "-d"]);
    assert!(
        again.stderr.contains(&format!("{store} is up-to-date"))
            && again.stderr.contains(&format!("{app} is up-to-date")),
        "{}",
        again.stderr
    );
    assert_eq!(p.ids(), ids);

    // The named volume's data outlives restart and stop + start.
    p.ok(&["restart", "-t", "5"]);
    p.wait_for_log("store", "store up as keeper\nstore up as keeper");
    let starts = |p: &Project| p.exec("store", &["cat", "/data/starts", "/data/kept"]);
    assert_eq!(starts(&p), (0, "started\nstarted\nkept\n".into()));

    let followed = p
        .cmd(&["logs", "--no-color", "-f", "--tail=1", "store"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn docker-compose logs -f");
    p.ok(&["stop", "-t", "5"]);
    assert_eq!(
        p.docker_ps(true),
        [format!("{app} exited app"), format!("{store} exited store")]
    );
    assert!(p.docker_ps(false).is_empty());
    let exited = p.ok(&["ps"]).stdout;
    assert!(row_has(&exited, &store, "Exit 0"), "{exited}");
    // The follower ends with the container it followed.
    let out = wait_output(followed, "docker-compose logs -f");
    let followed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        prefixed(&followed, "store_1"),
        ["store up as keeper"],
        "{followed}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    p.ok(&["start"]);
    assert_eq!(
        p.docker_ps(false),
        [
            format!("{app} running app"),
            format!("{store} running store")
        ]
    );
    wait_for("store counted its third start", || {
        starts(&p) == (0, "started\nstarted\nstarted\nkept\n".into())
    });
    let (code, body) = p.exec("app", &["wget", "-q", "-O", "-", "http://store/index.html"]);
    assert_eq!((code, body.trim()), (0, "hello-from-store"));
    assert_eq!(p.ids(), ids);

    // More of one service: the second app finds store by name too.
    p.ok(&["up", "-d", "--scale", "app=2"]);
    let app2 = format!("{}_app_2", p.name);
    wait_for("app_2 fetched from store", || {
        String::from_utf8_lossy(&d.run(&["logs", &app2]).stdout)
            .contains("app got hello-from-store as hi")
    });
    assert_eq!(p.ids().len(), 3);

    let down = p.ok(&["down", "-v", "-t", "5"]);
    for removed in [
        format!("Removing {store}"),
        format!("Removing {app2}"),
        format!("Removing network {}_backend", p.name),
        format!("Removing volume {}_data", p.name),
    ] {
        assert!(down.stderr.contains(&removed), "{removed}: {}", down.stderr);
    }
    assert!(p.docker_ps(true).is_empty());
    let networks = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!networks.contains(&p.name), "{networks}");
    let volumes = d.ok(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(!volumes.contains(&p.name), "{volumes}");
    for what in [&["ps", "-a"][..], &["network", "ls"], &["volume", "ls"]] {
        let out = d.pelagos(what).output().expect("spawn pelagos");
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !listed.contains(&p.name),
            "pelagos {what:?}: {listed}"
        );
    }
    d.assert_no_container_leftovers();
}

/// The row of `container` in `docker-compose ps` holds `text`.
fn row_has(ps: &str, container: &str, text: &str) -> bool {
    ps.lines()
        .any(|l| l.starts_with(container) && l.contains(text))
}

#[test]
fn an_attached_up_streams_its_services_and_passes_the_exit_code_on() {
    let served = served_busybox();
    let d = netns_daemon();
    d.pull_on_host(&served.image);
    let yaml = format!(
        r#"version: "3.8"
services:
  job:
    image: {image}
    command: ["sh", "-c", "echo job says $$WORD; echo job complains >&2; exit 3"]
    environment:
      WORD: hello
"#,
        image = served.image
    );
    let p = Project::new(&d, &yaml);
    // `up` attaches to the container before it starts it: nothing it printed is missed.
    let up = p.expect(3, &["up", "--no-color", "--exit-code-from", "job"]);
    let lines = prefixed(&up.stdout, "job_1");
    assert!(
        lines.contains(&"job says hello") && lines.contains(&"job complains"),
        "{}{}",
        up.stdout,
        up.stderr
    );
    assert!(
        row_has(&p.ok(&["ps"]).stdout, &p.container("job"), "Exit 3"),
        "compose ps"
    );
    // A one-off container of the service: its output and exit code, removed after (--rm).
    // compose's own `run` (COMPOSE_INTERACTIVE_NO_CLI) attaches after the start and misses
    // a quick container's output, with moby too; by default it runs `docker start -a`.
    let run = p
        .cmd(&[
            "run",
            "--rm",
            "-T",
            "job",
            "sh",
            "-c",
            "echo one-off; exit 4",
        ])
        .env_remove("COMPOSE_INTERACTIVE_NO_CLI")
        .output()
        .expect("spawn docker-compose run");
    assert_eq!(
        (
            run.status.code(),
            String::from_utf8_lossy(&run.stdout).trim()
        ),
        (Some(4), "one-off"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        p.docker_ps(true),
        [format!("{} exited job", p.container("job"))]
    );
    p.ok(&["down"]);
    assert!(p.docker_ps(true).is_empty());
    let networks = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!networks.contains(&p.name), "{networks}");
    d.assert_no_container_leftovers();
}
