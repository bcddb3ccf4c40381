//! Request parameters: queries and form bodies with every parameter at most once, and the
//! request's media type.

use axum::http::{HeaderMap, header};
use std::collections::HashMap;

const MAX_PARAM: usize = 4096;

/// Parses a query or form body into single-valued parameters. Repeated parameters are refused:
/// which copy wins is exactly the ambiguity redirect attacks use.
pub fn single_params(raw: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        if v.len() > MAX_PARAM {
            return Err(format!("Parameter {k} is too long"));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("Parameter {k} was sent more than once"));
        }
    }
    Ok(out)
}

/// The request's media type (`Content-Type` without its parameters), lower-cased; empty when
/// absent or unreadable.
pub fn media_type(headers: &HeaderMap) -> String {
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    ctype.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_given_twice_is_refused() {
        assert!(single_params("a=1&b=2").is_ok());
        assert_eq!(single_params("a=1&a=1").unwrap_err(), "Parameter a was sent more than once");
        let long = format!("a={}", "x".repeat(MAX_PARAM + 1));
        assert_eq!(single_params(&long).unwrap_err(), "Parameter a is too long");
    }
}
