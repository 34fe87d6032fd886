//! Docker's query-string conventions, parsed once at the edge: booleans (`1`, `true`,
//! `True`…), the `filters` JSON (`{"label":{"a=b":true}}` or the old `{"label":["a=b"]}`),
//! and JSON bodies whose errors are 400s with a clear message.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A query boolean as moby's `httputils.BoolValue`: empty, `0`, `no`, `false`, `none` are
/// false (any case); everything else is true.
pub fn bool_value(text: Option<&str>) -> bool {
    match text {
        None => false,
        Some(t) => !matches!(
            t.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "no" | "false" | "none"
        ),
    }
}

/// A query boolean that must be one (`strconv.ParseBool`), else 400 naming the parameter.
pub fn strict_bool(name: &str, text: Option<&str>) -> Result<Option<bool>, ApiError> {
    match text {
        None | Some("") => Ok(None),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(Some(true)),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid value for {name}: strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

/// The `filters` parameter as `key=value` arguments (the form the engine's filter parsers
/// take from the CLI's `--filter`).
pub fn filters(text: Option<&str>) -> Result<Vec<String>, ApiError> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let bad = |e: serde_json::Error| ApiError::bad_request(format!("invalid filter: {e}"));
    let value: serde_json::Value = serde_json::from_str(text).map_err(bad)?;
    let map = value
        .as_object()
        .ok_or_else(|| ApiError::bad_request("invalid filter: expected a JSON object"))?;
    let mut args = Vec::new();
    for (key, values) in map {
        match values {
            // {"label": {"a=b": true}}: the values are the keys set to true.
            serde_json::Value::Object(set) => {
                for (v, on) in set {
                    if on.as_bool() != Some(true) {
                        return Err(ApiError::bad_request(format!(
                            "invalid filter: the value of {key}.{v} must be true"
                        )));
                    }
                    args.push(format!("{key}={v}"));
                }
            }
            // The pre-1.22 form: {"label": ["a=b"]}.
            serde_json::Value::Array(list) => {
                for v in list {
                    let v = v.as_str().ok_or_else(|| {
                        ApiError::bad_request(format!("invalid filter: {key} takes strings"))
                    })?;
                    args.push(format!("{key}={v}"));
                }
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid filter: {key} must be an object or a list"
                )))
            }
        }
    }
    Ok(args)
}

/// Query parameters as a map (repeated names keep the last), for handlers that read a few.
pub type Params = BTreeMap<String, String>;

/// A JSON body; a malformed or mistyped body is a 400 naming the problem (never a silent
/// default), an empty body is `T::default()` only where the caller allows it with
/// [`JsonOrEmpty`].
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "request body is empty: JSON expected",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))
    }
}

/// A JSON body that may be absent (an empty body is `T::default()`), as moby accepts for
/// e.g. `POST /containers/{id}/start` or `/networks/create` fields.
pub struct JsonOrEmpty<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for JsonOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonOrEmpty(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(JsonOrEmpty)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_as_moby() {
        assert!(bool_value(Some("1")));
        assert!(bool_value(Some("True")));
        assert!(!bool_value(Some("0")));
        assert!(!bool_value(Some("")));
        assert!(!bool_value(None));
        assert_eq!(strict_bool("all", Some("1")).unwrap(), Some(true));
        assert_eq!(strict_bool("all", None).unwrap(), None);
        assert!(strict_bool("all", Some("yes")).is_err());
    }

    #[test]
    fn filters_both_forms() {
        let mut f = filters(Some(r#"{"label":{"a=b":true},"status":["running"]}"#)).unwrap();
        f.sort();
        assert_eq!(f, vec!["label=a=b", "status=running"]);
        assert!(filters(Some("")).unwrap().is_empty());
        assert!(filters(Some("{")).is_err());
        assert!(filters(Some(r#"{"label":{"a":false}}"#)).is_err());
        assert!(filters(Some(r#"{"label":3}"#)).is_err());
    }
}
