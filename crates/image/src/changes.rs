//! `docker import --change`: the Dockerfile instructions CMD, ENTRYPOINT, ENV,
//! WORKDIR, USER, EXPOSE, LABEL and STOPSIGNAL applied to an image config.

use serde_json::{Map, Value};

use crate::error::StoreError;

/// Applies `changes` in order to `config` (the `config` object of an image
/// config, with Docker's key names: `Cmd`, `Env`, ...).
pub(crate) fn apply(config: &mut Map<String, Value>, changes: &[String]) -> Result<(), StoreError> {
    for change in changes {
        apply_one(config, change).map_err(|reason| StoreError::InvalidChange {
            change: change.clone(),
            reason,
        })?;
    }
    Ok(())
}

fn apply_one(config: &mut Map<String, Value>, change: &str) -> Result<(), String> {
    let trimmed = change.trim();
    let (keyword, rest) = match trimmed.split_once(char::is_whitespace) {
        Some((k, r)) => (k, r.trim()),
        None => (trimmed, ""),
    };
    let keyword = keyword.to_ascii_uppercase();
    if keyword.is_empty() {
        return Err("empty instruction".to_owned());
    }
    if rest.is_empty() {
        return Err(format!("{keyword} needs an argument"));
    }
    match keyword.as_str() {
        "CMD" => {
            config.insert("Cmd".to_owned(), strings(command(rest)));
        }
        "ENTRYPOINT" => {
            config.insert("Entrypoint".to_owned(), strings(command(rest)));
        }
        "ENV" => {
            let mut env: Vec<String> = string_list(config.get("Env"));
            for (k, v) in pairs(rest)? {
                let prefix = format!("{k}=");
                env.retain(|e| !e.starts_with(&prefix) && *e != k);
                env.push(format!("{k}={v}"));
            }
            config.insert("Env".to_owned(), strings(env));
        }
        "LABEL" => {
            let labels = config
                .entry("Labels")
                .or_insert_with(|| Value::Object(Map::new()));
            if !labels.is_object() {
                *labels = Value::Object(Map::new());
            }
            if let Value::Object(map) = labels {
                for (k, v) in pairs(rest)? {
                    map.insert(k, Value::String(v));
                }
            }
        }
        "WORKDIR" => {
            let dir = single_word(rest)?;
            let dir = if dir.starts_with('/') {
                dir
            } else {
                // Relative to the previous WORKDIR, as in a Dockerfile.
                let base = config
                    .get("WorkingDir")
                    .and_then(Value::as_str)
                    .unwrap_or("/")
                    .trim_end_matches('/')
                    .to_owned();
                format!("{base}/{dir}")
            };
            config.insert("WorkingDir".to_owned(), Value::String(dir));
        }
        "USER" => {
            config.insert("User".to_owned(), Value::String(single_word(rest)?));
        }
        "STOPSIGNAL" => {
            let sig = single_word(rest)?;
            let ok = sig.parse::<u32>().is_ok_and(|n| n > 0 && n < 65)
                || sig
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'+' || b == b'-');
            if !ok {
                return Err(format!("{sig:?} is not a signal name or number"));
            }
            config.insert("StopSignal".to_owned(), Value::String(sig));
        }
        "EXPOSE" => {
            let ports = config
                .entry("ExposedPorts")
                .or_insert_with(|| Value::Object(Map::new()));
            if !ports.is_object() {
                *ports = Value::Object(Map::new());
            }
            if let Value::Object(map) = ports {
                for word in words(rest)? {
                    for port in expand_port(&word)? {
                        map.insert(port, Value::Object(Map::new()));
                    }
                }
            }
        }
        other => {
            return Err(format!(
                "{other} is not supported (supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, WORKDIR)"
            ))
        }
    }
    Ok(())
}

fn strings(v: Vec<String>) -> Value {
    Value::Array(v.into_iter().map(Value::String).collect())
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// JSON (exec) form `["a", "b"]`, else shell form `/bin/sh -c <rest>`.
fn command(rest: &str) -> Vec<String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return v;
        }
    }
    vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.to_owned()]
}

fn single_word(rest: &str) -> Result<String, String> {
    let mut w = words(rest)?;
    match w.len() {
        1 => Ok(w.remove(0)),
        n => Err(format!("expected one argument, got {n}")),
    }
}

/// Splits on unquoted whitespace, removing quotes: `"..."` (with `\`
/// escapes), `'...'` (literal) and `\` escapes outside quotes.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => cur.push(e),
                            None => return Err("unterminated double quote".to_owned()),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated double quote".to_owned()),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated single quote".to_owned()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `k=v k2="v 2"`, or the legacy single pair `k some value`.
fn pairs(rest: &str) -> Result<Vec<(String, String)>, String> {
    let ws = words(rest)?;
    let Some(first) = ws.first() else {
        return Err("expected <key>=<value>".to_owned());
    };
    if !first.contains('=') {
        let key = first.clone();
        if ws.len() < 2 {
            return Err(format!("{key:?} has no value (expected <key>=<value>)"));
        }
        return Ok(vec![(key, ws[1..].join(" "))]);
    }
    ws.into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(format!("{w:?} is not <key>=<value>")),
        })
        .collect()
}

/// `80`, `80/tcp`, `53/udp`, `8000-8002/tcp` → `["80/tcp"]`, ...
fn expand_port(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_owned()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("{spec:?}: protocol must be tcp, udp or sctp"));
    }
    let parse = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{spec:?}: {p:?} is not a port number"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(ports)?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(format!("{spec:?}: empty port range"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(changes: &[&str]) -> Result<Value, StoreError> {
        let mut m = Map::new();
        let owned: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply(&mut m, &owned)?;
        Ok(Value::Object(m))
    }

    #[test]
    fn applies_every_instruction() {
        let v = run(&[
            r#"CMD ["/bin/echo", "hi there"]"#,
            "entrypoint /entry.sh --flag",
            r#"ENV A=1 B="two words" C=x\ y"#,
            "ENV LEGACY some value",
            "ENV A=replaced",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER 1000:1000",
            "EXPOSE 80 53/udp 8000-8002",
            r#"LABEL org.example.name="my app" version=1"#,
            "STOPSIGNAL SIGQUIT",
        ])
        .unwrap();
        assert_eq!(v["Cmd"], serde_json::json!(["/bin/echo", "hi there"]));
        assert_eq!(
            v["Entrypoint"],
            serde_json::json!(["/bin/sh", "-c", "/entry.sh --flag"])
        );
        assert_eq!(
            v["Env"],
            serde_json::json!(["B=two words", "C=x y", "LEGACY=some value", "A=replaced"])
        );
        assert_eq!(v["WorkingDir"], "/srv/app");
        assert_eq!(v["User"], "1000:1000");
        let ports: Vec<&String> = v["ExposedPorts"].as_object().unwrap().keys().collect();
        assert_eq!(
            ports.len(),
            5,
            "80/tcp 53/udp 8000/tcp 8001/tcp 8002/tcp: {ports:?}"
        );
        assert!(v["ExposedPorts"].get("8001/tcp").is_some());
        assert!(v["ExposedPorts"].get("53/udp").is_some());
        assert_eq!(v["Labels"]["org.example.name"], "my app");
        assert_eq!(v["Labels"]["version"], "1");
        assert_eq!(v["StopSignal"], "SIGQUIT");
    }

    #[test]
    fn rejects_bad_changes_naming_them() {
        for (bad, why) in [
            ("RUN echo hi", "RUN is not supported"),
            ("CMD", "needs an argument"),
            ("EXPOSE 99999", "is not a port number"),
            ("EXPOSE 80/icmp", "protocol"),
            ("ENV A", "has no value"),
            (r#"LABEL a="unterminated"#, "unterminated double quote"),
            ("USER a b", "expected one argument"),
            ("STOPSIGNAL kill;rm", "not a signal"),
        ] {
            let err = run(&[bad]).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }
}
