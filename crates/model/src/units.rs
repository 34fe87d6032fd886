//! Docker's value syntaxes for sizes (go-units `RAMInBytes`, binary units) and durations
//! (Go's `time.ParseDuration`), shared by the flags, the validation and the log drivers.

/// Docker's byte sizes (go-units `RAMInBytes`): `512`, `64m`, `1.5g`, `2kb`, `2KiB`, `64 m`;
/// binary units (k = 1024) up to `p`. `None` when malformed or negative.
pub fn parse_size(text: &str) -> Option<i64> {
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(digits_end);
    let well_formed = number.starts_with(|c: char| c.is_ascii_digit())
        && !number.ends_with('.')
        && number.matches('.').count() <= 1;
    if !well_formed {
        return None;
    }
    let mut rest = rest.strip_prefix(' ').unwrap_or(rest).chars().peekable();
    let power = match rest.peek().map(char::to_ascii_lowercase) {
        Some(u @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            rest.next();
            "kmgtp".find(u).map_or(0, |i| i as i32 + 1)
        }
        _ => 0,
    };
    rest.next_if(|c| c.eq_ignore_ascii_case(&'i'));
    rest.next_if(|c| c.eq_ignore_ascii_case(&'b'));
    if rest.next().is_some() {
        return None;
    }
    let bytes = number.parse::<f64>().ok()? * 1024f64.powi(power);
    (bytes < i64::MAX as f64).then_some(bytes as i64)
}

/// Go's `time.ParseDuration` in nanoseconds: `30s`, `1m30s`, `500ms`, `1.5h`, `-2s`, `0`;
/// units `ns us µs ms s m h`.
pub fn parse_duration(text: &str) -> Option<i64> {
    let (negative, mut s) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let number_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, rest) = s.split_at(number_end);
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_end);
        s = rest;
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || whole.len() > 20 {
            return None;
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let (mut frac, mut denominator) = (0i128, 1i128);
        for d in fraction.chars().take(18) {
            frac = frac * 10 + i128::from(d.to_digit(10)?);
            denominator *= 10;
        }
        total += whole * scale + frac * scale / denominator;
        if total > i128::from(i64::MAX) {
            return None;
        }
    }
    i64::try_from(if negative { -total } else { total }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("2kb"), Some(2048));
        assert_eq!(parse_size("2KiB"), Some(2048));
        assert_eq!(parse_size("64 M"), Some(64 << 20));
        assert_eq!(parse_size("5 "), Some(5));
        assert_eq!(parse_size("1p"), Some(1 << 50));
        for bad in ["", "64x", "lots", "-1", "1.", ".5", "1..2", "5mm", "5  "] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("2us"), Some(2_000));
        assert_eq!(parse_duration("-2s"), Some(-2_000_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        for bad in ["", "30", "1x", "s", "1.s1", "-", "1e3s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_duration(".5s"), Some(500_000_000));
    }
}
