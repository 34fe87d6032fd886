//! The parser: lexed items become a tree of text, actions and `if`/`with`/`range` blocks.

use crate::lex::{Item, Tok};
use crate::Error;
use serde_json::Value;

#[derive(Debug)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
}

/// A block: its pipeline, its body and its `else` part.
#[derive(Debug)]
pub(crate) struct Branch {
    pub pipe: Pipe,
    pub then: Vec<Node>,
    pub otherwise: Vec<Node>,
}

/// `$a, $b := cmd | cmd`: the declared (or assigned) variables and the commands.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub vars: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
    /// Where the pipeline is, for errors: the action's line and source.
    pub at: String,
}

#[derive(Debug)]
pub(crate) struct Cmd {
    pub args: Vec<Operand>,
}

/// A term followed by a field chain (`$x.A.B`, `(pipe).A`; a plain `.A.B` is `Dot` + chain).
#[derive(Debug)]
pub(crate) struct Operand {
    pub term: Term,
    pub fields: Vec<String>,
}

#[derive(Debug)]
pub(crate) enum Term {
    Dot,
    Var(String),
    Func(String),
    Lit(Value),
    Nil,
    Pipe(Box<Pipe>),
}

/// How a list of nodes ended.
enum Stop {
    Eof,
    End,
    Else(Vec<Tok>),
}

pub(crate) struct Parser {
    items: std::vec::IntoIter<Item>,
    line: usize,
}

impl Parser {
    pub(crate) fn parse(items: Vec<Item>) -> Result<Vec<Node>, Error> {
        let mut p = Parser {
            items: items.into_iter(),
            line: 1,
        };
        match p.list(0)? {
            (nodes, Stop::Eof) => Ok(nodes),
            (_, Stop::End) => Err(p.err("unexpected {{end}}")),
            (_, Stop::Else(_)) => Err(p.err("unexpected {{else}}")),
        }
    }

    fn err(&self, msg: impl Into<String>) -> Error {
        Error::parse(self.line, msg)
    }

    /// Nodes up to `{{end}}`, `{{else ...}}` or the end of input; `loops` counts the
    /// enclosing `range`s (for `break` and `continue`).
    fn list(&mut self, loops: usize) -> Result<(Vec<Node>, Stop), Error> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let (toks, src) = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Item::Action { toks, line, src } => {
                    self.line = line;
                    (toks, format!("{line}: {src}"))
                }
            };
            let toks = strip_spaces(toks);
            let keyword = match toks.first() {
                Some(Tok::Ident(k)) => k.as_str(),
                _ => "",
            };
            let rest = toks.get(1..).unwrap_or_default().to_vec();
            match keyword {
                "end" if rest.is_empty() => return Ok((nodes, Stop::End)),
                "else" => return Ok((nodes, Stop::Else(strip_spaces(rest)))),
                "if" => nodes.push(Node::If(self.branch(rest, src, loops, true)?)),
                "with" => nodes.push(Node::With(self.branch(rest, src, loops, true)?)),
                "range" => nodes.push(Node::Range(self.branch(rest, src, loops + 1, false)?)),
                "break" | "continue" if rest.is_empty() && loops > 0 => {
                    nodes.push(if keyword == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    })
                }
                "break" | "continue" => {
                    return Err(self.err(format!("{{{{{keyword}}}}} outside {{{{range}}}}")))
                }
                "end" | "define" | "template" | "block" => {
                    return Err(self.err(format!("unsupported or misplaced {{{{{keyword}}}}}")))
                }
                _ => nodes.push(Node::Action(self.pipe(&toks, src)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    /// A block's pipeline and body up to its `{{end}}`; `else if`/`else with` chain on.
    fn branch(
        &mut self,
        toks: Vec<Tok>,
        src: String,
        loops: usize,
        chains: bool,
    ) -> Result<Branch, Error> {
        let pipe = self.pipe(&strip_spaces(toks), src.clone())?;
        let (then, end) = self.list(loops)?;
        let otherwise = match end {
            Stop::Eof => return Err(self.err(format!("unexpected EOF in {src}"))),
            Stop::End => Vec::new(),
            Stop::Else(rest) if rest.is_empty() => self.else_list(loops)?,
            Stop::Else(rest) => match rest.first() {
                Some(Tok::Ident(k)) if chains && (k == "if" || k == "with") => {
                    let inner = self.branch(rest[1..].to_vec(), src, loops, true)?;
                    vec![if k == "if" {
                        Node::If(inner)
                    } else {
                        Node::With(inner)
                    }]
                }
                _ => return Err(self.err("unexpected tokens after {{else")),
            },
        };
        Ok(Branch {
            pipe,
            then,
            otherwise,
        })
    }

    fn else_list(&mut self, loops: usize) -> Result<Vec<Node>, Error> {
        match self.list(loops)? {
            (nodes, Stop::End) => Ok(nodes),
            (_, Stop::Else(_)) => Err(self.err("{{else}} after {{else}}")),
            (_, Stop::Eof) => Err(self.err("unexpected EOF: missing {{end}}")),
        }
    }

    fn pipe(&self, toks: &[Tok], at: String) -> Result<Pipe, Error> {
        let mut toks = toks;
        let mut vars = Vec::new();
        let mut assign = false;
        if let Some((names, n, is_assign)) = declaration(toks) {
            vars = names;
            assign = is_assign;
            toks = &toks[n..];
        }
        let mut cmds = Vec::new();
        for part in split_top(toks, &Tok::Pipe) {
            let part = strip_spaces(part.to_vec());
            if part.is_empty() {
                return Err(self.err(format!("missing command in {at}")));
            }
            cmds.push(self.command(&part, &at)?);
        }
        if cmds.is_empty() {
            return Err(self.err(format!("missing value for command in {at}")));
        }
        Ok(Pipe {
            vars,
            assign,
            cmds,
            at,
        })
    }

    fn command(&self, toks: &[Tok], at: &str) -> Result<Cmd, Error> {
        let args = split_top(toks, &Tok::Space)
            .into_iter()
            .filter(|a| !a.is_empty())
            .map(|a| self.operand(a, at))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Cmd { args })
    }

    fn operand(&self, toks: &[Tok], at: &str) -> Result<Operand, Error> {
        let (term, used) = match &toks[0] {
            Tok::Dot => (Term::Dot, 1),
            Tok::Field(_) => (Term::Dot, 0),
            Tok::Var(v) => (Term::Var(v.clone()), 1),
            Tok::LParen => {
                let close = matching_paren(toks)
                    .ok_or_else(|| self.err(format!("unclosed left paren in {at}")))?;
                let inner = self.pipe(&strip_spaces(toks[1..close].to_vec()), at.to_string())?;
                (Term::Pipe(Box::new(inner)), close + 1)
            }
            Tok::Ident(name) => (ident(name), 1),
            Tok::Str(s) => (Term::Lit(Value::String(s.clone())), 1),
            Tok::Char(c) => (Term::Lit(Value::from(*c as i64)), 1),
            Tok::Number(text) => (Term::Lit(self.number(text)?), 1),
            other => return Err(self.err(format!("unexpected {other:?} in {at}"))),
        };
        let mut fields = Vec::new();
        for tok in &toks[used..] {
            match tok {
                Tok::Field(f) => fields.push(f.clone()),
                other => return Err(self.err(format!("unexpected {other:?} in operand in {at}"))),
            }
        }
        if !fields.is_empty() && matches!(term, Term::Func(_) | Term::Lit(_) | Term::Nil) {
            return Err(self.err(format!("unexpected . after term in {at}")));
        }
        Ok(Operand { term, fields })
    }

    /// Go's constants: integer syntax is an `int`, anything with `.`, `e` or `p` a `float64`.
    fn number(&self, text: &str) -> Result<Value, Error> {
        let clean = text.replace('_', "");
        let (neg, digits) = match clean.strip_prefix('-') {
            Some(d) => (true, d.to_string()),
            None => (false, clean.trim_start_matches('+').to_string()),
        };
        let radix = [
            ("0x", 16),
            ("0X", 16),
            ("0o", 8),
            ("0O", 8),
            ("0b", 2),
            ("0B", 2),
        ]
        .iter()
        .find_map(|(p, r)| digits.strip_prefix(p).map(|d| (d.to_string(), *r)));
        let int = match &radix {
            Some((d, r)) => i64::from_str_radix(d, *r).ok(),
            None if digits.len() > 1
                && digits.starts_with('0')
                && !digits.contains(['.', 'e', 'E']) =>
            {
                i64::from_str_radix(&digits[1..], 8).ok()
            }
            None => digits.parse::<i64>().ok(),
        };
        if let Some(i) = int {
            return Ok(Value::from(if neg { -i } else { i }));
        }
        let f: f64 = clean
            .parse()
            .map_err(|_| self.err(format!("bad number syntax: {text:?}")))?;
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| self.err(format!("bad number: {text:?}")))
    }
}

fn ident(name: &str) -> Term {
    match name {
        "true" => Term::Lit(Value::Bool(true)),
        "false" => Term::Lit(Value::Bool(false)),
        "nil" => Term::Nil,
        other => Term::Func(other.to_string()),
    }
}

/// `$x :=`, `$x =`, `$i, $v :=` at the start: the names, tokens used, and whether `=`.
fn declaration(toks: &[Tok]) -> Option<(Vec<String>, usize, bool)> {
    let mut names = Vec::new();
    let mut i = 0;
    loop {
        match toks.get(i) {
            Some(Tok::Var(v)) => names.push(v.clone()),
            _ => return None,
        }
        i += 1;
        while toks.get(i) == Some(&Tok::Space) {
            i += 1;
        }
        match toks.get(i) {
            Some(Tok::Declare) => return Some((names, i + 1, false)),
            Some(Tok::Assign) => return Some((names, i + 1, true)),
            Some(Tok::Comma) if names.len() == 1 => {
                i += 1;
                while toks.get(i) == Some(&Tok::Space) {
                    i += 1;
                }
            }
            _ => return None,
        }
    }
}

fn strip_spaces(mut toks: Vec<Tok>) -> Vec<Tok> {
    while toks.last() == Some(&Tok::Space) {
        toks.pop();
    }
    let lead = toks.iter().take_while(|t| **t == Tok::Space).count();
    toks.drain(..lead);
    toks
}

/// Splits at `sep` outside parentheses.
fn split_top<'t>(toks: &'t [Tok], sep: &Tok) -> Vec<&'t [Tok]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::LParen => depth += 1,
            Tok::RParen => depth = depth.saturating_sub(1),
            t if t == sep && depth == 0 => {
                parts.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&toks[start..]);
    parts
}

fn matching_paren(toks: &[Tok]) -> Option<usize> {
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::LParen => depth += 1,
            Tok::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}
