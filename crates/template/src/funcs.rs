//! Functions: Go's builtins (`and or not len index slice eq ne lt le gt ge print printf
//! println`) and Docker's (`json split join title lower upper pad truncate`).

use crate::exec::Exec;
use crate::parse::Operand;
use crate::printf::{sprint, sprintf, sprintln};
use crate::value::{go_json, number, truth, type_name, Num, Val};
use serde_json::Value;
use std::cmp::Ordering;

type Res<T> = Result<T, String>;

/// Calls `name` with the operands `args` and, in a pipeline, the previous command's value.
pub(crate) fn call<'a>(
    ex: &mut Exec<'a>,
    name: &str,
    args: &[Operand],
    last: Option<Val<'a>>,
    dot: &Val<'a>,
) -> Res<Val<'a>> {
    if name == "and" || name == "or" {
        return and_or(ex, name == "and", args, last, dot);
    }
    let mut vals = Vec::with_capacity(args.len() + 1);
    for a in args {
        vals.push(ex.operand(a, dot)?.settle());
    }
    vals.extend(last);
    if ex.header && is_docker_function(name) {
        return vals.into_iter().next().ok_or_else(|| want(name, 1, 0));
    }
    builtin(name, vals)
}

fn is_docker_function(name: &str) -> bool {
    matches!(
        name,
        "json" | "split" | "join" | "title" | "lower" | "upper" | "pad" | "truncate"
    )
}

/// Go's `and` and `or` (evaluated lazily): the first false (true) argument, or the last.
fn and_or<'a>(
    ex: &mut Exec<'a>,
    and: bool,
    args: &[Operand],
    last: Option<Val<'a>>,
    dot: &Val<'a>,
) -> Res<Val<'a>> {
    let name = if and { "and" } else { "or" };
    if args.is_empty() && last.is_none() {
        return Err(format!(
            "wrong number of args for {name}: want at least 1 got 0"
        ));
    }
    let mut v = Val::Missing;
    for a in args {
        v = ex.operand(a, dot)?.settle();
        if truth(&v) != and {
            return Ok(v);
        }
    }
    Ok(last.unwrap_or(v))
}

fn builtin<'a>(name: &str, vals: Vec<Val<'a>>) -> Res<Val<'a>> {
    let json: Vec<Option<&Value>> = vals.iter().map(Val::json).collect();
    let s = |v: String| Ok(Val::owned(Value::String(v)));
    let b = |v: bool| Ok(Val::owned(Value::Bool(v)));
    match (name, json.as_slice()) {
        ("print", args) => s(sprint(args)),
        ("println", args) => s(sprintln(args)),
        ("printf", [format, args @ ..]) => s(sprintf(&string_arg(name, *format)?, args)),
        ("not", [_]) => b(!truth(&vals[0])),
        ("len", [v]) => len(*v),
        ("index", [item, idx @ ..]) => index(*item, idx),
        ("slice", [item, idx @ ..]) => slice(*item, idx),
        ("eq", [a, rest @ ..]) => b(eq(*a, rest)?),
        ("ne", [x, y]) => b(!eq(*x, &[*y])?),
        ("lt", [x, y]) => b(compare(*x, *y)? == Ordering::Less),
        ("le", [x, y]) => b(compare(*x, *y)? != Ordering::Greater),
        ("gt", [x, y]) => b(compare(*x, *y)? == Ordering::Greater),
        ("ge", [x, y]) => b(compare(*x, *y)? != Ordering::Less),
        ("json", [v]) => s(go_json(*v)),
        ("split", [v, sep]) => split(&string_arg(name, *v)?, &string_arg(name, *sep)?),
        ("join", [v, sep]) => s(join(*v, &string_arg(name, *sep)?)?),
        ("title", [v]) => s(title(&string_arg(name, *v)?)),
        ("lower", [v]) => s(string_arg(name, *v)?.to_lowercase()),
        ("upper", [v]) => s(string_arg(name, *v)?.to_uppercase()),
        ("pad", [v, l, r]) => s(pad(
            &string_arg(name, *v)?,
            int_arg(name, *l)?,
            int_arg(name, *r)?,
        )),
        ("truncate", [v, n]) => s(truncate(&string_arg(name, *v)?, int_arg(name, *n)?)),
        (name, args) => Err(arity_error(name, args.len())),
    }
}

fn arity_error(name: &str, got: usize) -> String {
    let want = match name {
        "printf" | "index" | "slice" => "at least 1".to_string(),
        "eq" => return "missing argument for comparison".into(),
        "not" | "len" | "json" | "title" | "lower" | "upper" => "1".into(),
        "ne" | "lt" | "le" | "gt" | "ge" | "split" | "join" | "truncate" => "2".into(),
        "pad" => "3".into(),
        other => return format!("function {other:?} not defined"),
    };
    format!("wrong number of args for {name}: want {want} got {got}")
}

fn want(name: &str, n: usize, got: usize) -> String {
    format!("wrong number of args for {name}: want {n} got {got}")
}

fn string_arg(name: &str, v: Option<&Value>) -> Res<String> {
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        None => Err(format!("{name}: invalid value; expected string")),
        other => Err(format!(
            "{name}: wrong type for value; expected string; got {}",
            type_name(other)
        )),
    }
}

fn int_arg(name: &str, v: Option<&Value>) -> Res<i64> {
    match v.and_then(number) {
        Some(Num::Int(i)) => Ok(i),
        _ => Err(format!(
            "{name}: wrong type for value; expected int; got {}",
            type_name(v)
        )),
    }
}

fn len<'a>(v: Option<&Value>) -> Res<Val<'a>> {
    let n = match v {
        Some(Value::String(s)) => s.len(),
        Some(Value::Array(a)) => a.len(),
        Some(Value::Object(m)) => m.len(),
        None => return Err("len of nil pointer".into()),
        other => return Err(format!("len of type {}", type_name(other))),
    };
    Ok(Val::owned(Value::from(n)))
}

/// Go's `index`: arrays and strings by int, maps by string; a missing key is nil.
fn index<'a>(item: Option<&Value>, idx: &[Option<&Value>]) -> Res<Val<'a>> {
    let Some(mut cur) = item.cloned() else {
        return Err("index of untyped nil".into());
    };
    for i in idx {
        cur = match (&cur, i) {
            (Value::Null, _) => return Err("index of nil pointer".into()),
            (Value::Array(a), _) => a[position(*i, a.len())?].clone(),
            (Value::String(s), _) => Value::from(s.as_bytes()[position(*i, s.len())?]),
            (Value::Object(m), Some(Value::String(k))) => m.get(k).cloned().unwrap_or(Value::Null),
            (Value::Object(_), other) => {
                return Err(format!(
                    "value has type {}; should be string",
                    type_name(*other)
                ))
            }
            (other, _) => {
                return Err(format!(
                    "can't index item of type {}",
                    type_name(Some(other))
                ))
            }
        };
    }
    Ok(Val::owned(cur))
}

fn position(i: Option<&Value>, len: usize) -> Res<usize> {
    match i.and_then(number) {
        Some(Num::Int(n)) if n >= 0 && (n as usize) < len => Ok(n as usize),
        Some(Num::Int(n)) => Err(format!("index out of range: {n}")),
        _ => Err(format!(
            "cannot index slice/array with type {}",
            type_name(i)
        )),
    }
}

/// Go's `slice x 1 2`: a sub-array or substring.
fn slice<'a>(item: Option<&Value>, idx: &[Option<&Value>]) -> Res<Val<'a>> {
    let len = match item {
        Some(Value::String(s)) => s.len(),
        Some(Value::Array(a)) => a.len(),
        None => return Err("slice of untyped nil".into()),
        other => return Err(format!("can't slice item of type {}", type_name(other))),
    };
    if idx.len() > 2 {
        return Err("too many slice indexes".into());
    }
    let bound = |i: usize, default: usize| match idx.get(i) {
        None => Ok(default),
        Some(v) => match v.and_then(number) {
            Some(Num::Int(n)) if n >= 0 && n as usize <= len => Ok(n as usize),
            Some(Num::Int(n)) => Err(format!("index out of range: {n}")),
            _ => Err(format!(
                "cannot index slice/array with type {}",
                type_name(*v)
            )),
        },
    };
    let (from, to) = (bound(0, 0)?, bound(1, len)?);
    if from > to {
        return Err(format!("invalid slice index: {from} > {to}"));
    }
    Ok(Val::owned(match item {
        Some(Value::String(s)) => {
            Value::from(s.get(from..to).ok_or("slice splits a UTF-8 character")?)
        }
        Some(Value::Array(a)) => Value::Array(a[from..to].to_vec()),
        _ => Value::Null,
    }))
}

/// A value as Go's comparison functions see it.
#[derive(PartialEq, PartialOrd)]
enum Basic<'v> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'v str),
}

fn basic(v: &Value) -> Option<Basic<'_>> {
    match v {
        Value::Bool(b) => Some(Basic::Bool(*b)),
        Value::String(s) => Some(Basic::Str(s)),
        Value::Number(_) => number(v).map(|n| match n {
            Num::Int(i) => Basic::Int(i),
            Num::Float(f) => Basic::Float(f),
        }),
        _ => None,
    }
}

fn same_kind(a: &Basic, b: &Basic) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Go's `eq arg1 arg2...`: whether `arg1` equals any of the others.
fn eq(a: Option<&Value>, rest: &[Option<&Value>]) -> Res<bool> {
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    if let Some(v @ (Value::Array(_) | Value::Object(_))) = a {
        return Err(format!("uncomparable type {}: {v}", type_name(Some(v))));
    }
    for b in rest {
        let equal = match (a.and_then(basic), b.and_then(basic)) {
            (None, None) => a.is_none() && b.is_none(),
            (Some(x), Some(y)) if same_kind(&x, &y) => x == y,
            _ if a.is_none() || b.is_none() => false,
            _ => return Err("incompatible types for comparison".into()),
        };
        if equal {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's ordering for `lt le gt ge`: numbers of one kind, or strings.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Res<Ordering> {
    let (Some(x), Some(y)) = (a.and_then(basic), b.and_then(basic)) else {
        return Err("invalid type for comparison".into());
    };
    if !same_kind(&x, &y) {
        return Err("incompatible types for comparison".into());
    }
    if matches!(x, Basic::Bool(_)) {
        return Err("invalid type for comparison".into());
    }
    x.partial_cmp(&y)
        .ok_or_else(|| "invalid type for comparison".to_string())
}

fn split<'a>(s: &str, sep: &str) -> Res<Val<'a>> {
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::from(c.to_string())).collect()
    } else {
        s.split(sep).map(Value::from).collect()
    };
    Ok(Val::owned(Value::Array(parts)))
}

/// Docker's `join`; it takes Go's `[]string`, which JSON arrays of strings stand for.
fn join(v: Option<&Value>, sep: &str) -> Res<String> {
    let Some(Value::Array(items)) = v else {
        return Err(format!(
            "join: wrong type for value; expected []string; got {}",
            type_name(v)
        ));
    };
    let strings: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
    strings
        .map(|s| s.join(sep))
        .ok_or_else(|| "join: wrong type for value; expected []string; got []interface {}".into())
}

/// Go's `strings.Title`: the first letter of each word in upper case.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_separator = true;
    for c in s.chars() {
        if prev_separator {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_separator = is_title_separator(c);
    }
    out
}

fn is_title_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    !(c.is_alphanumeric()) && c.is_whitespace()
}

/// Docker's `pad`: spaces around a non-empty string.
fn pad(s: &str, left: i64, right: i64) -> String {
    if s.is_empty() {
        return String::new();
    }
    let spaces = |n: i64| " ".repeat(n.max(0) as usize);
    format!("{}{s}{}", spaces(left), spaces(right))
}

/// Docker's `truncate`: at most `n` bytes (cut back to a character boundary).
fn truncate(s: &str, n: i64) -> String {
    let mut n = n.max(0) as usize;
    if s.len() < n {
        return s.to_string();
    }
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    s[..n].to_string()
}
