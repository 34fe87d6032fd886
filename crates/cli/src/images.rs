//! Image commands: pull, push, images, image inspect/rm/prune, tag, save, load, import,
//! login, logout.

use std::fs::File;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use pelagos_engine::image_prune::ImagePruneFilter;
use pelagos_engine::image_views::familiar;
use pelagos_engine::Engine;
use pelagos_image::{archive, ImageRecord, Reference, Removal};
use pelagos_model::events::Event;
use pelagos_model::filters::{path_match, Filters};
use pelagos_registry::{Credentials, Platform};
use serde_json::{json, Value};

use crate::cli::{
    Cli, HistoryArgs, ImagesArgs, ImportArgs, InspectArgs, LoadArgs, LoginArgs, LogoutArgs,
    PruneArgs, PullArgs, PushArgs, RmiArgs, SaveArgs, TagArgs,
};
/// The one table writer (kept reachable here for the verbs that import it from images).
pub use crate::format::print_table;
use crate::format::{format_one, format_rows, headers, human_size, human_size_precision, since};
use crate::{engine, progress};

macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! err {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

fn platform(text: Option<&str>) -> Result<Platform> {
    Ok(match text {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    })
}

/// Pulls an image, printing what `docker pull` prints; shared with `run` when the image is missing.
pub fn pull_image(
    engine: &Engine,
    name: &str,
    platform_text: Option<&str>,
    quiet: bool,
    out: progress::Out,
) -> Result<ImageRecord> {
    let reference = Reference::parse(name)?;
    let platform = platform(platform_text)?;
    if !quiet {
        let what = reference
            .tag
            .clone()
            .or_else(|| reference.digest.as_ref().map(|d| d.to_string()))
            .unwrap_or_default();
        out.line(&format!("{what}: Pulling from {}", reference.repository));
    }
    let pulled = pelagos_engine::pull::pull_blocking(
        engine,
        &reference,
        &platform,
        progress::for_terminal(quiet, out),
    )
    .with_context(|| format!("pull {}", reference.familiar()))?;
    if !quiet {
        out.line(&format!("Digest: {}", pulled.digest));
        let status = if pulled.downloaded {
            "Downloaded newer image for"
        } else {
            "Image is up to date for"
        };
        out.line(&format!("Status: {status} {}", reference.familiar()));
    }
    Ok(pulled.image)
}

pub fn pull(cli: &Cli, a: &PullArgs) -> Result<i32> {
    let engine = engine(cli)?;
    pull_image(
        &engine,
        &a.image,
        a.platform.as_deref(),
        a.quiet,
        progress::Out::Stdout,
    )?;
    out!("{}", Reference::parse(&a.image)?);
    Ok(0)
}

pub fn push(cli: &Cli, a: &PushArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let target = Reference::parse(&a.image)?;
    let image = engine.images().get(&a.image).with_context(|| {
        format!(
            "An image does not exist locally with the tag: {}",
            target.familiar()
        )
    })?;
    if !a.quiet {
        err!("The push refers to repository [{}]", target.name());
    }
    let quiet = a.quiet;
    let rt = pelagos_engine::io_runtime()?;
    let digest = rt.block_on(pelagos_engine::push::push(&engine, &image, &target, |b| {
        if !quiet {
            let short: String = b.digest.hex().chars().take(12).collect();
            let what = if b.uploaded {
                "Pushed"
            } else {
                "Layer already exists"
            };
            err!("{short}: {what}");
        }
    }))?;
    drop(rt);
    let size = std::fs::metadata(engine.images().blobs().blob_path(&image.manifest_digest))
        .map(|m| m.len())
        .unwrap_or(0);
    let tag = target.tag.clone().unwrap_or_else(|| "latest".into());
    out!("{tag}: digest: {digest} size: {size}");
    Ok(0)
}

/// One row of `docker images`.
fn rows(image: &ImageRecord) -> Vec<Value> {
    let id_short: String = image.id.hex().chars().take(12).collect();
    let base = |repo: String, tag: String, digest: String| {
        json!({
            "Containers": "N/A",
            "CreatedAt": image.created.clone().unwrap_or_default(),
            "CreatedSince": since(image.created.as_deref()),
            "Digest": digest,
            "ID": id_short,
            "FullID": image.id.to_string(),
            "Repository": repo,
            "SharedSize": "N/A",
            "Size": human_size_precision(image.size, 3),
            "Tag": tag,
            "UniqueSize": "N/A",
            "VirtualSize": human_size(image.size),
        })
    };
    let digest_for = |name: &str| {
        image
            .repo_digests
            .iter()
            .find_map(|d| {
                let r = Reference::parse(d).ok()?;
                (r.name() == name).then(|| r.digest.map(|x| x.to_string()))?
            })
            .unwrap_or_else(|| "<none>".into())
    };
    let mut out: Vec<Value> = image
        .repo_tags
        .iter()
        .filter_map(|t| Reference::parse(t).ok())
        .map(|r| {
            base(
                r.familiar_name(),
                r.tag.clone().unwrap_or_else(|| "<none>".into()),
                digest_for(&r.name()),
            )
        })
        .collect();
    if out.is_empty() {
        // Untagged: shown with its repository digests, as Docker does.
        for d in &image.repo_digests {
            if let Ok(r) = Reference::parse(d) {
                let digest = r.digest.as_ref().map(|x| x.to_string()).unwrap_or_default();
                out.push(base(r.familiar_name(), "<none>".into(), digest));
            }
        }
    }
    if out.is_empty() {
        out.push(base("<none>".into(), "<none>".into(), "<none>".into()));
    }
    out
}

pub fn list(cli: &Cli, a: &ImagesArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let mut images = engine.images().list()?;
    images.sort_by(|x, y| y.created.cmp(&x.created).then(x.id.cmp(&y.id)));
    let filter = a.repository.as_deref().map(Reference::parse).transpose()?;
    let explicit_tag = a
        .repository
        .as_deref()
        .is_some_and(|r| r.rsplit('/').next().is_some_and(|last| last.contains(':')));
    let filters = ImageFilters::parse(&a.filters)?;
    let mut all_rows = Vec::new();
    for image in &images {
        if !filters.keeps_image(&engine, image)? {
            continue;
        }
        for row in rows(image) {
            if !filters.keeps_row(&row) {
                continue;
            }
            if let Some(f) = &filter {
                if row["Repository"] != f.familiar_name() {
                    continue;
                }
                if explicit_tag && row["Tag"].as_str() != f.tag.as_deref() {
                    continue;
                }
            }
            all_rows.push(row);
        }
    }
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for row in &all_rows {
            let id = if a.no_trunc {
                &row["FullID"]
            } else {
                &row["ID"]
            };
            let id = id.as_str().unwrap_or_default().to_string();
            if seen.insert(id.clone()) {
                out!("{id}");
            }
        }
        return Ok(0);
    }
    match a.format.as_deref() {
        Some("json") | Some("{{json .}}") => {
            for row in &all_rows {
                let mut row = row.clone();
                if let Some(o) = row.as_object_mut() {
                    o.remove("FullID");
                }
                out!("{}", serde_json::to_string(&row)?);
            }
        }
        Some(t) if t != "table" => {
            let _ = write!(
                std::io::stdout(),
                "{}",
                format_rows(t, &all_rows, headers::IMAGES)?
            );
        }
        _ => {
            let mut table = Vec::new();
            let mut header = vec!["REPOSITORY", "TAG"];
            if a.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            table.push(header.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            for row in &all_rows {
                let s = |k: &str| row[k].as_str().unwrap_or_default().to_string();
                let mut cells = vec![s("Repository"), s("Tag")];
                if a.digests {
                    cells.push(s("Digest"));
                }
                let id = if a.no_trunc { s("FullID") } else { s("ID") };
                cells.extend([id, s("CreatedSince"), s("Size")]);
                table.push(cells);
            }
            print_table(&table);
        }
    }
    Ok(0)
}

/// Docker's `ImageInspect` object.
pub fn inspect_value(engine: &Engine, image: &ImageRecord) -> Result<Value> {
    Ok(pelagos_engine::image_views::inspect(engine, image)?)
}

/// Prints inspect results: a JSON array, or one rendered template per item.
pub fn print_inspect(values: &[Value], format: Option<&str>) -> Result<()> {
    match format {
        Some(t) => {
            for v in values {
                out!("{}", format_one(t, v)?);
            }
        }
        None => out!("{}", serde_json::to_string_pretty(values)?),
    }
    Ok(())
}

pub fn inspect(cli: &Cli, a: &InspectArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let mut values = Vec::new();
    let mut missing = Vec::new();
    for name in &a.names {
        match engine.images().get(name) {
            Ok(image) => values.push(inspect_value(&engine, &image)?),
            Err(_) => missing.push(name.clone()),
        }
    }
    print_inspect(&values, a.format.as_deref())?;
    if !missing.is_empty() {
        bail!("No such image: {}", missing.join(", "));
    }
    Ok(0)
}

pub fn remove(cli: &Cli, a: &RmiArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let in_use = engine.image_in_use_fn()?;
    let mut failed = false;
    for name in &a.images {
        match engine.images().remove(name, a.force, &in_use) {
            Ok(events) => {
                for e in events {
                    match e {
                        Removal::Untagged(t) => {
                            out!("Untagged: {}", familiar(&t));
                            engine.emit(&Event::image("untag", &familiar(&t), &familiar(&t)));
                        }
                        Removal::Deleted(d) => {
                            out!("Deleted: {d}");
                            engine.emit(&Event::image("delete", &d.to_string(), &d.to_string()));
                        }
                    }
                }
            }
            Err(e) => {
                err!("Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub fn tag(cli: &Cli, a: &TagArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let image = engine.images().get(&a.source)?;
    let target = Reference::parse(&a.target)?;
    if target.digest.is_some() {
        bail!(
            "refusing to create a tag with a digest reference: {}",
            a.target
        );
    }
    engine.images().tag(&image.id, &target)?;
    engine.emit(&Event::image(
        "tag",
        &image.id.to_string(),
        &target.familiar(),
    ));
    Ok(0)
}

pub fn prune(cli: &Cli, a: &PruneArgs) -> Result<i32> {
    let filter = ImagePruneFilter::parse(&a.filter, a.all)?;
    let engine = engine(cli)?;
    if !a.force && std::io::stdin().is_terminal() {
        let what = if a.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            return Ok(0);
        }
    }
    let report = pelagos_engine::image_prune::prune(&engine, &filter)?;
    if !report.deleted.is_empty() {
        out!("Deleted Images:");
        for d in &report.deleted {
            out!("deleted: {d}");
        }
        out!("");
    }
    out!("Total reclaimed space: {}", human_size(report.reclaimed));
    Ok(0)
}

pub fn save(cli: &Cli, a: &SaveArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let mut selected = Vec::new();
    for name in &a.images {
        let image = engine.images().get(name)?;
        let tags = match Reference::parse(name) {
            Ok(r) if r.tag.is_some() && r.digest.is_none() && !looks_like_id(name) => {
                vec![r.to_string()]
            }
            _ => Vec::new(),
        };
        selected.push((image, tags));
    }
    match &a.output {
        Some(path) => {
            write_atomically(path, |f| Ok(archive::save(engine.images(), &selected, f)?))?
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            archive::save(engine.images(), &selected, &mut out)?;
            out.flush()?;
        }
    }
    for (image, _) in &selected {
        let id = image.id.to_string();
        engine.emit(&Event::image("save", &id, &id));
    }
    Ok(0)
}

fn looks_like_id(name: &str) -> bool {
    name.starts_with("sha256:")
        || (name.len() >= 4 && name.len() <= 64 && name.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Writes `path` through a temporary file in the same directory: a failed save leaves nothing.
fn write_atomically(
    path: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("create a temporary file in {}", dir.display()))?;
    let mut w = std::io::BufWriter::new(tmp.reopen()?);
    f(&mut w)?;
    w.flush()?;
    w.get_ref().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

pub fn load(cli: &Cli, a: &LoadArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let input: Box<dyn Read> = match &a.input {
        Some(p) => Box::new(File::open(p).with_context(|| format!("open {}", p.display()))?),
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(std::io::stdin().lock())
        }
    };
    let loaded = archive::load(engine.images(), std::io::BufReader::new(input))?;
    for (image, names) in loaded {
        let name = names.first().map_or(image.id.to_string(), |n| familiar(n));
        engine.emit(&Event::image("load", &image.id.to_string(), &name));
        if names.is_empty() {
            out!("Loaded image ID: {}", image.id);
        }
        for n in names {
            out!("Loaded image: {}", familiar(&n));
        }
    }
    Ok(0)
}

pub fn import(cli: &Cli, a: &ImportArgs) -> Result<i32> {
    let engine = engine(cli)?;
    if a.file.contains("://") {
        bail!("importing from a URL is not supported: download the tarball first");
    }
    let input: Box<dyn Read> = if a.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(&a.file).with_context(|| format!("open {}", a.file))?)
    };
    let tag = a.reference.as_deref().map(Reference::parse).transpose()?;
    let image = archive::import(
        engine.images(),
        std::io::BufReader::new(input),
        tag.as_ref(),
        &a.changes,
        a.message.as_deref(),
    )?;
    let id = image.id.to_string();
    engine.emit(&Event::image("import", &id, &id));
    out!("{}", image.id);
    Ok(0)
}

fn read_secret(prompt: &str) -> Result<String> {
    eprint!("{prompt}");
    let stdin = std::io::stdin();
    let fd = 0;
    // SAFETY: termios is plain data; tcgetattr fills it or fails.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd 0 and a valid termios pointer.
    let is_tty = unsafe { libc::tcgetattr(fd, &mut term) } == 0;
    if is_tty {
        let mut quiet = term;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: valid fd and termios.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if is_tty {
        // SAFETY: restores the settings read above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) };
        eprintln!();
    }
    r?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn login(cli: &Cli, a: &LoginArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let server = pelagos_registry::login_server(a.server.as_deref().unwrap_or("docker.io"));
    let username = match &a.username {
        Some(u) => u.clone(),
        None => {
            if a.password_stdin {
                bail!("must provide --username with --password-stdin");
            }
            eprint!("Username: ");
            let mut u = String::new();
            std::io::stdin().lock().read_line(&mut u)?;
            u.trim().to_string()
        }
    };
    let password = if a.password_stdin {
        let mut p = String::new();
        std::io::stdin().read_to_string(&mut p)?;
        p.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = &a.password {
        err!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else {
        read_secret("Password: ")?
    };
    if username.is_empty() || password.is_empty() {
        bail!("username and password are required to log in to {server}");
    }
    let creds = Credentials { username, password };
    let client = engine.registry_client()?;
    let rt = pelagos_engine::io_runtime()?;
    rt.block_on(client.login(&server, &creds))
        .with_context(|| format!("login to {server}"))?;
    drop(rt);
    let mut auth = engine.auth_file()?;
    auth.set(&server, &creds)?;
    out!("Login Succeeded");
    Ok(0)
}

pub fn logout(cli: &Cli, a: &LogoutArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let server = pelagos_registry::login_server(a.server.as_deref().unwrap_or("docker.io"));
    let mut auth = engine.auth_file()?;
    if auth.remove(&server)? {
        out!("Removing login credentials for {server}");
    } else {
        out!("Not logged in to {server}");
    }
    Ok(0)
}

/// The keys `docker images --filter` accepts here.
const LIST_KEYS: &[&str] = &["dangling", "reference", "label"];

/// `docker images --filter`: dangling, reference (glob on `repo:tag`), label.
#[derive(Default)]
struct ImageFilters {
    filters: Filters,
    dangling: Option<bool>,
}

impl ImageFilters {
    fn parse(list: &[String]) -> Result<ImageFilters> {
        let filters = Filters::parse(list, LIST_KEYS)?;
        let dangling = match filters.contains("dangling") {
            true => Some(filters.bool_or("dangling", false)?),
            false => None,
        };
        Ok(ImageFilters { filters, dangling })
    }

    fn keeps_image(&self, engine: &Engine, image: &ImageRecord) -> Result<bool> {
        if let Some(d) = self.dangling {
            if image.repo_tags.is_empty() != d {
                return Ok(false);
            }
        }
        if self.filters.contains("label") {
            let labels = pelagos_engine::image_prune::labels(engine, image)?;
            return Ok(self.filters.labels_match(&labels));
        }
        Ok(true)
    }

    fn keeps_row(&self, row: &Value) -> bool {
        let references = self.filters.get("reference");
        if references.is_empty() {
            return true;
        }
        let repo = row["Repository"].as_str().unwrap_or_default();
        let tag = row["Tag"].as_str().unwrap_or_default();
        let full = format!("{repo}:{tag}");
        references
            .iter()
            .any(|p| path_match(p, &full) || path_match(p, repo))
    }
}

/// `docker history`: the config's history, newest first, with the size of each layer.
pub fn history(cli: &Cli, a: &HistoryArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let image = engine.images().get(&a.image)?;
    let entries = pelagos_engine::image_views::history(&engine, &image)?;
    let top = entries.len().saturating_sub(1);
    let mut rows: Vec<Value> = entries
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let id = match (i == top, a.no_trunc) {
                (false, _) => "<missing>".to_string(),
                (true, true) => image.id.to_string(),
                (true, false) => image.id.hex()[..12].to_string(),
            };
            json!({
                "ID": id,
                "CreatedAt": h.created.clone().unwrap_or_default(),
                "CreatedSince": since(h.created.as_deref()),
                "CreatedBy": h.created_by,
                "Size": human_size_precision(h.size, 3),
                "Comment": h.comment,
            })
        })
        .collect();
    rows.reverse();
    if a.quiet {
        for r in &rows {
            out!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    match a.format.as_deref() {
        Some("json") => {
            for r in &rows {
                out!("{}", serde_json::to_string(r)?);
            }
        }
        Some(t) if t != "table" => {
            let _ = write!(
                std::io::stdout(),
                "{}",
                format_rows(t, &rows, headers::HISTORY)?
            );
        }
        _ => {
            let mut table = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()];
            for r in &rows {
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                let mut by = s("CreatedBy");
                if !a.no_trunc && by.chars().count() > 45 {
                    by = by.chars().take(44).collect::<String>() + "…";
                }
                table.push(vec![
                    s("ID"),
                    s("CreatedSince"),
                    by,
                    s("Size"),
                    s("Comment"),
                ]);
            }
            print_table(&table);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use pelagos_model::filters::path_match as glob_match;

    #[test]
    fn globs_like_docker() {
        assert!(glob_match("busy*", "busybox:latest"));
        assert!(glob_match("*:1", "app:1"));
        assert!(!glob_match("*", "a/b:1"));
        assert!(glob_match("a/*", "a/b"));
        assert!(glob_match("b?sybox", "busybox"));
    }
}
