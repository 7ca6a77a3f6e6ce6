//! Kubernetes label and field selectors (`?labelSelector=` and `?fieldSelector=`),
//! parsed once per request and matched against rendered JSON objects.
//!
//! Matching works on any object generically (labels under `metadata.labels`, fields
//! as dotted paths into the JSON) because the simulator renders every kind to JSON
//! anyway; a per-kind field table would only repeat what the JSON already says.

use serde_json::Value;

/// Why a selector could not be parsed (answered as `400 BadRequest`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub struct SelectorError(String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelOp {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

/// A label selector: every requirement must hold (comma means AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<(String, LabelOp)>,
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for term in split_top_level(s) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(term)?);
        }
        Ok(Self { reqs })
    }

    /// Whether the object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.reqs.iter().all(|(k, op)| match op {
            LabelOp::Eq(v) => get(k) == Some(v.as_str()),
            LabelOp::NotEq(v) => get(k) != Some(v.as_str()),
            LabelOp::In(vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelOp::NotIn(vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            LabelOp::Exists => get(k).is_some(),
            LabelOp::NotExists => get(k).is_none(),
            LabelOp::Gt(n) => get(k).and_then(|x| x.parse::<i64>().ok()).is_some_and(|x| x > *n),
            LabelOp::Lt(n) => get(k).and_then(|x| x.parse::<i64>().ok()).is_some_and(|x| x < *n),
        })
    }
}

/// Splits on commas outside parentheses (`a in (x,y),b` is two terms).
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, ch) in s.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_requirement(term: &str) -> Result<(String, LabelOp), SelectorError> {
    let bad = || SelectorError(term.to_string());
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        return if valid_key(key) {
            Ok((key.to_string(), LabelOp::NotExists))
        } else {
            Err(bad())
        };
    }
    let key_end = term
        .find(|c: char| c.is_whitespace() || "=!<>(".contains(c))
        .unwrap_or(term.len());
    let (key, rest) = term.split_at(key_end);
    if !valid_key(key) {
        return Err(bad());
    }
    let rest = rest.trim_start();
    let op = if rest.is_empty() {
        LabelOp::Exists
    } else if let Some(v) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
        LabelOp::Eq(value(v).ok_or_else(bad)?)
    } else if let Some(v) = rest.strip_prefix("!=") {
        LabelOp::NotEq(value(v).ok_or_else(bad)?)
    } else if let Some(v) = rest.strip_prefix('>') {
        LabelOp::Gt(v.trim().parse().map_err(|_| bad())?)
    } else if let Some(v) = rest.strip_prefix('<') {
        LabelOp::Lt(v.trim().parse().map_err(|_| bad())?)
    } else if let Some(v) = rest.strip_prefix("notin") {
        LabelOp::NotIn(set(v).ok_or_else(bad)?)
    } else if let Some(v) = rest.strip_prefix("in") {
        LabelOp::In(set(v).ok_or_else(bad)?)
    } else {
        return Err(bad());
    };
    Ok((key.to_string(), op))
}

/// Label keys: an optional DNS prefix and a name of letters, digits, `-_.`.
fn valid_key(k: &str) -> bool {
    let name = k.rsplit_once('/').map_or(k, |(_, n)| n);
    !name.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn value(v: &str) -> Option<String> {
    let v = v.trim();
    v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        .then(|| v.to_string())
}

/// `(a, b)` → `["a", "b"]`; the set must be parenthesised and non-empty.
fn set(v: &str) -> Option<Vec<String>> {
    let inner = v.trim().strip_prefix('(')?.strip_suffix(')')?;
    let vals: Option<Vec<String>> = inner.split(',').map(value).collect();
    vals.filter(|v| !v.is_empty() && v.iter().any(|s| !s.is_empty()))
}

/// A field selector: `path=value`, `path==value` or `path!=value`, comma means AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (path, eq, val) = if let Some((p, v)) = term.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = term.split_once("==") {
                (p, true, v)
            } else if let Some((p, v)) = term.split_once('=') {
                (p, true, v)
            } else {
                return Err(SelectorError(term.to_string()));
            };
            let path = path.trim();
            if path.is_empty() || path.split('.').any(str::is_empty) {
                return Err(SelectorError(term.to_string()));
            }
            reqs.push((path.to_string(), eq, val.trim().to_string()));
        }
        Ok(Self { reqs })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs
            .iter()
            .all(|(path, eq, want)| (field(obj, path) == *want) == *eq)
    }
}

/// A field's value as the API server formats it for selectors: strings verbatim,
/// booleans and numbers printed, absent fields as Go's zero value (`""`, or `false`
/// for `spec.unschedulable`, which the API server always compares as a bool).
pub fn field(obj: &Value, path: &str) -> String {
    let mut cur = Some(obj);
    for part in path.split('.') {
        cur = cur.and_then(|v| v.get(part));
    }
    match cur {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        None | Some(Value::Null) if path == "spec.unschedulable" => "false".into(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": { "name": "web-1", "namespace": "shop", "labels": { "app": "web", "tier": "front", "n": "5" } },
            "spec": { "nodeName": "aks-node-0" },
            "status": { "phase": "Running" },
        })
    }

    fn l(s: &str) -> bool {
        LabelSelector::parse(s).unwrap().matches(&pod())
    }

    fn f(s: &str) -> bool {
        FieldSelector::parse(s).unwrap().matches(&pod())
    }

    #[test]
    fn label_equality_and_inequality() {
        assert!(l(""));
        assert!(l("app=web"));
        assert!(l("app==web"));
        assert!(l("app = web"));
        assert!(!l("app=api"));
        assert!(l("app!=api"));
        assert!(!l("app!=web"));
        assert!(l("missing!=x"), "!= matches objects without the label");
        assert!(!l("missing="), "an empty value needs the label present and empty");
    }

    #[test]
    fn label_sets_and_existence() {
        assert!(l("app in (web,api)"));
        assert!(l("app in (api, web)"));
        assert!(!l("app in (api)"));
        assert!(l("app notin (api)"));
        assert!(!l("app notin (web)"));
        assert!(l("missing notin (web)"));
        assert!(l("tier"));
        assert!(!l("missing"));
        assert!(l("!missing"));
        assert!(!l("!app"));
        assert!(l("n>4"));
        assert!(!l("n<5"));
    }

    #[test]
    fn label_commas_are_and_outside_parentheses() {
        assert!(l("app in (web,api),tier=front,!missing"));
        assert!(!l("app in (web,api),tier=back"));
        assert!(l("app,tier"));
    }

    #[test]
    fn label_parse_errors() {
        for bad in [
            "app in web",
            "app in ()",
            "=web",
            "app=w b",
            "app ~ web",
            "app in (a",
            "!",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should not parse");
        }
        assert!(LabelSelector::parse("kubernetes.io/os=linux").is_ok());
        assert_eq!(LabelSelector::parse(" , ").unwrap(), LabelSelector::default());
    }

    #[test]
    fn fields_walk_json_paths() {
        assert!(f("metadata.name=web-1"));
        assert!(f("metadata.namespace==shop"));
        assert!(f("spec.nodeName=aks-node-0,status.phase!=Pending"));
        assert!(!f("status.phase=Pending"));
        assert!(f("spec.missing="), "absent fields compare as empty strings");
        assert!(!f("spec.nodeName="));
        let node = json!({ "metadata": { "name": "n" }, "spec": {} });
        let s = |x: &str| FieldSelector::parse(x).unwrap().matches(&node);
        assert!(s("spec.unschedulable=false"));
        assert!(!s("spec.unschedulable=true"));
        let cordoned = json!({ "spec": { "unschedulable": true } });
        assert!(
            FieldSelector::parse("spec.unschedulable=true")
                .unwrap()
                .matches(&cordoned)
        );
    }

    #[test]
    fn field_parse_errors() {
        assert!(FieldSelector::parse("metadata.name").is_err());
        assert!(FieldSelector::parse("=x").is_err());
        assert!(FieldSelector::parse("spec..x=1").is_err());
        assert_eq!(FieldSelector::parse("").unwrap(), FieldSelector::default());
    }
}
