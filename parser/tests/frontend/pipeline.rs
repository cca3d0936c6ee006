//! The whole front end, as the builder will drive it.

use std::collections::BTreeMap;

use rbuild_parser::instruction;
use rbuild_parser::shell::Lexer;
use rbuild_parser::stages::{self, PlanOptions};
use rbuild_parser::syntax;

/// Parses, types and expands `src`; every error is an acceptable outcome, a panic is not.
pub fn run(src: &[u8]) {
    let Ok(df) = syntax::parse(src, "Dockerfile") else {
        return;
    };
    let _ = syntax::dump(&df);
    let text = std::str::from_utf8(src).expect("the syntax parser accepted invalid UTF-8");
    let Ok(instructions) = instruction::from_dockerfile(&df, text) else {
        return;
    };
    let lexer = Lexer::new(df.escape);
    let env: BTreeMap<String, String> = [("A".to_string(), "x y".to_string())].into();
    for located in &instructions {
        let mut expand = |w: &str| lexer.expand_word(w, &env).map(|e| e.value);
        let _ = located.inner.expand(&mut expand);
        let _ = serde_json::to_string(&located.inner);
    }
    let opts = PlanOptions {
        build_args: [("A".to_string(), "1".to_string())].into(),
        ..PlanOptions::default()
    };
    if let Ok(plan) = stages::plan(&df, text, &opts) {
        let _ = serde_json::to_string(&plan);
    }
}
