//! Docker's credential file (`~/.docker/config.json`), read and written the way the docker CLI
//! does, so `pelagos login` and `docker login` share credentials.
//!
//! Shape: `{"auths": {"<server>": {"auth": base64("user:password")}}, ...}`. Docker Hub's key is
//! `https://index.docker.io/v1/`; other registries are keyed by `host[:port]` (older clients wrote
//! `https://host/` or `http://host/v1/`, which are matched too). Entries holding plain
//! `username`/`password` fields instead of `auth` are read as well. Credential helpers work as
//! in Docker: `credHelpers["<host>"]` or else `credsStore` names `docker-credential-<name>`,
//! which `get`/`store`/`erase` run with the server URL (or a JSON credential) on stdin; the
//! file then only records an empty `auths` entry. Identity tokens are not used.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::RegistryError;

/// The key Docker uses for Docker Hub in `auths`.
pub(crate) const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password (or access token used as a password).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret, even in debug logs.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Docker's credential file, held as the JSON it was read from so that fields pelagos does not
/// know survive a rewrite.
#[derive(Debug, Clone)]
pub struct AuthFile {
    path: PathBuf,
    doc: Map<String, Value>,
}

impl AuthFile {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json` (`/root` when `HOME` is
    /// unset: pelagos runs as root).
    pub fn default_path() -> PathBuf {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("config.json");
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        home.join(".docker").join("config.json")
    }

    /// An empty credential file that will be written to `path` on the first change.
    pub fn empty(path: &Path) -> AuthFile {
        AuthFile {
            path: path.to_owned(),
            doc: Map::new(),
        }
    }

    /// Credentials for one registry held in memory only, never written (a daemon's request
    /// carries them in `X-Registry-Auth`; the daemon's own file is not the client's).
    pub fn in_memory(registry: &str, creds: &Credentials) -> AuthFile {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", creds.username, creds.password));
        let mut auths = Map::new();
        auths.insert(
            server_key(&normalize_registry(registry)),
            serde_json::json!({ "auth": token }),
        );
        let mut doc = Map::new();
        doc.insert("auths".into(), Value::Object(auths));
        AuthFile {
            path: PathBuf::new(),
            doc,
        }
    }

    /// Reads the file; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<AuthFile, RegistryError> {
        let text = match fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AuthFile::empty(path)),
            Err(e) => return Err(auth_err(path, format!("cannot read: {e}"))),
        };
        // docker writes an empty file in some error paths; treat it like a missing one.
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(AuthFile::empty(path));
        }
        let doc: Value = serde_json::from_slice(&text)
            .map_err(|e| auth_err(path, format!("not valid JSON: {e}")))?;
        let Value::Object(doc) = doc else {
            return Err(auth_err(path, "the top level is not a JSON object".into()));
        };
        match doc.get("auths") {
            None | Some(Value::Object(_)) => {}
            Some(_) => return Err(auth_err(path, "\"auths\" is not a JSON object".into())),
        }
        let file = AuthFile {
            path: path.to_owned(),
            doc,
        };
        // Surface malformed entries at load time, not at the first pull.
        for (key, entry) in file.auths() {
            decode_entry(entry).map_err(|m| auth_err(path, format!("auths[{key:?}]: {m}")))?;
        }
        Ok(file)
    }

    /// The file this was read from and will be written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Credentials for `registry` as in [`pelagos_image::Reference::registry`] (`docker.io`,
    /// `localhost:5000`), or `None` (anonymous).
    pub fn get(&self, registry: &str) -> Option<Credentials> {
        let wanted = normalize_registry(registry);
        if let Some(helper) = self.helper_for(&wanted) {
            match helper_get(&helper, &server_key(&wanted)) {
                Ok(Some(c)) => return Some(c),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%helper, registry = %wanted, error = %e, "credential helper failed");
                }
            }
        }
        // An exact key wins over one that only normalises to the same host.
        let exact = self.auths().find(|(k, _)| **k == server_key(&wanted));
        let entry = exact.or_else(|| {
            self.auths()
                .find(|(k, _)| normalize_registry(&key_host(k)) == wanted)
        })?;
        decode_entry(entry.1).ok().flatten()
    }

    /// Every registry that has credentials, normalised (`docker.io`, `host:port`).
    pub fn registries(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .auths()
            .filter(|(_, e)| matches!(decode_entry(e), Ok(Some(_))))
            .map(|(k, _)| normalize_registry(&key_host(k)))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Stores credentials for `registry` and saves the file. Other keys for the same host
    /// (legacy spellings) are removed so that [`AuthFile::get`] cannot find stale ones.
    pub fn set(&mut self, registry: &str, creds: &Credentials) -> Result<(), RegistryError> {
        let wanted = normalize_registry(registry);
        let key = server_key(&wanted);
        let path = self.path.clone();
        if let Some(helper) = self.helper_for(&wanted) {
            let input = serde_json::json!({
                "ServerURL": key, "Username": creds.username, "Secret": creds.password,
            });
            run_helper(&helper, "store", input.to_string().as_bytes())
                .map_err(|m| auth_err(&path, m))?;
            // As the docker CLI does: the secret lives in the helper, the file says "logged in".
            let auths = self.auths_mut()?;
            auths.retain(|k, _| normalize_registry(&key_host(k)) != wanted);
            auths.insert(key, Value::Object(Map::new()));
            return self.save().map_err(|m| auth_err(&path, m));
        }
        let auths = self.auths_mut()?;
        // Keep unknown fields of an existing entry (e.g. "email"), drop plain-text secrets.
        let mut entry = match auths.remove(&key) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        auths.retain(|k, _| normalize_registry(&key_host(k)) != wanted);
        entry.remove("username");
        entry.remove("password");
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", creds.username, creds.password));
        entry.insert("auth".into(), Value::String(token));
        auths.insert(key, Value::Object(entry));
        self.save().map_err(|m| auth_err(&path, m))
    }

    /// Removes every entry for `registry`; saves and returns `true` if there was one.
    pub fn remove(&mut self, registry: &str) -> Result<bool, RegistryError> {
        let wanted = normalize_registry(registry);
        let path = self.path.clone();
        let mut erased = false;
        if let Some(helper) = self.helper_for(&wanted) {
            erased = helper_get(&helper, &server_key(&wanted))
                .ok()
                .flatten()
                .is_some();
            if erased {
                run_helper(&helper, "erase", server_key(&wanted).as_bytes())
                    .map_err(|m| auth_err(&path, m))?;
            }
        }
        let Some(Value::Object(auths)) = self.doc.get_mut("auths") else {
            return Ok(false);
        };
        let before = auths.len();
        auths.retain(|k, _| normalize_registry(&key_host(k)) != wanted);
        if auths.len() == before {
            return Ok(erased);
        }
        self.save().map_err(|m| auth_err(&path, m))?;
        Ok(true)
    }

    /// The credential helper for a registry: `credHelpers` by host, else `credsStore`.
    fn helper_for(&self, wanted: &str) -> Option<String> {
        let by_host = self.doc.get("credHelpers").and_then(Value::as_object);
        let hub_alias = (wanted == "docker.io").then_some("index.docker.io");
        let specific = by_host.and_then(|m| {
            [Some(server_key(wanted).as_str()), Some(wanted), hub_alias]
                .into_iter()
                .flatten()
                .find_map(|k| m.get(k).and_then(Value::as_str).map(str::to_owned))
        });
        specific
            .or_else(|| {
                self.doc
                    .get("credsStore")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .filter(|h| !h.is_empty())
    }

    fn auths(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.doc
            .get("auths")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.iter())
    }

    fn auths_mut(&mut self) -> Result<&mut Map<String, Value>, RegistryError> {
        let slot = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        match slot {
            Value::Object(m) => Ok(m),
            _ => Err(auth_err(
                &self.path,
                "\"auths\" is not a JSON object".into(),
            )),
        }
    }

    /// Writes the file atomically: a 0600 temporary file in the same directory, fsynced, then
    /// renamed over the old one; the directory is created 0700 if missing.
    fn save(&self) -> Result<(), String> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
        }
        let mut text = serde_json::to_vec_pretty(&Value::Object(self.doc.clone()))
            .map_err(|e| format!("cannot serialise: {e}"))?;
        text.push(b'\n');
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config.json".into());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            // The mode given to open() is masked by the umask; make sure it is exactly 0600.
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            f.write_all(&text)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(format!("cannot write: {e}"));
        }
        Ok(())
    }
}

fn auth_err(path: &Path, message: String) -> RegistryError {
    RegistryError::AuthFile {
        path: path.to_owned(),
        message,
    }
}

/// Decodes one `auths` entry: `Ok(None)` when it has no credentials (e.g. only an identity
/// token or an email), an error when `auth` is not base64 of `user:password`.
fn decode_entry(entry: &Value) -> Result<Option<Credentials>, String> {
    let Value::Object(m) = entry else {
        return Err("entry is not a JSON object".into());
    };
    if let Some(auth) = m.get("auth") {
        let Value::String(auth) = auth else {
            return Err("\"auth\" is not a string".into());
        };
        if !auth.is_empty() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| format!("\"auth\" is not base64: {e}"))?;
            let text = String::from_utf8(raw).map_err(|_| "\"auth\" is not UTF-8".to_string())?;
            let (user, pass) = text
                .split_once(':')
                .ok_or_else(|| "\"auth\" does not decode to user:password".to_string())?;
            return Ok(Some(Credentials {
                username: user.to_owned(),
                password: pass.trim_end_matches('\0').to_owned(),
            }));
        }
    }
    match (
        m.get("username").and_then(Value::as_str),
        m.get("password").and_then(Value::as_str),
    ) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials {
            username: u.to_owned(),
            password: p.to_owned(),
        })),
        _ => Ok(None),
    }
}

/// The host part of an `auths` key: `https://host:5000/v1/` → `host:5000`.
fn key_host(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// Docker Hub's many names → `docker.io`; anything else as given (lowercased host).
fn normalize_registry(registry: &str) -> String {
    let host = key_host(registry).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        _ => host,
    }
}

/// The key docker writes for a normalised registry.
/// Runs `docker-credential-<helper> <action>` with `input` on stdin; its stdout, or an error
/// naming the helper with what it printed.
fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<String, String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("credential helper {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| format!("credential helper {program}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("credential helper {program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "credential helper {program} {action} failed: {}",
            if stdout.is_empty() {
                stderr.trim()
            } else {
                &stdout
            }
        ))
    }
}

/// `get` from a helper: `None` when it has nothing for the server.
fn helper_get(helper: &str, server: &str) -> Result<Option<Credentials>, String> {
    match run_helper(helper, "get", server.as_bytes()) {
        Ok(text) => {
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| format!("credential helper {helper}: invalid answer: {e}"))?;
            let field = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let (username, password) = (field("Username"), field("Secret"));
            Ok((!password.is_empty()).then_some(Credentials { username, password }))
        }
        Err(e) if e.contains("credentials not found") => Ok(None),
        Err(e) => Err(e),
    }
}

fn server_key(registry: &str) -> String {
    if registry == "docker.io" {
        DOCKER_HUB_AUTH_KEY.to_owned()
    } else {
        registry.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let f = AuthFile::load(&dir.path().join("nope.json")).unwrap();
        assert_eq!(f.get("docker.io"), None);
        assert!(f.registries().is_empty());
    }

    #[test]
    fn reads_docker_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let text = format!(
            r#"{{
  "auths": {{
    "https://index.docker.io/v1/": {{"auth": "{}"}},
    "localhost:5000": {{"auth": "{}"}},
    "https://legacy.example.com/v1/": {{"auth": "{}"}},
    "plain.example.com": {{"username": "pu", "password": "pp"}},
    "tokenonly.example.com": {{"identitytoken": "xyz"}}
  }},
  "credsStore": "desktop"
}}"#,
            b64("hubuser:hub:pass"),
            b64("alice:secret"),
            b64("old:pw")
        );
        fs::write(&path, text).unwrap();
        let f = AuthFile::load(&path).unwrap();
        // Docker Hub under all of its names; the password may contain ':'.
        for name in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(f.get(name), Some(creds("hubuser", "hub:pass")), "{name}");
        }
        assert_eq!(f.get("localhost:5000"), Some(creds("alice", "secret")));
        assert_eq!(f.get("localhost:5001"), None);
        assert_eq!(f.get("legacy.example.com"), Some(creds("old", "pw")));
        assert_eq!(f.get("plain.example.com"), Some(creds("pu", "pp")));
        assert_eq!(f.get("tokenonly.example.com"), None);
        assert_eq!(
            f.registries(),
            vec![
                "docker.io",
                "legacy.example.com",
                "localhost:5000",
                "plain.example.com"
            ]
        );
    }

    #[test]
    fn set_and_remove_preserve_unknown_fields_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.json");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(
            &path,
            r#"{"auths": {"other.example.com": {"auth": "", "email": "a@b.c"},
                          "https://index.docker.io/v1/": {"auth": "eDp5", "email": "hub@x"}},
                "credHelpers": {"gcr.io": "gcloud"}, "HttpHeaders": {"X-Meta": "1"}}"#,
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let mut f = AuthFile::load(&path).unwrap();
        f.set("localhost:5000", &creds("bob", "pw1")).unwrap();
        f.set("docker.io", &creds("hub", "pw2")).unwrap();

        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["credHelpers"]["gcr.io"], "gcloud");
        assert_eq!(v["HttpHeaders"]["X-Meta"], "1");
        assert_eq!(v["auths"]["other.example.com"]["email"], "a@b.c");
        assert_eq!(v["auths"]["localhost:5000"]["auth"], b64("bob:pw1"));
        assert_eq!(v["auths"][DOCKER_HUB_AUTH_KEY]["auth"], b64("hub:pw2"));
        // The entry's own unknown field survives the credential update.
        assert_eq!(v["auths"][DOCKER_HUB_AUTH_KEY]["email"], "hub@x");

        // A fresh load sees what was written.
        let mut f = AuthFile::load(&path).unwrap();
        assert_eq!(f.get("localhost:5000"), Some(creds("bob", "pw1")));
        assert_eq!(f.get("docker.io"), Some(creds("hub", "pw2")));

        assert!(f.remove("localhost:5000").unwrap());
        assert!(!f.remove("localhost:5000").unwrap());
        assert!(f.remove("index.docker.io").unwrap());
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert!(v["auths"].get("localhost:5000").is_none());
        assert!(v["auths"].get(DOCKER_HUB_AUTH_KEY).is_none());
        assert_eq!(v["auths"]["other.example.com"]["email"], "a@b.c");
        assert_eq!(v["credHelpers"]["gcr.io"], "gcloud");
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.json")]);
    }

    #[test]
    fn set_creates_file_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new").join("config.json");
        let mut f = AuthFile::load(&path).unwrap();
        f.set("127.0.0.1:5000", &creds("u", "p")).unwrap();
        let dmode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            AuthFile::load(&path).unwrap().get("127.0.0.1:5000"),
            Some(creds("u", "p"))
        );
    }

    #[test]
    fn set_replaces_legacy_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            format!(
                r#"{{"auths": {{"https://reg.example.com/v1/": {{"auth": "{}"}}}}}}"#,
                b64("old:old")
            ),
        )
        .unwrap();
        let mut f = AuthFile::load(&path).unwrap();
        f.set("reg.example.com", &creds("new", "new")).unwrap();
        let f = AuthFile::load(&path).unwrap();
        assert_eq!(f.get("reg.example.com"), Some(creds("new", "new")));
        assert_eq!(f.registries(), vec!["reg.example.com"]);
    }

    #[test]
    fn malformed_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        for (text, needle) in [
            ("{not json", "not valid JSON"),
            ("[]", "top level"),
            (r#"{"auths": []}"#, "\"auths\" is not a JSON object"),
            (
                r#"{"auths": {"r.io": {"auth": "!!!"}}}"#,
                "auths[\"r.io\"]: \"auth\" is not base64",
            ),
            (
                &format!(
                    r#"{{"auths": {{"r.io": {{"auth": "{}"}}}}}}"#,
                    b64("nocolon")
                ),
                "user:password",
            ),
        ] {
            fs::write(&path, text).unwrap();
            let err = AuthFile::load(&path).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(needle), "{text}: {msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
        }
    }

    #[test]
    fn debug_redacts_password() {
        let s = format!("{:?}", creds("u", "hunter2"));
        assert!(!s.contains("hunter2"), "{s}");
    }
}
