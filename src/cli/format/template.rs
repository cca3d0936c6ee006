//! Go templates for `--format` and `inspect -f`, run by the `gtmpl` crate over JSON
//! values, with the functions docker's CLI adds (docker/cli `templates/templates.go`).
//!
//! Data is a `serde_json::Value`: objects become gtmpl objects, on which a missing field
//! is an error as in docker (typed structs, or `missingkey=error` for raw JSON); integers
//! stay integers so `{{.Size}}` prints `4261296`, not `4.261296e+06`.
//!
//! Values are printed as Go's `fmt` prints them, not as gtmpl would (`[String("a")]`):
//! gtmpl prints an action's value itself, so each printing action is given one more
//! stage, ` | __goprint`, before it is parsed ([`go_printing`]). A list prints `[a b]`, an
//! object `map[k:v]` with sorted keys, and JSON `null` `[]`, as docker's nil slices
//! (`Cmd`, `Entrypoint`, `Env`) print.
//!
//! Differences from Go that gtmpl imposes: `{{json .}}` writes object keys sorted (gtmpl
//! objects are hash maps, so a struct's declaration order cannot survive — it is also
//! what Go does for maps and what docker's `--format json` gives for list commands); a
//! struct prints in map form (`map[Type:layers]`, where Go says `{layers}`); `range`
//! over a map is not in key order.

use std::collections::{BTreeMap, HashMap};

use gtmpl::{Context, Func, FuncError, Template as Gtmpl};
use gtmpl_value::{Number, Value};
use serde_json::Value as Json;

/// A template that did not parse or did not run; the message reads like docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template parsing error: {0}")]
pub struct TemplateError(String);

/// A parsed template, to render many items (table rows) without re-parsing.
pub struct Template {
    inner: Gtmpl,
}

impl Template {
    /// Parses `text` with docker's functions.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        Template::parse_with(text, FUNCS)
    }

    /// Parses `text` with docker's header functions: those that would transform a cell
    /// return their argument as it is, so that a table's header row shows column titles.
    pub(super) fn parse_header(text: &str) -> Result<Template, TemplateError> {
        Template::parse_with(text, HEADER_FUNCS)
    }

    fn parse_with(text: &str, funcs: &[(&str, Func)]) -> Result<Template, TemplateError> {
        let mut inner = Gtmpl::default();
        inner.add_funcs(funcs);
        inner.add_func(GO_PRINT, go_print);
        inner
            .parse(go_printing(text))
            .map_err(|e| TemplateError(parse_message(e)))?;
        Ok(Template { inner })
    }

    /// Renders the template over `value`.
    pub fn render(&self, value: &Json) -> Result<String, TemplateError> {
        self.render_value(to_gtmpl(value))
    }

    pub(super) fn render_value(&self, value: Value) -> Result<String, TemplateError> {
        self.inner
            .render(&Context::from(value))
            .map_err(|e| TemplateError(exec_message(e)))
    }
}

/// Parses and renders `template` over `value` once (the commands parse once and render
/// each item with [`Template::render`]).
#[cfg(test)]
pub fn render(template: &str, value: &Json) -> Result<String, TemplateError> {
    Template::parse(template)?.render(value)
}

/// gtmpl's parse errors carry a line number that is often wrong (one past the line on a
/// one-line template); it is left out rather than shown wrong.
fn parse_message(e: gtmpl::error::ParseError) -> String {
    match e {
        gtmpl::error::ParseError::WithContext(_, msg) => {
            let msg = match msg
                .strip_prefix("function ")
                .and_then(|m| m.strip_suffix(" not defined"))
            {
                Some(name) => format!("function \"{name}\" not defined"),
                None => msg,
            };
            format!("template: {msg}")
        }
        e => format!("template: {e}"),
    }
}

fn exec_message(e: gtmpl::error::ExecError) -> String {
    match e {
        // gtmpl would print the whole receiver; Go's raw-JSON message names the key.
        gtmpl::error::ExecError::NoFiledFor(field, _) => {
            format!("map has no entry for key \"{field}\"")
        }
        e => e.to_string(),
    }
}

/// The function every printing action ends in.
const GO_PRINT: &str = "__goprint";

/// Go text/template's keywords: actions that start with one print nothing themselves.
const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

/// `text` with ` | __goprint` added to each action that prints its value: not a
/// comment, not a keyword's, not a variable's declaration or assignment. Strings, raw
/// strings, characters and parentheses inside actions are skipped over; anything the
/// scan does not understand is left as it is, for the parser to judge.
fn go_printing(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open + 2]);
        rest = &rest[open + 2..];
        let Some(close) = action_end(rest) else {
            break;
        };
        let body = &rest[..close];
        // A right trim marker (" -") stays last.
        let (inner, trim) = match body.strip_suffix(" -") {
            Some(b) => (b, " -"),
            None => (body, ""),
        };
        if prints(inner) {
            out.push_str(inner.trim_end());
            out.push_str(" | ");
            out.push_str(GO_PRINT);
            out.push_str(trim);
        } else {
            out.push_str(body);
        }
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

/// Where the action starting at `s` (just after its `{{`) ends: the index of its `}}`.
fn action_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if s.trim_start_matches("- ").trim_start().starts_with("/*") {
        let end = s.find("*/")?;
        return s[end..].find("}}").map(|i| end + i);
    }
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => i += s[i + 1..].find('`')? + 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether the action whose text (between the delimiters, right trim marker removed)
/// is `inner` prints a value.
fn prints(inner: &str) -> bool {
    let body = inner.strip_prefix("- ").unwrap_or(inner).trim();
    if body.is_empty() || body.starts_with("/*") {
        return false;
    }
    let word: String = body
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if KEYWORDS.contains(&word.as_str()) {
        return false;
    }
    // `$x := …`, `$x = …`: a declaration or assignment prints nothing.
    if let Some(var) = body.strip_prefix('$') {
        let after = var.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
        let after = after.trim_start();
        if after.starts_with(":=") || (after.starts_with('=') && !after.starts_with("==")) {
            return false;
        }
    }
    true
}

/// `__goprint`: the value as Go's `fmt.Sprint` shows it.
fn go_print(args: &[Value]) -> Result<Value, FuncError> {
    arity(GO_PRINT, args, 1)?;
    Ok(match &args[0] {
        Value::String(s) => Value::String(s.clone()),
        v => Value::String(go_format(v)),
    })
}

fn go_format(v: &Value) -> String {
    match v {
        Value::NoValue => "<no value>".into(),
        Value::Nil => "[]".into(),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(go_format).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(m) | Value::Map(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            let items: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_format(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

/// JSON to gtmpl. `null` becomes `Nil` (so `{{if .Parent}}` is false and `json` gives
/// `null` back).
pub(super) fn to_gtmpl(value: &Json) -> Value {
    match value {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (None, Some(i), _) => Value::from(i),
            (None, None, f) => Value::from(f.unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(to_gtmpl).collect()),
        Json::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), to_gtmpl(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// gtmpl to JSON, for `json`. Object keys come out sorted.
fn to_json(value: &Value) -> Json {
    match value {
        Value::NoValue | Value::Nil | Value::Function(_) => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => number_to_json(n),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Object(o) | Value::Map(o) => {
            // Sorted here, not by serde_json's Map: with its `preserve_order` feature on
            // anywhere in the build, the hash map's random order would leak out.
            let sorted: BTreeMap<&String, &Value> = o.iter().collect();
            Json::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), to_json(v)))
                    .collect(),
            )
        }
    }
}

fn number_to_json(n: &Number) -> Json {
    if let Some(u) = n.as_u64() {
        Json::from(u)
    } else if let Some(i) = n.as_i64() {
        Json::from(i)
    } else {
        n.as_f64().map_or(Json::Null, Json::from)
    }
}

/// docker's `basicFunctions`; gtmpl's builtins (`index`, `len`, `println`, `printf`, `eq`,
/// …) stay, with `index` replaced to give Go's zero value for a missing map key.
const FUNCS: &[(&str, Func)] = &[
    ("json", json),
    ("split", split),
    ("join", join),
    ("title", title),
    ("lower", lower),
    ("upper", upper),
    ("pad", pad),
    ("truncate", truncate),
    ("index", index),
];

/// docker's `HeaderFunctions`: `pad` is kept so headers line up with padded cells.
const HEADER_FUNCS: &[(&str, Func)] = &[
    ("json", first_arg),
    ("split", first_arg),
    ("join", first_arg),
    ("title", first_arg),
    ("lower", first_arg),
    ("upper", first_arg),
    ("truncate", first_arg),
    ("pad", pad),
    ("index", index),
];

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(FuncError::ExactlyXArgs(name.into(), n))
    }
}

fn str_arg<'a>(name: &str, v: &'a Value) -> Result<&'a str, FuncError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(FuncError::Generic(format!(
            "error calling {name}: wrong type for value; expected string; got {}",
            type_name(other)
        ))),
    }
}

fn int_arg(name: &str, v: &Value) -> Result<i64, FuncError> {
    match v {
        Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or_default()),
        other => Err(FuncError::Generic(format!(
            "error calling {name}: wrong type for value; expected int; got {}",
            type_name(other)
        ))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::NoValue | Value::Nil => "nil",
        Value::Bool(_) => "bool",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Array(_) => "slice",
        Value::Object(_) | Value::Map(_) => "map",
        Value::Function(_) => "func",
    }
}

/// Compact JSON, no HTML escaping (docker sets `SetEscapeHTML(false)`).
fn json(args: &[Value]) -> Result<Value, FuncError> {
    arity("json", args, 1)?;
    Ok(Value::String(to_json(&args[0]).to_string()))
}

/// `strings.Split`: an empty separator splits into characters.
fn split(args: &[Value]) -> Result<Value, FuncError> {
    arity("split", args, 2)?;
    let (s, sep) = (str_arg("split", &args[0])?, str_arg("split", &args[1])?);
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep).map(|p| Value::String(p.to_string())).collect()
    };
    Ok(Value::Array(parts))
}

/// docker's `joinElements`: a list joined in order, a map's values sorted, nil empty.
fn join(args: &[Value]) -> Result<Value, FuncError> {
    arity("join", args, 2)?;
    let sep = str_arg("join", &args[1])?;
    let items: Vec<String> = match &args[0] {
        Value::NoValue | Value::Nil => Vec::new(),
        Value::Array(a) => a.iter().map(Value::to_string).collect(),
        Value::Object(m) | Value::Map(m) => {
            let mut v: Vec<String> = m.values().map(Value::to_string).collect();
            v.sort();
            v
        }
        other => {
            return Err(FuncError::Generic(format!(
                "error calling join: expected slice, got {}",
                type_name(other)
            )));
        }
    };
    Ok(Value::String(items.join(sep)))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    arity("lower", args, 1)?;
    Ok(Value::String(str_arg("lower", &args[0])?.to_lowercase()))
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    arity("upper", args, 1)?;
    Ok(Value::String(str_arg("upper", &args[0])?.to_uppercase()))
}

/// Go's deprecated `strings.Title`: the first letter of each word upper-cased, a word
/// starting after anything but a letter, digit or `_`.
fn title(args: &[Value]) -> Result<Value, FuncError> {
    arity("title", args, 1)?;
    let mut out = String::new();
    let mut after_separator = true;
    for c in str_arg("title", &args[0])?.chars() {
        if after_separator {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        after_separator = !(c.is_alphanumeric() || c == '_');
    }
    Ok(Value::String(out))
}

/// `pad s before after`: spaces around a non-empty string.
fn pad(args: &[Value]) -> Result<Value, FuncError> {
    arity("pad", args, 3)?;
    let s = str_arg("pad", &args[0])?;
    if s.is_empty() {
        return Ok(Value::String(String::new()));
    }
    let n = |v| int_arg("pad", v).map(|n| " ".repeat(n.max(0) as usize));
    Ok(Value::String(format!(
        "{}{s}{}",
        n(&args[1])?,
        n(&args[2])?
    )))
}

/// `truncate s n`: the first `n` bytes (backed off to a character boundary).
fn truncate(args: &[Value]) -> Result<Value, FuncError> {
    arity("truncate", args, 2)?;
    let s = str_arg("truncate", &args[0])?;
    let mut n = int_arg("truncate", &args[1])?.max(0) as usize;
    if s.len() <= n {
        return Ok(Value::String(s.to_string()));
    }
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    Ok(Value::String(s[..n].to_string()))
}

/// Go's `index`: a missing map key gives the zero value (empty, as for docker's
/// `map[string]string` labels) rather than an error; a list index out of range is one.
fn index(args: &[Value]) -> Result<Value, FuncError> {
    if args.len() < 2 {
        return Err(FuncError::AtLeastXArgs("index".into(), 2));
    }
    let mut current = args[0].clone();
    for key in &args[1..] {
        current = match (&current, key) {
            (Value::Object(m) | Value::Map(m), Value::String(k)) => {
                m.get(k).cloned().unwrap_or(Value::String(String::new()))
            }
            (Value::Array(a), Value::Number(n)) => {
                let i = n.as_u64().and_then(|i| usize::try_from(i).ok());
                match i.and_then(|i| a.get(i)) {
                    Some(v) => v.clone(),
                    None => {
                        return Err(FuncError::Generic(format!(
                            "error calling index: index out of range: {n}"
                        )));
                    }
                }
            }
            (Value::Nil | Value::NoValue, _) => {
                return Err(FuncError::Generic(
                    "error calling index: index of untyped nil".into(),
                ));
            }
            (c, k) => {
                return Err(FuncError::Generic(format!(
                    "error calling index: cannot index {} with {}",
                    type_name(c),
                    type_name(k)
                )));
            }
        };
    }
    Ok(current)
}

fn first_arg(args: &[Value]) -> Result<Value, FuncError> {
    Ok(args.first().cloned().unwrap_or(Value::NoValue))
}

#[cfg(test)]
mod tests;
