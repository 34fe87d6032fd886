//! Go's `text/template` over `serde_json::Value`, with Docker's `--format` functions and its
//! `table` directive, as the `pelagos` CLI's `--format` options need them.
//!
//! Written by hand (lexer → parser → tree → evaluator): the one Go-template crate,
//! `gtmpl`, has its own value type whose maps are unordered (Go's `range` and printing sort map
//! keys), has no `<no value>` for missing keys, and has not been released since 2021.
//!
//! Docker's contexts are typed structs; here they are JSON objects, so a field is a map key:
//! a missing key prints `<no value>`, JSON integers are Go `int`s and other numbers
//! `float64`s, and `join` accepts an array of strings as Go's `[]string`. Their methods with
//! arguments (`{{.Label "k"}}`) are given beside the value ([`Methods`]).

mod exec;
mod funcs;
mod lex;
mod methods;
mod parse;
mod printf;
mod table;
mod value;

pub use methods::{Methods, Param};
pub use table::{tabwrite, tabwrite_min, Table};

use exec::Exec;
use parse::{Node, Parser};
use serde_json::Value;
use value::Val;

/// A template that failed to parse or to execute, with where and why.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("template: {line}: {msg}")]
    Parse { line: usize, msg: String },
    #[error("template: executing {at:?}: {msg}")]
    Exec { at: String, msg: String },
}

impl Error {
    pub(crate) fn parse(line: usize, msg: impl Into<String>) -> Error {
        Error::Parse {
            line,
            msg: msg.into(),
        }
    }
}

/// A parsed template.
#[derive(Debug)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    /// Parses Go template text.
    pub fn parse(text: &str) -> Result<Template, Error> {
        let nodes = Parser::parse(lex::lex(text)?)?;
        Ok(Template { nodes })
    }

    /// Parses a `--format` for a single object (`inspect`, `info`, `version`): the bare name
    /// `json` means `{{json .}}`, as in Docker.
    pub fn parse_format(format: &str) -> Result<Template, Error> {
        Template::parse(if format == "json" {
            "{{json .}}"
        } else {
            format
        })
    }

    /// Executes the template with `data` as `.` and `$`.
    pub fn render(&self, data: &Value) -> Result<String, Error> {
        self.render_with(data, &Methods::new())
    }

    /// Executes the template with `data` as `.` and `$`, and `methods` as the methods of
    /// `data` (`{{.Label "k"}}`).
    pub fn render_with(&self, data: &Value, methods: &Methods) -> Result<String, Error> {
        let (out, result) = self.execute(data, methods, false);
        result.map(|()| out)
    }

    /// Docker's header pass: Docker's functions return their first argument unchanged, and
    /// an error ends the header where it happened (Docker ignores it).
    fn render_header(&self, data: &Value) -> String {
        self.execute(data, &Methods::new(), true).0
    }

    /// The output, up to the error if one happened.
    fn execute(
        &self,
        data: &Value,
        methods: &Methods,
        header: bool,
    ) -> (String, Result<(), Error>) {
        let mut ex = Exec::new(data, methods, header);
        let result = ex.run(&self.nodes, &Val::borrowed(data)).map(drop);
        (ex.out, result)
    }
}

#[cfg(test)]
mod tests;
