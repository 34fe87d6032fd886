//! The values a template computes with, and how Go's `fmt` and `encoding/json` print them.
//!
//! JSON integers behave as Go `int` (Docker's contexts are typed structs with integer fields, so
//! `{{.Size}}` prints digits, not `4.261e+06`); other JSON numbers behave as `float64`.

use serde_json::Value;
use std::borrow::Cow;

/// One value during execution: Go's invalid value (a missing map key), or a JSON value.
///
/// `Missing` and `Some(Null)` differ as in Go: a field of a missing key is again missing, a
/// field of a JSON `null` (a nil `interface{}`) is an error.
#[derive(Clone, Debug)]
pub(crate) enum Val<'a> {
    Missing,
    Some(Cow<'a, Value>),
}

impl<'a> Val<'a> {
    pub(crate) fn owned(v: Value) -> Val<'static> {
        Val::Some(Cow::Owned(v))
    }

    pub(crate) fn borrowed(v: &'a Value) -> Val<'a> {
        Val::Some(Cow::Borrowed(v))
    }

    /// The JSON value, `None` for missing and for `null` (Go's nil).
    pub(crate) fn json(&self) -> Option<&Value> {
        match self {
            Val::Some(v) if !v.is_null() => Some(v),
            _ => None,
        }
    }

    /// Go's `indirectInterface` at the end of a pipeline: a nil interface becomes invalid.
    pub(crate) fn settle(self) -> Self {
        match self {
            Val::Some(v) if v.is_null() => Val::Missing,
            other => other,
        }
    }
}

/// Go's number kinds for a JSON number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

pub(crate) fn number(v: &Value) -> Option<Num> {
    let n = v.as_number()?;
    Some(match n.as_i64() {
        Some(i) => Num::Int(i),
        None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
    })
}

/// The Go type name of a value, as error messages and `%!d(T=v)` show it.
pub(crate) fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None | Some(Value::Null) => "<nil>",
        Some(Value::Bool(_)) => "bool",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "[]interface {}",
        Some(Value::Object(_)) => "map[string]interface {}",
        Some(Value::Number(n)) if n.is_i64() => "int",
        Some(Value::Number(_)) => "float64",
    }
}

/// Go's `isTrue`: false, 0, nil and empty strings, arrays and maps are false.
pub(crate) fn truth(v: &Val) -> bool {
    match v.json() {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(_)) => match v.json().and_then(number) {
            Some(Num::Int(i)) => i != 0,
            Some(Num::Float(f)) => f != 0.0,
            None => false,
        },
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
        Some(Value::Null) => false,
    }
}

/// Go's `fmt` `%v` of a value (`<nil>` for nil).
pub(crate) fn go_print(v: Option<&Value>) -> String {
    let mut out = String::new();
    write_go(&mut out, v);
    out
}

fn write_go(out: &mut String, v: Option<&Value>) {
    match v {
        None | Some(Value::Null) => out.push_str("<nil>"),
        Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::String(s)) => out.push_str(s),
        Some(Value::Number(_)) => match v.and_then(number) {
            Some(Num::Int(i)) => out.push_str(&i.to_string()),
            Some(Num::Float(f)) => out.push_str(&go_float_g(f, None)),
            None => {}
        },
        Some(Value::Array(items)) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go(out, Some(item));
            }
            out.push(']');
        }
        Some(Value::Object(map)) => {
            out.push_str("map[");
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_go(out, Some(item));
            }
            out.push(']');
        }
    }
}

/// Decimal digits and the decimal exponent of `f`: `f = 0.DIGITS × 10^(exp+1)`, shortest
/// round-trip digits when `significant` is `None`, else rounded to that many.
fn digits(f: f64, significant: Option<usize>) -> (String, i32) {
    let text = match significant {
        None => format!("{:e}", f.abs()),
        Some(n) => format!("{:.*e}", n.saturating_sub(1), f.abs()),
    };
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    (mantissa.replace('.', ""), exp.parse().unwrap_or(0))
}

/// Go's `%e` exponent: a sign and at least two digits.
fn go_exp(exp: i32) -> String {
    format!("e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// Go's `strconv.FormatFloat(f, 'g', prec, 64)` as `%v` and `%g` use it: exponent form when
/// the exponent is below -4 or at least the precision.
pub(crate) fn go_float_g(f: f64, precision: Option<usize>) -> String {
    if let Some(special) = non_finite(f) {
        return special;
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0");
    }
    let (digs, exp) = digits(f, precision.map(|p| p.max(1)));
    let digs = digs.trim_end_matches('0');
    let digs = if digs.is_empty() { "0" } else { digs };
    // Go decides on the exponent form with precision 6 when printing the shortest digits.
    let eprec = precision.map_or(6, |p| p.max(1) as i32);
    if exp < -4 || exp >= eprec {
        let (head, tail) = digs.split_at(1);
        let frac = if tail.is_empty() {
            String::new()
        } else {
            format!(".{tail}")
        };
        return format!("{sign}{head}{frac}{}", go_exp(exp));
    }
    format!("{sign}{}", place_point(digs, exp))
}

/// Digits `d1d2d3…` with decimal exponent `exp` written without an exponent.
fn place_point(digs: &str, exp: i32) -> String {
    if exp < 0 {
        return format!("0.{}{digs}", "0".repeat((-exp - 1) as usize));
    }
    let int_len = exp as usize + 1;
    if digs.len() <= int_len {
        format!("{digs}{}", "0".repeat(int_len - digs.len()))
    } else {
        format!("{}.{}", &digs[..int_len], &digs[int_len..])
    }
}

pub(crate) fn non_finite(f: f64) -> Option<String> {
    if f.is_nan() {
        Some("NaN".into())
    } else if f.is_infinite() {
        Some(if f > 0.0 { "+Inf" } else { "-Inf" }.into())
    } else {
        None
    }
}

/// Go's `%e` with a precision (6 by default).
pub(crate) fn go_float_e(f: f64, precision: usize) -> String {
    if let Some(special) = non_finite(f) {
        return special;
    }
    let text = format!("{:.*e}", precision, f);
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    format!("{mantissa}{}", go_exp(exp.parse().unwrap_or(0)))
}

/// Go's `encoding/json` text of a value (Docker's `json` function): compact, map keys in
/// order, HTML characters not escaped.
pub(crate) fn go_json(v: Option<&Value>) -> String {
    let mut out = String::new();
    write_json(&mut out, v.unwrap_or(&Value::Null));
    out
}

fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(_) => match number(v) {
            Some(Num::Float(f)) => out.push_str(&json_float(f)),
            _ => out.push_str(&v.to_string()),
        },
        Value::String(s) => json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, k);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

/// Go's JSON float: plain decimal unless the exponent is below -6 or at least 21.
fn json_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let (digs, exp) = digits(f, None);
    let digs = digs.trim_end_matches('0');
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-6..21).contains(&exp) {
        let (head, tail) = digs.split_at(1);
        let frac = if tail.is_empty() {
            String::new()
        } else {
            format!(".{tail}")
        };
        let e = if exp < 0 { "-" } else { "+" };
        return format!("{sign}{head}{frac}e{e}{}", exp.abs());
    }
    format!("{sign}{}", place_point(digs, exp))
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `strconv.Quote`: a double-quoted string with Go escapes.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_as_go_does() {
        assert_eq!(go_float_g(1.5, None), "1.5");
        assert_eq!(go_float_g(1e6, None), "1e+06");
        assert_eq!(go_float_g(123456.0, None), "123456");
        assert_eq!(go_float_g(1234567.0, None), "1.234567e+06");
        assert_eq!(go_float_g(0.0001, None), "0.0001");
        assert_eq!(go_float_g(0.00001, None), "1e-05");
        assert_eq!(go_float_g(-2.25, None), "-2.25");
        assert_eq!(go_float_g(1.23456, Some(3)), "1.23");
        assert_eq!(go_float_e(1234.5678, 2), "1.23e+03");
        assert_eq!(json_float(1.0), "1");
        assert_eq!(json_float(1e21), "1e+21");
        assert_eq!(json_float(0.5), "0.5");
        assert_eq!(json_float(1e-7), "1e-7");
    }

    #[test]
    fn values_print_as_go_fmt_does() {
        let v = json!({"b": [1, "x", null], "a": {"c": true}, "f": 2.5});
        assert_eq!(go_print(Some(&v)), "map[a:map[c:true] b:[1 x <nil>] f:2.5]");
        assert_eq!(go_json(Some(&json!({"a": "<&>"}))), r#"{"a":"<&>"}"#);
        assert_eq!(go_quote("a\"b\n"), r#""a\"b\n""#);
    }

    #[test]
    fn truthiness_is_go_s() {
        for falsy in [
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!truth(&Val::borrowed(&falsy)), "{falsy}");
        }
        assert!(!truth(&Val::Missing));
        assert!(truth(&Val::owned(json!([0]))));
    }
}
