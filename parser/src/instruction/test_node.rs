//! Test-only builders of syntax-tree nodes, shaped the way BuildKit's parser shapes each
//! instruction's arguments, so the typing pass can be tested without the syntax parser.

use crate::error::Diagnostic;
use crate::syntax::{Args, Heredoc, KeyValue, Node, Span};

use super::{Instruction, from_node};

fn base(keyword: &str, flags: &[&str], rest: &str, args: Args, json: bool) -> Node {
    let mut original = keyword.to_uppercase();
    for f in flags {
        original.push(' ');
        original.push_str(f);
    }
    if !rest.is_empty() {
        original.push(' ');
        original.push_str(rest);
    }
    Node {
        keyword: keyword.to_lowercase(),
        span: Span {
            start: 0,
            end: original.len(),
        },
        original,
        flags: flags.iter().map(|s| s.to_string()).collect(),
        args,
        json,
        heredocs: Vec::new(),
        start_line: 1,
        end_line: 1,
        comments: Vec::new(),
    }
}

/// `KEYWORD flags words…` with whitespace-split words (FROM, COPY, EXPOSE, …) or the
/// single rest-of-line word of shell forms (`node("run", &[], &["echo hi"])`).
pub fn node(keyword: &str, flags: &[&str], words: &[&str]) -> Node {
    let args = Args::Words(words.iter().map(|s| s.to_string()).collect());
    base(keyword, flags, &words.join(" "), args, false)
}

/// The JSON (exec) form: `words` are the decoded array.
pub fn json_node(keyword: &str, flags: &[&str], words: &[&str]) -> Node {
    let rest = serde_json::to_string(words).unwrap_or_default();
    let args = Args::Words(words.iter().map(|s| s.to_string()).collect());
    base(keyword, flags, &rest, args, true)
}

/// ENV/LABEL pairs `(key, value, sep)`; sep is `"="` or `""` (legacy `ENV k v`).
pub fn pairs_node(keyword: &str, pairs: &[(&str, &str, &str)]) -> Node {
    let rest = pairs
        .iter()
        .map(|(k, v, sep)| {
            if sep.is_empty() {
                format!("{k} {v}")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let args = Args::Pairs(
        pairs
            .iter()
            .map(|(k, v, sep)| KeyValue {
                key: k.to_string(),
                value: v.to_string(),
                sep: sep.to_string(),
            })
            .collect(),
    );
    base(keyword, &[], &rest, args, false)
}

/// ONBUILD wrapping `trigger`.
pub fn onbuild_node(flags: &[&str], trigger: Node) -> Node {
    let rest = trigger.original.clone();
    base(
        "onbuild",
        flags,
        &rest,
        Args::Nested(Box::new(trigger)),
        false,
    )
}

/// Adds a heredoc body to a node.
pub fn with_heredoc(mut node: Node, name: &str, content: &str, expand: bool, chomp: bool) -> Node {
    node.heredocs.push(Heredoc {
        name: name.to_string(),
        content: content.to_string(),
        expand,
        chomp,
        file_descriptor: 0,
    });
    node
}

/// Types `node`, using its own text as the Dockerfile source.
pub fn parse(node: &Node) -> Result<Instruction, Diagnostic> {
    from_node(node, &node.original)
}

/// The message of the error typing `node` gives (panics if it succeeds).
pub fn error(node: &Node) -> String {
    match parse(node) {
        Ok(i) => panic!("{:?} should fail, got {i:?}", node.original),
        Err(d) => d.message,
    }
}
