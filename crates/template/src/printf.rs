//! Go's `fmt.Sprintf`, `Sprint` and `Sprintln` for JSON values: the verbs scripts use
//! (`%s %d %v %q %t %x %X %o %b %c %e %f %g`), flags `- + 0 space`, width and precision, and
//! Go's `%!d(string=x)`, `%!d(MISSING)` and `%!(EXTRA …)` markers.

use crate::value::{
    go_float_e, go_float_g, go_print, go_quote, non_finite, number, type_name, Num,
};
use serde_json::Value;

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    precision: Option<usize>,
    verb: char,
}

/// `fmt.Sprintf(format, args...)`; `None` arguments are Go's nil.
pub(crate) fn sprintf(format: &str, args: &[Option<&Value>]) -> String {
    let mut out = String::new();
    let mut used = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = parse_spec(&mut chars);
        match spec.verb {
            '%' => out.push('%'),
            '\0' => out.push_str("%!(NOVERB)"),
            verb if used >= args.len() => out.push_str(&format!("%!{verb}(MISSING)")),
            _ => {
                out.push_str(&format_arg(&spec, args[used]));
                used += 1;
            }
        }
    }
    if used < args.len() {
        let extra: Vec<String> = args[used..]
            .iter()
            .map(|a| match a {
                None => "<nil>".to_string(),
                Some(v) => format!("{}={}", type_name(Some(v)), go_print(Some(v))),
            })
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn parse_spec(chars: &mut std::iter::Peekable<std::str::Chars>) -> Spec {
    let mut spec = Spec::default();
    while let Some(&c) = chars.peek() {
        match c {
            '-' => spec.minus = true,
            '+' => spec.plus = true,
            '0' => spec.zero = true,
            ' ' => spec.space = true,
            '#' => {}
            _ => break,
        }
        chars.next();
    }
    spec.width = digits(chars);
    if chars.peek() == Some(&'.') {
        chars.next();
        spec.precision = Some(digits(chars).unwrap_or(0));
    }
    spec.verb = chars.next().unwrap_or('\0');
    spec
}

fn digits(chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
        chars.next();
    }
    n
}

/// One argument under one verb; arrays and maps format element by element, as Go does.
fn format_arg(spec: &Spec, v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) if matches!(spec.verb, 'v') => pad(spec, "<nil>".into(), false),
        None | Some(Value::Null) => format!("%!{}(<nil>)", spec.verb),
        Some(Value::Array(items)) => {
            let parts: Vec<String> = items.iter().map(|i| format_arg(spec, Some(i))).collect();
            format!("[{}]", parts.join(" "))
        }
        Some(Value::Object(map)) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, i)| {
                    let key = format_arg(spec, Some(&Value::String(k.clone())));
                    format!("{key}:{}", format_arg(spec, Some(i)))
                })
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Some(Value::Bool(b)) if matches!(spec.verb, 'v' | 't') => pad(spec, b.to_string(), false),
        Some(Value::String(s)) => format_str(spec, s).unwrap_or_else(|| bad_verb(spec, v)),
        Some(n @ Value::Number(_)) => match number(n) {
            Some(Num::Int(i)) => format_int(spec, i),
            Some(Num::Float(f)) => format_float(spec, f),
            None => None,
        }
        .unwrap_or_else(|| bad_verb(spec, v)),
        Some(_) => bad_verb(spec, v),
    }
}

fn bad_verb(spec: &Spec, v: Option<&Value>) -> String {
    format!("%!{}({}={})", spec.verb, type_name(v), go_print(v))
}

fn format_str(spec: &Spec, s: &str) -> Option<String> {
    let s: String = match spec.precision {
        Some(p) if matches!(spec.verb, 's' | 'v' | 'q') => s.chars().take(p).collect(),
        _ => s.to_string(),
    };
    let text = match spec.verb {
        's' | 'v' => s,
        'q' => go_quote(&s),
        'x' => s.bytes().map(|b| format!("{b:02x}")).collect(),
        'X' => s.bytes().map(|b| format!("{b:02X}")).collect(),
        _ => return None,
    };
    Some(pad(spec, text, false))
}

fn format_int(spec: &Spec, i: i64) -> Option<String> {
    let magnitude = i.unsigned_abs();
    let digits = match spec.verb {
        'd' | 'v' => magnitude.to_string(),
        'x' => format!("{magnitude:x}"),
        'X' => format!("{magnitude:X}"),
        'o' => format!("{magnitude:o}"),
        'b' => format!("{magnitude:b}"),
        'c' => return char::from_u32(i as u32).map(|c| pad(spec, c.to_string(), false)),
        'q' => {
            let c = char::from_u32(i as u32)?;
            let quoted = go_quote(&c.to_string());
            let inner = &quoted[1..quoted.len() - 1];
            let inner = if inner == "\\\"" { "\"" } else { inner };
            let inner = if inner == "'" { "\\'" } else { inner };
            return Some(pad(spec, format!("'{inner}'"), false));
        }
        _ => return None,
    };
    let digits = match spec.precision {
        Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    };
    Some(pad(spec, format!("{}{digits}", sign(spec, i < 0)), true))
}

fn format_float(spec: &Spec, f: f64) -> Option<String> {
    let body = match spec.verb {
        'v' | 'g' => go_float_g(f.abs(), spec.precision),
        'G' => go_float_g(f.abs(), spec.precision).to_uppercase(),
        'e' => go_float_e(f.abs(), spec.precision.unwrap_or(6)),
        'E' => go_float_e(f.abs(), spec.precision.unwrap_or(6)).to_uppercase(),
        'f' | 'F' => non_finite(f.abs())
            .unwrap_or_else(|| format!("{:.*}", spec.precision.unwrap_or(6), f.abs())),
        _ => return None,
    };
    let body = body.trim_start_matches('+').to_string();
    let negative = f.is_sign_negative() && !f.is_nan();
    Some(pad(
        spec,
        format!("{}{body}", sign(spec, negative)),
        f.is_finite(),
    ))
}

fn sign(spec: &Spec, negative: bool) -> &'static str {
    match (negative, spec.plus, spec.space) {
        (true, _, _) => "-",
        (false, true, _) => "+",
        (false, false, true) => " ",
        _ => "",
    }
}

/// Pads to the width: spaces on the left (or right with `-`), zeros after the sign for
/// numbers with `0`.
fn pad(spec: &Spec, text: String, numeric: bool) -> String {
    let Some(width) = spec.width else {
        return text;
    };
    let len = text.chars().count();
    if len >= width {
        return text;
    }
    let fill = width - len;
    if spec.minus {
        return format!("{text}{}", " ".repeat(fill));
    }
    if spec.zero && numeric {
        let split = if text.starts_with(['-', '+', ' ']) {
            1
        } else {
            0
        };
        return format!("{}{}{}", &text[..split], "0".repeat(fill), &text[split..]);
    }
    format!("{}{text}", " ".repeat(fill))
}

/// `fmt.Sprint`: operands joined, with a space between two operands neither of which is a
/// string.
pub(crate) fn sprint(args: &[Option<&Value>]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = |v: &Option<&Value>| matches!(v, Some(Value::String(_)));
        if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&go_print(*a));
    }
    out
}

/// `fmt.Sprintln`: operands joined by spaces, and a newline.
pub(crate) fn sprintln(args: &[Option<&Value>]) -> String {
    let parts: Vec<String> = args.iter().map(|a| go_print(*a)).collect();
    format!("{}\n", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(format: &str, args: &[Value]) -> String {
        let args: Vec<Option<&Value>> = args.iter().map(Some).collect();
        sprintf(format, &args)
    }

    #[test]
    fn verbs_match_go() {
        assert_eq!(
            f("%s-%d-%v", &[json!("a"), json!(3), json!(1.5)]),
            "a-3-1.5"
        );
        assert_eq!(f("%-5s|%5s|", &[json!("ab"), json!("cd")]), "ab   |   cd|");
        assert_eq!(
            f("%05d %+d %x", &[json!(42), json!(7), json!(255)]),
            "00042 +7 ff"
        );
        assert_eq!(f("%q %t", &[json!("hi\n"), json!(true)]), "\"hi\\n\" true");
        assert_eq!(
            f("%.2f %e", &[json!(1.23456), json!(1234.5)]),
            "1.23 1.234500e+03"
        );
        assert_eq!(f("%d", &[json!("x")]), "%!d(string=x)");
        assert_eq!(f("%d %d", &[json!(1)]), "1 %!d(MISSING)");
        assert_eq!(f("%d", &[json!(1), json!("a")]), "1%!(EXTRA string=a)");
        assert_eq!(
            f("%v %s", &[json!([1, "a"]), json!(["x", "y"])]),
            "[1 a] [x y]"
        );
        assert_eq!(f("%.3s|%c|%%", &[json!("abcdef"), json!(65)]), "abc|A|%");
        assert_eq!(sprintf("%v %s", &[None, None]), "<nil> %!s(<nil>)");
    }

    #[test]
    fn sprint_spaces_like_go() {
        let (a, one, two) = (json!("a"), json!(1), json!(2));
        assert_eq!(
            sprint(&[Some(&one), Some(&two), Some(&a), Some(&one)]),
            "1 2a1"
        );
        assert_eq!(sprintln(&[Some(&a), Some(&one)]), "a 1\n");
    }
}
