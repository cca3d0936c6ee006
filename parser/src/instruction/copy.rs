//! `COPY` and `ADD`: sources (paths, URLs, or inline heredoc files) and a destination,
//! with the flags each accepts in BuildKit:
//!
//! | flag             | COPY | ADD |
//! |------------------|------|-----|
//! | `--from`         | yes  |     |
//! | `--chown`        | yes  | yes |
//! | `--chmod`        | yes  | yes |
//! | `--link`         | yes  | yes |
//! | `--exclude` (n×) | yes  | yes |
//! | `--parents`      | yes  |     |
//! | `--checksum`     |      | yes |
//! | `--keep-git-dir` |      | yes |
//! | `--unpack`       |      | yes |

use serde::Serialize;

use super::chmod::Chmod;
use super::deferred::{Deferred, may_expand};
use super::{Ctx, FlagSpec, Flags};
use crate::error::Diagnostic;

/// A source given inline as a heredoc (`COPY <<EOF /dst`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlineSource {
    /// The heredoc name, which is also the file name it gets.
    pub name: String,
    /// The body (leading tabs removed for `<<-`).
    pub content: String,
    /// True unless the delimiter was quoted: the body then goes through expansion
    /// (see [`super::Instruction::expand_heredocs`]).
    pub expand: bool,
}

/// `COPY [flags] <src>... <dest>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    /// Source paths (patterns), not counting heredoc sources.
    pub srcs: Vec<String>,
    /// Heredoc sources, in order.
    pub heredocs: Vec<InlineSource>,
    pub dest: String,
    /// `--from=<stage|image|index>`; variables are not allowed in it.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<Deferred<Chmod>>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

/// `ADD [flags] <src>... <dest>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Add {
    pub srcs: Vec<String>,
    pub heredocs: Vec<InlineSource>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<Deferred<Chmod>>,
    pub link: bool,
    pub exclude: Vec<String>,
    /// `--checksum=<digest>` of an HTTP or Git source.
    pub checksum: Option<String>,
    /// `--keep-git-dir`; `None` when not given.
    pub keep_git_dir: Option<bool>,
    /// `--unpack`; `None` when not given (archives from the context are unpacked,
    /// remote ones are not).
    pub unpack: Option<bool>,
}

const COPY_FLAGS: &[FlagSpec] = &[
    FlagSpec::string("chown"),
    FlagSpec::string("from"),
    FlagSpec::string("chmod"),
    FlagSpec::bool("link"),
    FlagSpec::strings("exclude"),
    FlagSpec::bool("parents"),
];

const ADD_FLAGS: &[FlagSpec] = &[
    FlagSpec::string("chown"),
    FlagSpec::string("chmod"),
    FlagSpec::bool("link"),
    FlagSpec::bool("keep-git-dir"),
    FlagSpec::string("checksum"),
    FlagSpec::bool("unpack"),
    FlagSpec::strings("exclude"),
];

/// What COPY and ADD share once their arguments are split.
struct Sources {
    srcs: Vec<String>,
    heredocs: Vec<InlineSource>,
    dest: String,
}

pub(super) fn parse_copy(cx: &Ctx<'_>) -> Result<Copy, Diagnostic> {
    check_count(cx, "COPY")?;
    let flags = cx.flags(COPY_FLAGS)?;
    let sources = sources(cx, "COPY")?;
    let from = non_empty(flags.string("from"));
    if let Some(from) = &from
        && changes_under_expansion(from)
    {
        return Err(cx
                .error_at_flag(
                    "--from",
                    "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
                )
                .with_help("ARG IMAGE=...\nFROM ${IMAGE} AS src\nCOPY --from=src ..."));
    }
    Ok(Copy {
        srcs: sources.srcs,
        heredocs: sources.heredocs,
        dest: sources.dest,
        from,
        chown: non_empty(flags.string("chown")),
        chmod: chmod(cx, &flags)?,
        link: flags.bool("link").unwrap_or(false),
        parents: flags.bool("parents").unwrap_or(false),
        exclude: flags.strings("exclude").to_vec(),
    })
}

pub(super) fn parse_add(cx: &Ctx<'_>) -> Result<Add, Diagnostic> {
    check_count(cx, "ADD")?;
    let flags = cx.flags(ADD_FLAGS)?;
    let sources = sources(cx, "ADD")?;
    let checksum = non_empty(flags.string("checksum"));
    if let Some(sum) = &checksum {
        // BuildKit checks this when the step runs, after expanding the checksum.
        if !may_expand(sum) && sources.srcs.len() != 1 {
            return Err(cx.error_at_flag(
                "--checksum",
                "checksum can't be specified for multiple sources",
            ));
        }
    }
    Ok(Add {
        srcs: sources.srcs,
        heredocs: sources.heredocs,
        dest: sources.dest,
        chown: non_empty(flags.string("chown")),
        chmod: chmod(cx, &flags)?,
        link: flags.bool("link").unwrap_or(false),
        exclude: flags.strings("exclude").to_vec(),
        checksum,
        keep_git_dir: flags.bool("keep-git-dir"),
        unpack: flags.bool("unpack"),
    })
}

fn check_count(cx: &Ctx<'_>, keyword: &str) -> Result<(), Diagnostic> {
    if cx.words().len() < 2 {
        return Err(cx
            .error(format!(
                "{keyword} requires at least two arguments, but only one was provided. Destination could not be determined"
            ))
            .with_help(format!("{keyword} [flags] <src>... <dest>")));
    }
    Ok(())
}

/// BuildKit treats `--chown=` and `--chmod=` (empty) as not given.
fn non_empty(value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(str::to_string)
}

fn chmod(cx: &Ctx<'_>, flags: &Flags) -> Result<Option<Deferred<Chmod>>, Diagnostic> {
    let Some(raw) = non_empty(flags.string("chmod")) else {
        return Ok(None);
    };
    Deferred::check(&raw, Chmod::parse).map(Some).map_err(|e| {
        cx.error_at_flag("--chmod", e.to_string())
            .with_help(e.help())
    })
}

/// BuildKit's `parseSourcesAndDest`: the last word is the destination (never a heredoc),
/// heredoc words among the rest become inline sources.
fn sources(cx: &Ctx<'_>, keyword: &str) -> Result<Sources, Diagnostic> {
    let (dest, srcs) = match cx.words().split_last() {
        Some(split) => split,
        None => return Err(cx.error(format!("{keyword} requires at least two arguments"))),
    };
    if heredoc_word(dest).is_some() {
        return Err(cx.error(format!(
            "{keyword} cannot accept a heredoc as a destination"
        )));
    }
    let mut paths = Vec::new();
    let mut heredocs = Vec::new();
    for src in srcs {
        match heredoc_word(src) {
            Some(word) => {
                let body = cx
                    .node
                    .heredocs
                    .iter()
                    .find(|h| h.name == word.name)
                    .map(|h| h.content.as_str())
                    .unwrap_or("");
                heredocs.push(InlineSource {
                    content: if word.chomp {
                        chomp(body)
                    } else {
                        body.to_string()
                    },
                    name: word.name,
                    expand: word.expand,
                });
            }
            None => paths.push(src.clone()),
        }
    }
    Ok(Sources {
        srcs: paths,
        heredocs,
        dest: dest.clone(),
    })
}

/// A word that introduces a heredoc: `[fd]<<[-]NAME`, NAME possibly quoted.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct HeredocWord {
    pub name: String,
    chomp: bool,
    expand: bool,
}

/// BuildKit's `ParseHeredoc` on one word: `^(\d*)<<(-?)\s*([^<]*)$`, where the rest must
/// be exactly one shell word once quotes are removed. A quoted name turns expansion off.
pub(super) fn heredoc_word(word: &str) -> Option<HeredocWord> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let (name, quoted) = unquote_one_word(rest)?;
    Some(HeredocWord {
        name,
        chomp,
        expand: !quoted,
    })
}

/// Removes shell quotes and backslash escapes from `text`, which must be a single word.
/// Returns the word and whether any quote character was removed.
fn unquote_one_word(text: &str) -> Option<(String, bool)> {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => out.push(c),
                    }
                }
            }
            '"' => {
                quoted = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => out.push(chars.next()?),
                        c => out.push(c),
                    }
                }
            }
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            c if c.is_whitespace() => return None,
            c => out.push(c),
        }
    }
    (!out.is_empty()).then_some((out, quoted))
}

/// Removes leading tabs from every line (BuildKit's `ChompHeredocContent`).
fn chomp(body: &str) -> String {
    body.split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}

/// Whether BuildKit's single-word expansion with no variables set would change `text`:
/// a variable reference, a quote or an escape. Used to refuse variables in `--from`.
fn changes_under_expansion(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| match b {
        b'\'' | b'"' | b'\\' => true,
        b'$' => bytes
            .get(i + 1)
            .is_some_and(|&n| n == b'{' || n == b'_' || n.is_ascii_alphanumeric()),
        _ => false,
    })
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
