//! Methods of the rendered value: Docker's formatting contexts are Go structs whose methods
//! take arguments (`{{.Label "k"}}`), so a caller gives them beside the JSON it renders.

use crate::value::{number, type_name, Num, Val};
use serde_json::Value;

/// A method's parameter type, checked as Go checks the arguments of a method call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    String,
    Int,
    Bool,
    /// Go's `interface{}`: any value, missing included (as JSON `null`).
    Any,
}

impl Param {
    fn go_name(self) -> &'static str {
        match self {
            Param::String => "string",
            Param::Int => "int",
            Param::Bool => "bool",
            Param::Any => "interface {}",
        }
    }

    /// Whether `v` fits, as Go's `validateType`; the error is Go's. A JSON `null` read from a
    /// map is Go's nil `interface {}`, a missing value Go's invalid one.
    pub(crate) fn check(self, v: &Val) -> Result<(), String> {
        let fits = match (self, v) {
            (Param::Any, _) => return Ok(()),
            (_, Val::Missing) => return Err(format!("invalid value; expected {}", self.go_name())),
            (_, Val::Some(v)) => match (self, &**v) {
                (Param::String, Value::String(_)) | (Param::Bool, Value::Bool(_)) => true,
                (Param::Int, n) => matches!(number(n), Some(Num::Int(_))),
                _ => false,
            },
        };
        if fits {
            return Ok(());
        }
        let got = match v.json() {
            None => "interface {}",
            json => type_name(json),
        };
        Err(format!(
            "wrong type for value; expected {}; got {got}",
            self.go_name()
        ))
    }

    /// Whether a literal written in the template fits; the error is Go's for a constant.
    pub(crate) fn check_literal(self, lit: &Value) -> Result<(), String> {
        match self.check(&Val::borrowed(lit)) {
            Ok(()) => Ok(()),
            Err(_) => Err(format!("expected {}; found {lit}", self.go_name())),
        }
    }
}

/// A method's body: its arguments, already checked against its parameters, to its value or
/// an error (Go's `error calling NAME: …`).
type Body<'m> = Box<dyn Fn(&[Value]) -> Result<Value, String> + 'm>;

pub(crate) struct Method<'m> {
    pub(crate) params: Vec<Param>,
    pub(crate) body: Body<'m>,
}

/// The methods of the value a template renders: they are called on that value only (`.` at
/// the top, `$`, or any variable holding it), as a Go method belongs to its receiver's type;
/// any other map's keys stay keys. Methods come before keys of the same name.
#[derive(Default)]
pub struct Methods<'m> {
    list: Vec<(String, Method<'m>)>,
}

impl<'m> Methods<'m> {
    /// No methods: the value is a plain map, as for [`Template::render`](crate::Template::render).
    pub fn new() -> Methods<'m> {
        Methods::default()
    }

    /// Adds the method `name(params…)`; `body` gets the arguments once they fit `params`.
    pub fn with(
        mut self,
        name: &str,
        params: &[Param],
        body: impl Fn(&[Value]) -> Result<Value, String> + 'm,
    ) -> Methods<'m> {
        self.list.retain(|(n, _)| n != name);
        let method = Method {
            params: params.to_vec(),
            body: Box::new(body),
        };
        self.list.push((name.to_string(), method));
        self
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Method<'m>> {
        self.list.iter().find(|(n, _)| n == name).map(|(_, m)| m)
    }
}

impl std::fmt::Debug for Methods<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|(n, m)| (n, &m.params)))
            .finish()
    }
}
