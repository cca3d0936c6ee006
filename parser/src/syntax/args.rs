//! BuildKit's dispatch table: how each instruction's arguments are split.
//!
//! | rule                 | instructions                          |
//! |----------------------|---------------------------------------|
//! | whitespace-delimited | FROM, EXPOSE                          |
//! | maybe-JSON           | RUN, CMD, ENTRYPOINT, SHELL           |
//! | maybe-JSON-to-list   | ADD, COPY, VOLUME                     |
//! | name/value pairs     | ENV, LABEL (legacy `ENV key value`)   |
//! | name or name=value   | ARG                                   |
//! | one string           | MAINTAINER, STOPSIGNAL, USER, WORKDIR |
//! | type + maybe-JSON    | HEALTHCHECK                           |
//! | sub-instruction      | ONBUILD                               |
//!
//! Unknown keywords keep their whitespace-separated words so that the typing pass can
//! reject them with a location and a "did you mean"; BuildKit drops those words,
//! which [`super::dump`] mirrors when printing.

use super::flags::{self, is_separator};
use super::json::{JsonArgs, parse_json_array};
use super::node::{Args, KeyValue, Node, Span};
use super::words::split_words;

/// ONBUILD inside ONBUILD inside … deeper than this is refused: BuildKit rejects any
/// chained ONBUILD later anyway, and a bound keeps every walk over the tree shallow.
pub(super) const MAX_ONBUILD_NESTING: usize = 32;

/// Why an instruction's arguments were rejected. Messages are BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ArgsError {
    #[error("{0} must have two arguments")]
    NeedsTwoArguments(&'static str),
    #[error("Syntax error - can't find = in {0}. Must be of the form: name=value")]
    MissingEquals(String),
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    #[error("ONBUILD nested more than {MAX_ONBUILD_NESTING} deep")]
    OnbuildTooDeep,
}

/// The argument rule of an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Whitespace,
    MaybeJson,
    MaybeJsonToList,
    Env,
    Label,
    NameOrNameValue,
    String,
    Healthcheck,
    SubCommand,
}

fn rule_for(keyword: &str) -> Option<Rule> {
    Some(match keyword {
        "from" | "expose" => Rule::Whitespace,
        "run" | "cmd" | "entrypoint" | "shell" => Rule::MaybeJson,
        "add" | "copy" | "volume" => Rule::MaybeJsonToList,
        "env" => Rule::Env,
        "label" => Rule::Label,
        "arg" => Rule::NameOrNameValue,
        "maintainer" | "stopsignal" | "user" | "workdir" => Rule::String,
        "healthcheck" => Rule::Healthcheck,
        "onbuild" => Rule::SubCommand,
        _ => return None,
    })
}

/// True for the instructions BuildKit knows (its dispatch table).
pub(super) fn is_known(keyword: &str) -> bool {
    rule_for(keyword).is_some()
}

/// Lower-cases a keyword the way Go's `strings.ToLower` does (one character to one
/// character, so `İ` becomes `i`).
pub(super) fn lower_keyword(keyword: &str) -> String {
    keyword
        .chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

/// Turns a logical line into a node (BuildKit's `newNodeFromLine`). Lines, span and
/// comments are left for the caller to fill in.
///
/// ONBUILD's trigger is itself a line; chains are unrolled with a loop rather than
/// recursion and bounded by [`MAX_ONBUILD_NESTING`].
pub(super) fn node_from_line(line: &str, escape: char) -> Result<Node, ArgsError> {
    // Outer ONBUILD nodes waiting for their trigger, outermost first.
    let mut pending: Vec<Node> = Vec::new();
    let mut current = line;
    loop {
        let cmd = flags::split_command(current, escape);
        let keyword = lower_keyword(cmd.keyword);
        let mut node = empty_node(keyword, current, cmd.flags);
        if rule_for(&node.keyword) == Some(Rule::SubCommand) && !cmd.rest.is_empty() {
            if pending.len() >= MAX_ONBUILD_NESTING {
                return Err(ArgsError::OnbuildTooDeep);
            }
            pending.push(node);
            current = cmd.rest;
            continue;
        }
        let (args, json) = split_args(&node.keyword, cmd.rest, escape)?;
        node.args = args;
        node.json = json;
        let mut inner = node;
        while let Some(mut outer) = pending.pop() {
            outer.args = Args::Nested(Box::new(inner));
            inner = outer;
        }
        return Ok(inner);
    }
}

fn empty_node(keyword: String, original: &str, flags: Vec<String>) -> Node {
    Node {
        keyword,
        original: original.to_string(),
        flags,
        args: Args::Words(Vec::new()),
        json: false,
        heredocs: Vec::new(),
        start_line: 0,
        end_line: 0,
        span: Span::default(),
        comments: Vec::new(),
    }
}

/// Splits the arguments of a non-ONBUILD instruction; the flag says "JSON form".
fn split_args(keyword: &str, rest: &str, escape: char) -> Result<(Args, bool), ArgsError> {
    let words = |w: Vec<String>| (Args::Words(w), false);
    let Some(rule) = rule_for(keyword) else {
        return Ok(words(whitespace_words(rest)));
    };
    Ok(match rule {
        Rule::Whitespace => words(whitespace_words(rest)),
        Rule::MaybeJson => maybe_json(rest)?,
        Rule::MaybeJsonToList => match parse_json_array(rest) {
            JsonArgs::Strings(w) => (Args::Words(w), true),
            JsonArgs::NotStrings => return Err(ArgsError::NotStringArray),
            JsonArgs::NotJson => words(whitespace_words(rest)),
        },
        Rule::Env => (Args::Pairs(name_values(rest, "ENV", escape)?), false),
        Rule::Label => (Args::Pairs(name_values(rest, "LABEL", escape)?), false),
        Rule::NameOrNameValue => words(split_words(rest, escape)),
        Rule::String => words(one_string(rest)),
        Rule::Healthcheck => healthcheck(rest)?,
        // ONBUILD with nothing after it: no trigger.
        Rule::SubCommand => words(Vec::new()),
    })
}

/// FROM/EXPOSE (and the shell form of ADD/COPY/VOLUME): split on blanks.
fn whitespace_words(rest: &str) -> Vec<String> {
    rest.split(is_separator)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn one_string(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        Vec::new()
    } else {
        vec![rest.to_string()]
    }
}

/// RUN/CMD/ENTRYPOINT/SHELL: a JSON array, or the whole rest as one shell-form word.
fn maybe_json(rest: &str) -> Result<(Args, bool), ArgsError> {
    if rest.is_empty() {
        return Ok((Args::Words(Vec::new()), false));
    }
    match parse_json_array(rest) {
        JsonArgs::Strings(w) => Ok((Args::Words(w), true)),
        JsonArgs::NotStrings => Err(ArgsError::NotStringArray),
        JsonArgs::NotJson => Ok((Args::Words(vec![rest.to_string()]), false)),
    }
}

/// HEALTHCHECK: a type word (`CMD`, `NONE`, …) then maybe-JSON.
fn healthcheck(rest: &str) -> Result<(Args, bool), ArgsError> {
    let type_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if type_end == 0 {
        return Ok((Args::Words(Vec::new()), false));
    }
    let (kind, tail) = rest.split_at(type_end);
    let (cmd, json) = maybe_json(tail.trim_start())?;
    let mut words = vec![kind.to_string()];
    if let Args::Words(w) = cmd {
        words.extend(w);
    }
    Ok((Args::Words(words), json))
}

/// ENV/LABEL: `k=v k2=v2`, or the legacy `k v` (everything after the key is the value).
fn name_values(rest: &str, key: &'static str, escape: char) -> Result<Vec<KeyValue>, ArgsError> {
    let words = split_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let mut parts = rest.splitn(2, is_separator);
        let name = parts.next().unwrap_or("");
        let value = parts
            .next()
            .map(|v| v.trim_start_matches(is_separator))
            .ok_or(ArgsError::NeedsTwoArguments(key))?;
        return Ok(vec![KeyValue {
            key: name.to_string(),
            value: value.to_string(),
            sep: String::new(),
        }]);
    }
    words
        .iter()
        .map(|word| {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| ArgsError::MissingEquals(super::dump::go_quote(word)))?;
            Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
                sep: "=".to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(line: &str) -> Node {
        node_from_line(line, '\\').unwrap()
    }

    fn words(line: &str) -> Vec<String> {
        node(line).words().to_vec()
    }

    #[test]
    fn rules_per_instruction() {
        assert_eq!(words("FROM  a\tAS b"), ["a", "AS", "b"]);
        assert_eq!(words("RUN echo  a"), ["echo  a"]);
        assert_eq!(words("COPY a  b"), ["a", "b"]);
        assert_eq!(words("COPY [\"a b\", \"c\"]"), ["a b", "c"]);
        assert!(node("COPY [\"a b\", \"c\"]").json);
        assert_eq!(words("USER  a b "), ["a b"]);
        assert_eq!(words("ARG a=\"b c\" d"), ["a=\"b c\"", "d"]);
        assert_eq!(words("HEALTHCHECK CMD [\"x\"]"), ["CMD", "x"]);
        assert!(node("HEALTHCHECK CMD [\"x\"]").json);
        assert_eq!(words("HEALTHCHECK NONE"), ["NONE"]);
        assert_eq!(words("HEALTHCHECK"), Vec::<String>::new());
        assert_eq!(words("FROBNICATE a  b"), ["a", "b"]);
        assert_eq!(node("Run x").keyword, "run");
    }

    #[test]
    fn env_pairs_and_legacy_form() {
        let pairs = |line| match node(line).args {
            Args::Pairs(p) => p
                .into_iter()
                .map(|kv| (kv.key, kv.value, kv.sep))
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        let kv = |k: &str, v: &str, s: &str| (k.to_string(), v.to_string(), s.to_string());
        assert_eq!(pairs("ENV a  b c"), [kv("a", "b c", "")]);
        assert_eq!(
            pairs("ENV a=b c=\"d e\""),
            [kv("a", "b", "="), kv("c", "\"d e\"", "=")]
        );
        assert_eq!(pairs("LABEL a=b=c"), [kv("a", "b=c", "=")]);
        assert_eq!(pairs("ENV"), []);
        assert_eq!(
            node_from_line("ENV PATH", '\\').unwrap_err().to_string(),
            "ENV must have two arguments"
        );
        assert_eq!(
            node_from_line("LABEL a=b c", '\\').unwrap_err().to_string(),
            "Syntax error - can't find = in \"c\". Must be of the form: name=value"
        );
    }

    #[test]
    fn json_errors_and_fallbacks() {
        assert_eq!(
            node_from_line("CMD [ \"echo\", [ \"nested json\" ] ]", '\\')
                .unwrap_err()
                .to_string(),
            "when using JSON array syntax, arrays must be comprised of strings only"
        );
        assert_eq!(words("CMD ['a']"), ["['a']"]);
        assert!(!node("CMD ['a']").json);
    }

    #[test]
    fn onbuild_nests_iteratively_and_is_bounded() {
        let n = node("ONBUILD --x ONBUILD RUN --mount=a [\"b\"]");
        assert_eq!(n.flags, ["--x"]);
        let Args::Nested(inner) = &n.args else {
            panic!()
        };
        let Args::Nested(run) = &inner.args else {
            panic!()
        };
        assert_eq!(run.keyword, "run");
        assert_eq!(run.flags, ["--mount=a"]);
        assert_eq!(run.original, "RUN --mount=a [\"b\"]");
        assert!(run.json);
        assert_eq!(node("ONBUILD").args, Args::Words(vec![]));
        let deep = "ONBUILD ".repeat(10_000) + "RUN x";
        assert_eq!(
            node_from_line(&deep, '\\').unwrap_err(),
            ArgsError::OnbuildTooDeep
        );
    }
}
