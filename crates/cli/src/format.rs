//! Output the way Docker prints it: human sizes and ages, and the subset of Go templates
//! (`{{.Field}}`, `{{json .}}`, `{{json .Field}}`) that scripts use with `--format`.
//!
//! Written by hand: the Go-template crates implement far more than `--format` needs and
//! none matches Docker's field lookup on JSON objects.

use serde_json::Value;

/// Docker's `units.HumanSize`: decimal units, three significant digits ("4.26MB").
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let text = format!("{:.4}", value);
    // %.4g: four significant digits, trailing zeros dropped.
    let digits_before = text.split('.').next().map(str::len).unwrap_or(1);
    let precision = 4usize.saturating_sub(digits_before);
    let mut s = format!("{:.*}", precision, value);
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[unit])
}

/// Docker's `units.HumanDuration` of the time since `rfc3339`, plus " ago".
pub fn since(rfc3339: Option<&str>) -> String {
    let Some(when) = rfc3339.and_then(|t| humantime::parse_rfc3339_weak(t).ok()) else {
        return "N/A".into();
    };
    let secs = std::time::SystemTime::now()
        .duration_since(when)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let text = match secs {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".to_string(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".to_string(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s if s < 7 * 24 * 3600 * 2 => format!("{} days", s / (24 * 3600)),
        s if s < 30 * 24 * 3600 * 3 => format!("{} weeks", s / (7 * 24 * 3600)),
        s if s < 365 * 24 * 3600 * 2 => format!("{} months", s / (30 * 24 * 3600)),
        s => format!("{} years", s / (365 * 24 * 3600)),
    };
    format!("{text} ago")
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim();
    if path == "." {
        return Some(value);
    }
    let mut v = value;
    for part in path.trim_start_matches('.').split('.') {
        v = v.get(part)?;
    }
    Some(v)
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(plain).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}

/// Renders `template` against `value`. Unknown actions are an error naming them.
pub fn render(template: &str, value: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("template {template:?}: unclosed action"))?;
        let action = after[..end].trim();
        let rendered = if let Some(arg) = action.strip_prefix("json ") {
            let v = lookup(value, arg).ok_or_else(|| format!("template: no field {arg:?}"))?;
            serde_json::to_string(v).map_err(|e| e.to_string())?
        } else if action.starts_with('.') {
            lookup(value, action)
                .map(plain)
                .ok_or_else(|| format!("template: no field {action:?}"))?
        } else {
            return Err(format!("template: unsupported action {{{{{action}}}}}"));
        };
        out.push_str(&rendered);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out.replace("\\t", "\t").replace("\\n", "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(887), "887B");
        assert_eq!(human_size(1240), "1.24kB");
        assert_eq!(human_size(4_261_000), "4.261MB");
        assert_eq!(human_size(1_000_000), "1MB");
        assert_eq!(human_size(123_456_789), "123.5MB");
    }

    #[test]
    fn templates_render_fields_and_json() {
        let v = serde_json::json!({"Repository": "busybox", "Tag": "latest", "Config": {"Cmd": ["sh"]}});
        assert_eq!(
            render("{{.Repository}}:{{.Tag}}", &v).unwrap(),
            "busybox:latest"
        );
        assert_eq!(render("{{json .Config.Cmd}}", &v).unwrap(), "[\"sh\"]");
        assert_eq!(render("{{.Config.Cmd}}", &v).unwrap(), "[sh]");
        assert!(render("{{.Nope}}", &v).unwrap_err().contains("Nope"));
        assert!(render("{{range .}}", &v).is_err());
        assert!(render("{{json .}}", &v).unwrap().starts_with('{'));
    }

    #[test]
    fn ages() {
        assert_eq!(since(None), "N/A");
        let t = humantime::format_rfc3339(
            std::time::SystemTime::now() - std::time::Duration::from_secs(7200),
        )
        .to_string();
        assert_eq!(since(Some(&t)), "2 hours ago");
    }
}
