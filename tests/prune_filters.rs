//! `--filter` on `volume ls`, `volume prune`, `container prune`, `image prune` and
//! `system prune` (what does not match stays; a bad filter removes nothing), and the
//! sections of `system df -v`, through the `pelagos` binary.

mod cli_support;

use cli_support::Env;

fn lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text.lines().map(String::from).collect();
    out.sort();
    out
}

fn volume_names(env: &Env, filters: &[&str]) -> Vec<String> {
    let mut args = vec!["volume", "ls", "-q"];
    for f in filters {
        args.extend(["--filter", f]);
    }
    lines(&env.ok(&args))
}

fn container_names(env: &Env) -> Vec<String> {
    lines(&env.ok(&["ps", "-a", "--format", "{{.Names}}"]))
}

#[test]
fn volume_ls_and_prune_filters() {
    let env = Env::new();
    env.ok(&["volume", "create", "--label", "app=web", "pf-web"]);
    env.ok(&[
        "volume",
        "create",
        "--label",
        "app=db",
        "--label",
        "tier=back",
        "pf-db",
    ]);
    env.ok(&["volume", "create", "pf-plain"]);
    assert_eq!(volume_names(&env, &["label=app"]), ["pf-db", "pf-web"]);
    assert_eq!(
        volume_names(&env, &["label=app=db", "label=tier"]),
        ["pf-db"]
    );
    assert_eq!(
        volume_names(&env, &["name=web", "name=plain"]),
        ["pf-plain", "pf-web"]
    );
    assert_eq!(
        volume_names(&env, &["name=pf", "label=tier=back"]),
        ["pf-db"]
    );
    assert_eq!(volume_names(&env, &["driver=local"]).len(), 3);
    assert_eq!(volume_names(&env, &["dangling=true"]).len(), 3);
    assert!(volume_names(&env, &["dangling=false"]).is_empty());

    let (code, err) = env.fail(&["volume", "ls", "--filter", "bogus=1"]);
    assert_eq!(code, 1);
    assert_eq!(err, "Error response from daemon: invalid filter 'bogus'\n");
    let (code, err) = env.fail(&["volume", "ls", "-f", "bogus"]);
    assert_eq!(code, 125);
    assert!(
        err.starts_with(
            "invalid argument \"bogus\" for \"-f, --filter\" flag: bad format of filter"
        ),
        "{err}"
    );

    // A bad filter removes nothing; until is not a volume prune filter.
    let (code, err) = env.fail(&["volume", "prune", "-f", "-a", "--filter", "until=1h"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "Error response from daemon: invalid filter 'until'\n")
    );
    assert_eq!(volume_names(&env, &[]).len(), 3);
    // Named volumes go only with all; label!= keeps what matches.
    let out = env.ok(&["volume", "prune", "-f", "--filter", "label=app"]);
    assert!(!out.contains("Deleted Volumes:"), "{out}");
    let out = env.ok(&["volume", "prune", "-f", "-a", "--filter", "label!=app=web"]);
    assert!(out.contains("Deleted Volumes:\npf-db\npf-plain\n"), "{out}");
    assert_eq!(volume_names(&env, &[]), ["pf-web"]);
    let out = env.ok(&[
        "volume",
        "prune",
        "-f",
        "--filter",
        "all=true",
        "--filter",
        "label=app=web",
    ]);
    assert!(out.contains("pf-web"), "{out}");
    assert!(volume_names(&env, &[]).is_empty());
}

#[test]
fn container_image_and_system_prune_filters() {
    let (_served, env, image) = cli_support::served_busybox();
    env.ok(&[
        "create", "--name", "pf-keep", "--label", "keep=yes", &image, "true",
    ]);
    env.ok(&[
        "create", "--name", "pf-old", "--label", "keep=no", &image, "true",
    ]);
    env.ok(&["create", "--name", "pf-bare", &image, "true"]);

    // Bad filters: refused before anything is removed.
    for bad in [
        &["container", "prune", "-f", "--filter", "dangling=true"][..],
        &["container", "prune", "-f", "--filter", "until=soon"],
        &[
            "container",
            "prune",
            "-f",
            "--filter",
            "until=1h",
            "--filter",
            "until=2h",
        ],
        &["system", "prune", "-f", "--filter", "dangling=true"],
    ] {
        let (code, err) = env.fail(bad);
        assert_eq!(code, 1, "{bad:?}");
        assert!(
            err.starts_with("Error response from daemon: "),
            "{bad:?}: {err}"
        );
    }
    let (code, err) = env.fail(&["system", "prune", "-f", "--volumes", "--filter", "until=1h"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "ERROR: The \"until\" filter is not supported with \"--volumes\"\n"
    );
    assert_eq!(container_names(&env), ["pf-bare", "pf-keep", "pf-old"]);

    // until: a time before they were made keeps them all; an hour ahead takes what matches.
    let out = env.ok(&["container", "prune", "-f", "--filter", "until=10m"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    let out = env.ok(&[
        "container",
        "prune",
        "-f",
        "--filter",
        "until=2000-01-01T00:00:00Z",
    ]);
    assert!(!out.contains("Deleted"), "{out}");
    env.ok(&[
        "container",
        "prune",
        "-f",
        "--filter",
        "label=keep=no",
        "--filter",
        "until=-1h",
    ]);
    assert_eq!(container_names(&env), ["pf-bare", "pf-keep"]);
    env.ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    assert_eq!(container_names(&env), ["pf-keep"]);

    // image prune: dangling=false without -a conflicts with the CLI's dangling=true.
    let (code, err) = env.fail(&["image", "prune", "-f", "--filter", "dangling=false"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("invalid filter 'dangling=[false true]'"),
        "{err}"
    );
    env.ok(&["rm", "pf-keep"]);
    let out = env.ok(&[
        "image",
        "prune",
        "-a",
        "-f",
        "--filter",
        "label=no.such.label",
    ]);
    assert!(!out.contains("Deleted Images:"), "{out}");
    // system prune passes its filters on: the label keeps the container and the image.
    env.ok(&[
        "create", "--name", "pf-sys", "--label", "keep=yes", &image, "true",
    ]);
    let out = env.ok(&["system", "prune", "-a", "-f", "--filter", "label!=keep"]);
    assert!(!out.contains("Deleted"), "{out}");
    assert_eq!(container_names(&env), ["pf-sys"]);
    env.ok(&["rm", "pf-sys"]);
    let out = env.ok(&[
        "image",
        "prune",
        "-a",
        "-f",
        "--filter",
        "label!=no.such.label",
    ]);
    assert!(out.contains("Deleted Images:"), "{out}");
    assert!(env.ok(&["images", "-q"]).trim().is_empty());
}

#[test]
fn system_df_verbose_sections() {
    let (_served, env, image) = cli_support::served_busybox();
    env.ok(&["volume", "create", "pf-spare"]);
    env.ok(&[
        "run",
        "--name",
        "pf-df",
        "-v",
        "pf-data:/data",
        &image,
        "true",
    ]);
    let out = env.ok(&["system", "df", "-v"]);
    let sections: Vec<&str> = out.split("\n\n").collect();
    assert_eq!(sections[0], "Images space usage:", "{out}");
    let header = |s: &str| {
        s.lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        header(sections[1]),
        "REPOSITORY TAG IMAGE ID CREATED SIZE SHARED SIZE UNIQUE SIZE CONTAINERS"
    );
    let image_row: Vec<&str> = sections[1]
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        image.ends_with(image_row[0]) || image_row[0].ends_with("box"),
        "{out}"
    );
    assert_eq!(image_row[1], "1");
    assert_eq!(image_row.last(), Some(&"1"), "one container uses it: {out}");
    assert!(sections[1].ends_with('\n') || sections.len() > 2);
    assert_eq!(sections[2], "Containers space usage:");
    assert_eq!(
        header(sections[3]),
        "CONTAINER ID IMAGE COMMAND LOCAL VOLUMES SIZE CREATED STATUS NAMES"
    );
    let container_row = sections[3].lines().nth(1).unwrap();
    assert!(container_row.ends_with("pf-df"), "{out}");
    assert!(
        container_row.contains("\"true\"") && container_row.contains("Exited (0)"),
        "{out}"
    );
    assert_eq!(sections[4], "Local Volumes space usage:");
    assert_eq!(header(sections[5]), "VOLUME NAME LINKS SIZE");
    let volumes = lines(sections[5]);
    assert!(
        volumes
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["pf-data", "1", "0B"]),
        "{out}"
    );
    assert!(
        volumes
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["pf-spare", "0", "0B"]),
        "{out}"
    );
    assert_eq!(sections[6], "Build cache usage: 0B");
    assert_eq!(
        sections[7],
        "CACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n"
    );

    // A custom format runs once over every section; json is one object.
    let names = env.ok(&[
        "system",
        "df",
        "-v",
        "--format",
        "{{range .Volumes}}{{.Name}} {{end}}",
    ]);
    assert_eq!(names, "pf-data pf-spare ");
    let all: serde_json::Value =
        serde_json::from_str(&env.ok(&["system", "df", "-v", "--format", "json"])).unwrap();
    assert_eq!(all["Containers"][0]["Names"], "pf-df");
    assert_eq!(all["Images"][0]["Containers"], "1");
    assert!(all["BuildCache"].as_array().unwrap().is_empty());
    env.ok(&["rm", "-v", "pf-df"]);
    env.assert_no_container_leftovers();
}
