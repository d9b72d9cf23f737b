//! Reading the gateway's OpenAPI document the way a client generator would: find the
//! operation a request matches, the response documented for a status, and whether a body
//! fits that response's schema. Only the parts of JSON Schema the document uses are
//! understood; anything else fails loudly rather than passing.

#![allow(dead_code)]

use serde_json::Value;

pub struct Document(pub Value);

/// Where a request landed in the document.
pub enum Landing<'a> {
    /// `paths[path][method]`.
    Operation { path: String, operation: &'a Value },
    /// No operation matches: the document's `x-unrouted-responses` apply.
    Unrouted,
}

impl Document {
    /// The path templates of the document, each with its methods (upper case).
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut all = Vec::new();
        for (path, item) in self.0["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                all.push((path.clone(), method.to_ascii_uppercase()));
            }
        }
        all.sort();
        all
    }

    /// The template a concrete path matches, literal segments winning over `{param}` ones as
    /// OpenAPI requires (`/v1/orders/batch` before `/v1/orders/{order_id}`).
    pub fn template_of(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split('/').collect();
        self.0["paths"]
            .as_object()?
            .keys()
            .filter(|t| {
                let ts: Vec<&str> = t.split('/').collect();
                ts.len() == segments.len()
                    && ts
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
            })
            .max_by_key(|t| t.split('/').filter(|s| !s.starts_with('{')).count())
            .cloned()
    }

    pub fn landing(&self, method: &str, path: &str) -> Landing<'_> {
        let Some(template) = self.template_of(path) else {
            return Landing::Unrouted;
        };
        match self.0["paths"][&template].get(method.to_ascii_lowercase()) {
            Some(operation) => Landing::Operation {
                path: template,
                operation,
            },
            None => Landing::Unrouted,
        }
    }

    /// Checks one answer against the document: its status is documented where the request
    /// landed, its error code is one that response lists, and a JSON body fits the schema.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: Option<&Value>,
    ) -> Result<(), String> {
        let (where_, responses) = match self.landing(method, path) {
            Landing::Operation { path, operation } => {
                (format!("{method} {path}"), &operation["responses"])
            }
            Landing::Unrouted => (
                "x-unrouted-responses".to_owned(),
                &self.0["x-unrouted-responses"],
            ),
        };
        let response = responses
            .get(status.to_string())
            .ok_or_else(|| format!("{where_} does not document status {status}"))?;
        let Some(body) = body else {
            return Ok(());
        };
        if let Some(code) = body["error"]["code"].as_str() {
            let codes = self.error_codes(response);
            if !codes.iter().any(|c| c == code) {
                return Err(format!(
                    "{where_} documents {status} with codes {codes:?}, not {code}"
                ));
            }
        }
        let schema = &response["content"]["application/json"]["schema"];
        if schema.is_null() {
            return Err(format!(
                "{where_} {status}: a JSON body, but no JSON schema"
            ));
        }
        self.validate(schema, body, "$")
            .map_err(|e| format!("{where_} {status}: {e}"))
    }

    /// The codes an error response narrows `Error.error.code` to.
    pub fn error_codes(&self, response: &Value) -> Vec<String> {
        let parts = response["content"]["application/json"]["schema"]["allOf"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        parts
            .iter()
            .filter_map(|p| p["properties"]["error"]["properties"]["code"]["enum"].as_array())
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect()
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("unexpected $ref {r}"));
                let target = &self.0["components"]["schemas"][name];
                assert!(!target.is_null(), "dangling $ref {r}");
                self.resolve(target)
            }
            None => schema,
        }
    }

    /// `value` against `schema`: types, enums, properties, required, closed objects, items,
    /// allOf and oneOf.
    pub fn validate(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        let known = [
            "type",
            "properties",
            "required",
            "additionalProperties",
            "items",
            "enum",
            "allOf",
            "oneOf",
            "description",
            "format",
            "minimum",
            "maximum",
            "minItems",
            "maxItems",
            "pattern",
            "title",
            "default",
        ];
        for key in schema.as_object().expect("a schema is an object").keys() {
            assert!(
                known.contains(&key.as_str()),
                "{at}: unhandled keyword {key}"
            );
        }
        for part in schema["allOf"].as_array().into_iter().flatten() {
            self.validate(part, value, at)?;
        }
        if let Some(choices) = schema["oneOf"].as_array() {
            let fits = choices
                .iter()
                .filter(|c| self.validate(c, value, at).is_ok())
                .count();
            if fits != 1 {
                return Err(format!("{at}: {value} fits {fits} of oneOf {choices:?}"));
            }
        }
        if let Some(kinds) = types_of(schema) {
            let kind = type_of(value);
            let fits = kinds
                .iter()
                .any(|k| *k == kind || (*k == "number" && kind == "integer"));
            if !fits {
                return Err(format!("{at}: {value} is {kind}, not {kinds:?}"));
            }
        }
        if let Some(allowed) = schema["enum"].as_array() {
            if !allowed.contains(value) {
                return Err(format!("{at}: {value} not in {allowed:?}"));
            }
        }
        if let Some(object) = value.as_object() {
            let properties = schema["properties"].as_object();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().expect("required names are strings");
                if !object.contains_key(name) {
                    return Err(format!("{at}: required {name} missing in {value}"));
                }
            }
            for (name, field) in object {
                match properties.and_then(|p| p.get(name)) {
                    Some(s) => self.validate(s, field, &format!("{at}.{name}"))?,
                    None if schema["additionalProperties"] == Value::Bool(false) => {
                        return Err(format!("{at}: {name} is not a documented property"));
                    }
                    None => {}
                }
            }
        }
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().enumerate() {
                self.validate(items, item, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }
}

fn types_of(schema: &Value) -> Option<Vec<&str>> {
    match &schema["type"] {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(a) => Some(a.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
