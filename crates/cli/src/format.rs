//! Output the way Docker prints it: human sizes and ages, and `--format` (Go templates and
//! Docker's `table` and `json` formats, from `pelagos-template`).

use anyhow::{Context, Result};
use pelagos_template::{tabwrite_min, Methods, Param, Table, Template};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

/// Docker's `units.HumanSize`: `HumanSizeWithPrecision` with four significant digits
/// ("4.261MB"): `system df`, `volume ls`, an image's `VirtualSize`, reclaimed space.
pub fn human_size(bytes: u64) -> String {
    human_size_precision(bytes, 4)
}

/// Docker's `units.HumanSizeWithPrecision(bytes, precision)`: `%.<precision>g` of the value
/// in decimal units ("12B", "4.26MB"); `images`, `history` and `ps -s` use 3.
pub fn human_size_precision(bytes: u64, precision: usize) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    custom_size(bytes, precision, 1000.0, &UNITS)
}

/// Docker's `units.BytesSize`: four significant digits in binary units ("1.5MiB"), as
/// `stats` prints memory.
pub fn bytes_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    custom_size(bytes, 4, 1024.0, &UNITS)
}

/// `system df`'s RECLAIMABLE: the size and its share of the total in whole percent, the size
/// alone when the total is 0 (docker/cli's disk usage formatter).
pub fn reclaimable_size(reclaimable: u64, total: u64) -> String {
    match total {
        0 => human_size(reclaimable),
        t => format!("{} ({}%)", human_size(reclaimable), reclaimable * 100 / t),
    }
}

/// go-units' `CustomSize`: the value divided by `base` while it reaches it, `%.<precision>g`
/// and the unit.
fn custom_size(bytes: u64, precision: usize, base: f64, units: &[&str]) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= base && unit < units.len() - 1 {
        value /= base;
        unit += 1;
    }
    format!("{}{}", go_g(value, precision.max(1)), units[unit])
}

/// Go's `%.<precision>g` of a non-negative number: the shortest of fixed and exponent
/// notation by Go's rule (exponent form when the exponent is below -4 or reaches the
/// precision, so 999.7 with precision 3 is "1e+03"), trailing zeros dropped.
fn go_g(value: f64, precision: usize) -> String {
    let sci = format!("{:.*e}", precision - 1, value);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => s.to_string(),
    };
    if exp < -4 || exp >= precision as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exp.abs());
    }
    let decimals = (precision as i32 - 1 - exp).max(0) as usize;
    trim(&format!("{value:.decimals$}"))
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

/// Column titles of `table` formats, per command: Docker's titles for its fields (a field
/// not listed is titled with its name in upper case).
pub mod headers {
    pub const IMAGES: &[(&str, &str)] = &[
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
    ];
    pub const HISTORY: &[(&str, &str)] = &[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ];
    pub const VOLUMES: &[(&str, &str)] = &[
        ("Driver", "DRIVER"),
        ("Name", "VOLUME NAME"),
        ("Mountpoint", "MOUNTPOINT"),
    ];
    pub const DISK_USAGE: &[(&str, &str)] = &[
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ];
    pub const STATS: &[(&str, &str)] = &[
        ("ID", "CONTAINER ID"),
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ];
}

/// The text a list command prints for `--format` (Docker's formatter): each row rendered on
/// its own line, under a header and aligned in columns when the format starts with `table`.
pub fn format_rows(format: &str, rows: &[Value], headers: &[(&str, &str)]) -> Result<String> {
    format_rows_with(format, rows.iter().map(|r| (r, Methods::new())), headers)
}

/// [`format_rows`] for a context with methods (`{{.Label "k"}}`): each row with its own.
pub fn format_rows_with<'r>(
    format: &str,
    rows: impl IntoIterator<Item = (&'r Value, Methods<'r>)>,
    headers: &[(&str, &str)],
) -> Result<String> {
    let titles: HashMap<&str, &str> = headers.iter().copied().collect();
    let mut table =
        Table::new(format, &titles).with_context(|| format!("bad --format {format:?}"))?;
    for (row, methods) in rows {
        table.add_with(row, &methods)?;
    }
    Ok(table.finish())
}

/// Docker's `Label(name)` method of its container and volume contexts: the value of the
/// label `name`, empty when there is none.
pub fn label_method(labels: &BTreeMap<String, String>) -> Methods<'_> {
    Methods::new().with("Label", &[Param::String], move |args| {
        let name = args.first().and_then(Value::as_str).unwrap_or_default();
        let value = labels.get(name).map(String::as_str).unwrap_or_default();
        Ok(Value::from(value))
    })
}

/// Prints cells as Docker's formatter aligns its tables (Go's tabwriter: minimum width 10,
/// padding 3), the first row being the titles.
pub fn print_table(rows: &[Vec<String>]) {
    let _ = std::io::stdout()
        .lock()
        .write_all(table_text(rows, 10).as_bytes());
}

/// The rows aligned by Go's tabwriter with the minimum column width `min_width`.
pub fn table_text(rows: &[Vec<String>], min_width: usize) -> String {
    let lines: Vec<String> = rows.iter().map(|r| r.join("\t") + "\n").collect();
    tabwrite_min(&lines.concat(), min_width)
}

/// The text `inspect`, `info` and `version` print for `--format` over one object (no newline).
pub fn format_one(format: &str, value: &Value) -> Result<String> {
    let template =
        Template::parse_format(format).with_context(|| format!("bad --format {format:?}"))?;
    Ok(template.render(value)?)
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
        assert_eq!(human_size_precision(12, 3), "12B");
        assert_eq!(human_size_precision(4_261_000, 3), "4.26MB");
        assert_eq!(human_size_precision(0, 3), "0B");
        assert_eq!(human_size_precision(1_982_000, 3), "1.98MB");
        assert_eq!(human_size_precision(999_700, 3), "1e+03kB");
        assert_eq!(human_size_precision(100_000, 3), "100kB");
        assert_eq!(human_size(999_990), "1000kB");
        assert_eq!(human_size(1_984_000), "1.984MB");
        assert_eq!(bytes_size(1536 * 1024), "1.5MiB");
        assert_eq!(bytes_size(512), "512B");
        assert_eq!(reclaimable_size(0, 0), "0B");
        assert_eq!(reclaimable_size(0, 1_984_000), "0B (0%)");
        assert_eq!(reclaimable_size(1_000, 3_000), "1kB (33%)");
    }

    #[test]
    fn formats_rows_and_objects() {
        let rows = [serde_json::json!({"Repository": "busybox", "Tag": "latest", "ID": "abc"})];
        assert_eq!(
            format_rows("{{.Repository}}:{{.Tag}}", &rows, headers::IMAGES).unwrap(),
            "busybox:latest\n"
        );
        assert_eq!(
            format_rows("table {{.ID}}\\t{{.Tag}}", &rows, headers::IMAGES).unwrap(),
            "IMAGE ID   TAG\nabc        latest\n"
        );
        assert_eq!(
            format_one("json", &rows[0]).unwrap(),
            r#"{"ID":"abc","Repository":"busybox","Tag":"latest"}"#
        );
        assert!(format_one("{{range}}", &rows[0]).is_err());
    }

    #[test]
    fn label_method_reads_its_map() {
        let labels = BTreeMap::from([("com.example.k".to_string(), "v".to_string())]);
        let rows = [serde_json::json!({"Labels": "com.example.k=v"})];
        let with_labels = rows.iter().map(|r| (r, label_method(&labels)));
        assert_eq!(
            format_rows_with(
                r#"{{.Label "com.example.k"}}|{{.Label "no"}}|{{.Labels}}"#,
                with_labels,
                &[]
            )
            .unwrap(),
            "v||com.example.k=v\n"
        );
        let with_labels = rows.iter().map(|r| (r, label_method(&labels)));
        let e = format_rows_with("{{.Label}}", with_labels, &[]).unwrap_err();
        assert!(
            format!("{e:#}").contains("wrong number of args for Label: want 1 got 0"),
            "{e:#}"
        );
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
