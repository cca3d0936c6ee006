//! "Never panics": random and mutated Dockerfiles go through the whole front end —
//! syntax tree, typed instructions, expansion and the stage graph — and each stage
//! must either succeed or return an error, within a bounded time.
//!
//! Seeds are real Dockerfiles: BuildKit's conformance cases and rbuild's fixtures.
//! Mutations cut, repeat, splice and corrupt them at random, so the inputs sit close to
//! what people actually write, where the interesting edge cases are.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;

mod goldens;
mod pipeline;

/// Words that steer mutations toward syntax the parser must get right.
const TOKENS: &[&str] = &[
    "\\\n",
    "`\n",
    "\n",
    " ",
    "\t",
    "\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    "$",
    "${",
    "${A:-",
    "${A#",
    "${A/x/y}",
    "<<EOF\n",
    "<<-\"EOF\"\n",
    "EOF\n",
    "\tEOF\n",
    "3<<X\n",
    "# escape=`\n",
    "# syntax=x\n",
    "#",
    "=",
    "--",
    "--from=0",
    "--mount=type=cache,target=/c",
    "--mount=",
    "--chmod=u+x",
    "--chown=1:1",
    "--network=none",
    "--platform=$BUILDPLATFORM",
    " AS ",
    "FROM ",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "CMD ",
    "SHELL ",
    "WORKDIR ",
    "USER ",
    "EXPOSE ",
    "VOLUME ",
    "STOPSIGNAL ",
    "\0",
    "é",
    "\u{FEFF}",
    "\r\n",
];

/// A seed Dockerfile and where it came from.
struct Seed {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Seed {
    /// Seeds from BuildKit's negative cases and rbuild's error goldens are meant to fail.
    fn should_parse(&self) -> bool {
        !self
            .path
            .components()
            .any(|c| c.as_os_str() == "parser-negative" || c.as_os_str() == "parser-errors")
    }
}

fn seeds() -> &'static [Seed] {
    static SEEDS: OnceLock<Vec<Seed>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        collect_dockerfiles(&root.join("../shared/conformance"), &mut files);
        collect_dockerfiles(&root.join("fixtures"), &mut files);
        assert!(
            files.len() >= 40,
            "expected the conformance and fixture Dockerfiles as seeds, found {}",
            files.len()
        );
        files
            .into_iter()
            .map(|path| Seed {
                bytes: std::fs::read(&path).unwrap(),
                path,
            })
            .collect()
    })
}

fn collect_dockerfiles(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "Dockerfile") {
                out.push(p);
            }
        }
    }
    out.sort();
}

/// One edit of a seed; positions are fractions so they fit any seed length.
#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: f64, len: usize },
    Repeat { at: f64, len: usize, times: usize },
    Insert { at: f64, token: usize },
    Byte { at: f64, byte: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0.0..1.0f64;
    prop_oneof![
        (at.clone(), 1..40usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (at.clone(), 1..60usize, 1..50usize).prop_map(|(at, len, times)| Mutation::Repeat {
            at,
            len,
            times
        }),
        (at.clone(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Byte { at, byte }),
    ]
}

fn apply(src: &mut Vec<u8>, m: &Mutation) {
    let pos = |at: f64, len: usize| ((at * len as f64) as usize).min(len);
    match *m {
        Mutation::Delete { at, len } => {
            let start = pos(at, src.len());
            let end = (start + len).min(src.len());
            src.drain(start..end);
        }
        Mutation::Repeat { at, len, times } => {
            let start = pos(at, src.len());
            let end = (start + len).min(src.len());
            let piece = src[start..end].to_vec();
            for _ in 0..times {
                src.splice(end..end, piece.iter().copied());
            }
        }
        Mutation::Insert { at, token } => {
            let p = pos(at, src.len());
            src.splice(p..p, TOKENS[token].bytes());
        }
        Mutation::Byte { at, byte } => {
            let p = pos(at, src.len());
            if p < src.len() {
                src[p] = byte;
            }
        }
    }
}

/// Runs the pipeline and fails if it takes unreasonably long for the input size.
fn check(src: &[u8]) {
    let start = Instant::now();
    pipeline::run(src);
    let limit = Duration::from_secs(2) + Duration::from_micros(20 * src.len() as u64);
    assert!(
        start.elapsed() < limit,
        "front end took {:?} on {} bytes",
        start.elapsed(),
        src.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_real_dockerfiles_never_panic(
        seed in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let seeds = seeds();
        let mut src = seeds[seed.index(seeds.len())].bytes.clone();
        for m in &mutations {
            apply(&mut src, m);
        }
        check(&src);
    }

    #[test]
    fn token_soup_never_panics(tokens in prop::collection::vec(0..TOKENS.len(), 0..80)) {
        let src: String = tokens.iter().map(|&t| TOKENS[t]).collect();
        check(src.as_bytes());
    }
}

#[test]
fn every_seed_goes_through_the_whole_front_end() {
    // The seeds themselves are the base case: each must run without a panic, and the
    // valid ones (all but the negative and error cases) must parse.
    let mut parsed = 0;
    for seed in seeds() {
        check(&seed.bytes);
        if seed.should_parse() {
            if let Err(e) = rbuild_parser::syntax::parse(&seed.bytes, "Dockerfile") {
                panic!("{} does not parse: {e}", seed.path.display());
            }
            parsed += 1;
        }
    }
    assert!(parsed >= 40, "only {parsed} seeds were expected to parse");
}
