//! The evaluator: walks the tree over a JSON value with Go's scoping, truthiness and
//! printing rules.

use crate::funcs;
use crate::methods::{Method, Methods, Param};
use crate::parse::{Branch, Cmd, Node, Operand, Pipe, Term};
use crate::value::{go_print, truth, type_name, Val};
use crate::Error;
use serde_json::Value;
use std::borrow::Cow;

/// What a list of nodes asks its enclosing `range` to do.
#[derive(PartialEq)]
pub(crate) enum Flow {
    Next,
    Break,
    Continue,
}

/// Nested templates deeper than this are refused rather than overflowing the stack.
const MAX_DEPTH: usize = 10_000;

pub(crate) struct Exec<'a> {
    /// The rendered value, the receiver of `methods`.
    root: &'a Value,
    methods: &'a Methods<'a>,
    vars: Vec<(String, Val<'a>)>,
    /// Docker's header pass of a `table` format: fields of strings are the string itself and
    /// the Docker functions return their first argument.
    pub(crate) header: bool,
    pub(crate) out: String,
    depth: usize,
}

type Res<T> = Result<T, String>;

impl<'a> Exec<'a> {
    pub(crate) fn new(root: &'a Value, methods: &'a Methods<'a>, header: bool) -> Self {
        Exec {
            root,
            methods,
            vars: vec![("$".into(), Val::borrowed(root))],
            header,
            out: String::new(),
            depth: 0,
        }
    }

    pub(crate) fn run(&mut self, nodes: &[Node], dot: &Val<'a>) -> Result<Flow, Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::Exec {
                at: String::new(),
                msg: "exceeded maximum template depth".into(),
            });
        }
        let mut flow = Flow::Next;
        for node in nodes {
            flow = self.node(node, dot)?;
            if flow != Flow::Next {
                break;
            }
        }
        self.depth -= 1;
        Ok(flow)
    }

    fn node(&mut self, node: &Node, dot: &Val<'a>) -> Result<Flow, Error> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(pipe) => {
                let v = self.pipe(pipe, dot)?;
                if pipe.vars.is_empty() {
                    match v {
                        Val::Missing => self.out.push_str("<no value>"),
                        Val::Some(v) => self.out.push_str(&go_print(Some(&v))),
                    }
                }
            }
            Node::If(b) => return self.if_with(b, dot, false),
            Node::With(b) => return self.if_with(b, dot, true),
            Node::Range(b) => return self.range(b, dot),
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Next)
    }

    fn if_with(&mut self, b: &Branch, dot: &Val<'a>, with: bool) -> Result<Flow, Error> {
        let mark = self.vars.len();
        let v = self.pipe(&b.pipe, dot)?;
        let flow = if truth(&v) {
            let inner = if with { v } else { dot.clone() };
            self.run(&b.then, &inner)?
        } else {
            self.run(&b.otherwise, dot)?
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn range(&mut self, b: &Branch, dot: &Val<'a>) -> Result<Flow, Error> {
        let mark = self.vars.len();
        let v = self.commands(&b.pipe, dot)?;
        let items: Vec<(Value, Val<'a>)> = match &v {
            Val::Missing => Vec::new(),
            Val::Some(Cow::Borrowed(Value::Array(a))) => index_items(a.iter().map(Val::borrowed)),
            Val::Some(Cow::Owned(Value::Array(a))) => {
                index_items(a.iter().map(|e| Val::owned(e.clone())))
            }
            Val::Some(Cow::Borrowed(Value::Object(m))) => m
                .iter()
                .map(|(k, e)| (Value::from(k.as_str()), Val::borrowed(e)))
                .collect(),
            Val::Some(Cow::Owned(Value::Object(m))) => m
                .iter()
                .map(|(k, e)| (Value::from(k.as_str()), Val::owned(e.clone())))
                .collect(),
            Val::Some(other) => {
                return Err(exec_err(
                    &b.pipe,
                    format!("range can't iterate over {}", go_print(Some(other))),
                ))
            }
        };
        if items.is_empty() {
            let flow = self.run(&b.otherwise, dot)?;
            self.vars.truncate(mark);
            return Ok(flow);
        }
        for (key, elem) in items {
            self.range_vars(&b.pipe, key, &elem);
            let flow = self.run(&b.then, &elem)?;
            self.vars.truncate(mark);
            if flow == Flow::Break {
                break;
            }
        }
        Ok(Flow::Next)
    }

    fn range_vars(&mut self, pipe: &Pipe, key: Value, elem: &Val<'a>) {
        match pipe.vars.as_slice() {
            [v] => self.vars.push((v.clone(), elem.clone())),
            [k, v] => {
                self.vars.push((k.clone(), Val::owned(key)));
                self.vars.push((v.clone(), elem.clone()));
            }
            _ => {}
        }
    }

    /// A pipeline's value, declaring or assigning its variables.
    pub(crate) fn pipe(&mut self, pipe: &Pipe, dot: &Val<'a>) -> Result<Val<'a>, Error> {
        let v = self.commands(pipe, dot)?;
        match (pipe.vars.as_slice(), pipe.assign) {
            ([], _) => {}
            ([name], false) => self.vars.push((name.clone(), v.clone())),
            ([name], true) => {
                let slot = self.vars.iter_mut().rev().find(|(n, _)| n == name);
                let Some(slot) = slot else {
                    return Err(exec_err(pipe, format!("undefined variable: {name}")));
                };
                slot.1 = v.clone();
            }
            _ => return Err(exec_err(pipe, "too many declarations")),
        }
        Ok(v)
    }

    fn commands(&mut self, pipe: &Pipe, dot: &Val<'a>) -> Result<Val<'a>, Error> {
        let mut value = None;
        for cmd in &pipe.cmds {
            let v = self
                .command(cmd, dot, value.take())
                .map_err(|msg| exec_err(pipe, msg))?;
            value = Some(v.settle());
        }
        Ok(value.unwrap_or(Val::Missing))
    }

    fn command(&mut self, cmd: &Cmd, dot: &Val<'a>, last: Option<Val<'a>>) -> Res<Val<'a>> {
        let first = &cmd.args[0];
        if let Term::Func(name) = &first.term {
            return funcs::call(self, name, &cmd.args[1..], last, dot);
        }
        let has_args = cmd.args.len() > 1 || last.is_some();
        if has_args && !first.fields.is_empty() {
            // Go: a field chain followed by arguments calls its last name as a method.
            return self.chain(first, dot, &cmd.args[1..], last);
        }
        if has_args {
            return Err(format!(
                "can't give argument to non-function {}",
                describe(first)
            ));
        }
        if matches!(first.term, Term::Nil) {
            return Err("nil is not a command".into());
        }
        self.operand(first, dot)
    }

    /// An operand's value: its term, then its field chain (a method named in it is called
    /// without arguments).
    pub(crate) fn operand(&mut self, op: &Operand, dot: &Val<'a>) -> Res<Val<'a>> {
        self.chain(op, dot, &[], None)
    }

    /// A term and its field chain; the last name gets `args` and, in a pipeline, `last`.
    fn chain(
        &mut self,
        op: &Operand,
        dot: &Val<'a>,
        args: &[Operand],
        last: Option<Val<'a>>,
    ) -> Res<Val<'a>> {
        let mut v = match &op.term {
            Term::Dot => dot.clone(),
            Term::Var(name) => self.var(name)?,
            Term::Lit(l) => Val::owned(l.clone()),
            Term::Nil => Val::owned(Value::Null),
            Term::Func(name) => funcs::call(self, name, &[], None, dot)?,
            Term::Pipe(p) => self.commands(p, dot).map_err(|e| e.to_string())?,
        };
        let Some((final_name, path)) = op.fields.split_last() else {
            return Ok(v);
        };
        for name in path {
            v = self.field(v, name, &[], None, dot)?;
        }
        self.field(v, final_name, args, last, dot)
    }

    fn var(&self, name: &str) -> Res<Val<'a>> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("undefined variable: {name}"))
    }

    /// Go's `evalField`: a method of the rendered value, else a map key; `args` and `last`
    /// are a method's arguments, an error for anything else.
    fn field(
        &mut self,
        base: Val<'a>,
        name: &str,
        args: &[Operand],
        last: Option<Val<'a>>,
        dot: &Val<'a>,
    ) -> Res<Val<'a>> {
        if let Some(method) = self.method_of(&base, name) {
            return self.call_method(name, method, args, last, dot);
        }
        let has_args = !args.is_empty() || last.is_some();
        let v = match base {
            Val::Missing => return Ok(Val::Missing),
            Val::Some(v) => v,
        };
        Ok(match v {
            Cow::Borrowed(Value::Object(_)) | Cow::Owned(Value::Object(_)) if has_args => {
                return Err(format!("{name} is not a method but has arguments"))
            }
            Cow::Borrowed(Value::Object(m)) => {
                m.get(name).map(Val::borrowed).unwrap_or(Val::Missing)
            }
            Cow::Owned(Value::Object(mut m)) => {
                m.remove(name).map(Val::owned).unwrap_or(Val::Missing)
            }
            Cow::Borrowed(Value::Null) | Cow::Owned(Value::Null) => {
                return Err(format!("nil pointer evaluating interface {{}}.{name}"))
            }
            s @ (Cow::Borrowed(Value::String(_)) | Cow::Owned(Value::String(_))) if self.header => {
                Val::Some(s)
            }
            other => {
                return Err(format!(
                    "can't evaluate field {name} in type {}",
                    type_name(Some(&other))
                ))
            }
        })
    }

    /// The method `name` when `base` is the rendered value itself (methods belong to its
    /// type, as in Go; a copy inside another value is just a map).
    fn method_of(&self, base: &Val<'a>, name: &str) -> Option<&'a Method<'a>> {
        let methods: &'a Methods<'a> = self.methods;
        match base {
            Val::Some(Cow::Borrowed(v)) if std::ptr::eq(*v, self.root) => methods.get(name),
            _ => None,
        }
    }

    /// Go's `evalCall` for a method: the argument count, each argument's type, then the body.
    fn call_method(
        &mut self,
        name: &str,
        method: &Method<'a>,
        args: &[Operand],
        last: Option<Val<'a>>,
        dot: &Val<'a>,
    ) -> Res<Val<'a>> {
        let got = args.len() + usize::from(last.is_some());
        if got != method.params.len() {
            return Err(format!(
                "wrong number of args for {name}: want {} got {got}",
                method.params.len()
            ));
        }
        let mut values = Vec::with_capacity(got);
        for (arg, param) in args.iter().zip(&method.params) {
            match &arg.term {
                Term::Lit(lit) if arg.fields.is_empty() => {
                    param.check_literal(lit)?;
                    values.push(lit.clone());
                }
                _ => values.push(checked(*param, self.operand(arg, dot)?)?),
            }
        }
        if let (Some(v), Some(param)) = (last, method.params.last()) {
            values.push(checked(*param, v)?);
        }
        (method.body)(&values)
            .map(Val::owned)
            .map_err(|e| format!("error calling {name}: {e}"))
    }
}

/// An argument's JSON value once it fits `param` (missing and nil are `null`).
fn checked(param: Param, v: Val) -> Res<Value> {
    param.check(&v)?;
    Ok(v.json().cloned().unwrap_or(Value::Null))
}

fn index_items<'a>(items: impl Iterator<Item = Val<'a>>) -> Vec<(Value, Val<'a>)> {
    items
        .enumerate()
        .map(|(i, v)| (Value::from(i), v))
        .collect()
}

fn exec_err(pipe: &Pipe, msg: impl Into<String>) -> Error {
    Error::Exec {
        at: pipe.at.clone(),
        msg: msg.into(),
    }
}

fn describe(op: &Operand) -> String {
    let base = match &op.term {
        Term::Dot => String::new(),
        Term::Var(v) => v.clone(),
        Term::Func(f) => f.clone(),
        Term::Lit(l) => l.to_string(),
        Term::Nil => "nil".into(),
        Term::Pipe(_) => "(...)".into(),
    };
    let chain: String = op.fields.iter().map(|f| format!(".{f}")).collect();
    if base.is_empty() && chain.is_empty() {
        ".".into()
    } else {
        base + &chain
    }
}
