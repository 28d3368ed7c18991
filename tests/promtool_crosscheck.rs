//! plumb's rule-file validator against the real `promtool check rules`
//! (Debian's `prometheus` package, installed by `scripts/dev.sh test`), file
//! by file: every rule file of the shared corpus plus broken (and a few
//! valid edge-case) variants derived from them here.
//!
//! Debian bookworm ships Prometheus 2.42; plumb targets Prometheus 3.x
//! (promql-parser follows the 3.x grammar). Where the two versions differ,
//! the difference is listed in `KNOWN_DIFFERENCES` with the reason, and
//! the test checks that exactly those cases disagree — in the listed
//! direction. Any other disagreement fails the test, and every disagreement
//! is printed (every case with `PLUMB_CROSSCHECK_VERBOSE=1`).

// Test code: a failed setup step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod variants;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use plumb::render::alerts::{RuleOptions, check_rule_file};
use plumb::yaml::Limits;

/// Cases where promtool 2.42 and plumb legitimately disagree: (variant,
/// promtool accepts, plumb accepts, why). Most are features newer than
/// Prometheus 2.42; the rest are deliberate or dialect differences.
const KNOWN_DIFFERENCES: &[(&str, bool, bool, &str)] = &[
    (
        "group-query-offset",
        false,
        true,
        "group query_offset arrived in Prometheus 2.53; 2.42 rejects the unknown field",
    ),
    (
        "group-labels",
        false,
        true,
        "group labels arrived in Prometheus 3.0; 2.42 rejects the unknown field",
    ),
    (
        "expr-histogram-avg",
        false,
        true,
        "histogram_avg() arrived after 2.42 (in the 2.5x series), with native histograms",
    ),
    (
        "expr-utf8-metric-name",
        false,
        true,
        "quoted UTF-8 metric names ({\"a.b\"}) arrived in Prometheus 3.0",
    ),
    (
        "expr-duration-as-number",
        false,
        true,
        "a duration as a number literal (100d) is valid PromQL since Prometheus 3.x",
    ),
    (
        "expr-holt-winters",
        true,
        false,
        "holt_winters() was renamed double_exponential_smoothing() (and made experimental) in Prometheus 3.0",
    ),
    (
        "expr-regex-quoted-literal",
        true,
        false,
        "Go's RE2 accepts \\Q…\\E quoting in a regex matcher, Rust's regex (inside promql-parser) does not: plumb rejects it (safe side; write the characters escaped instead)",
    ),
    (
        "two-documents",
        true,
        false,
        "plumb is stricter on purpose: Prometheus silently ignores every YAML document after the first",
    ),
];

fn promtool() -> PathBuf {
    let path = std::env::var_os("PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/promtool"));
    assert!(
        path.exists(),
        "promtool not found at {}: install Debian's `prometheus` package (scripts/dev.sh test does), or set PROMTOOL",
        path.display()
    );
    path
}

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/alerts");
    assert!(
        dir.is_dir(),
        "the rule corpus is missing at {}",
        dir.display()
    );
    dir
}

/// (name, text) of every corpus rule file, sorted.
fn corpus_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// promtool's verdict and output on one file.
fn promtool_check(tool: &Path, dir: &Path, name: &str, text: &str) -> (bool, String) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = Command::new(tool)
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_string())
}

fn plumb_check(name: &str, text: &str) -> (bool, String) {
    match check_rule_file(name, text, RuleOptions::default(), &Limits::default()) {
        Ok(_) => (true, "valid".into()),
        Err(errs) => {
            let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
            (false, lines.join("\n"))
        }
    }
}

/// Outcomes of the comparison.
#[derive(Default)]
struct Tally {
    agreed: usize,
    explained: Vec<String>,
    unexplained: Vec<String>,
}

type Known = BTreeMap<&'static str, (bool, bool, &'static str)>;

impl Tally {
    fn record(&mut self, name: &str, tool: (bool, String), plumb: (bool, String), known: &Known) {
        let report = format!(
            "{name}: promtool {} / plumb {}\n  promtool: {}\n  plumb:    {}",
            verdict(tool.0),
            verdict(plumb.0),
            tool.1.replace('\n', "\n            "),
            plumb.1.replace('\n', "\n            ")
        );
        if std::env::var_os("PLUMB_CROSSCHECK_VERBOSE").is_some() {
            println!("{report}");
        }
        match known.get(name.trim_end_matches(".yml")) {
            Some((p, q, why)) if (*p, *q) == (tool.0, plumb.0) => {
                self.explained.push(format!("{report}\n  why: {why}"));
            }
            Some((p, q, _)) => self.unexplained.push(format!(
                "{report}\n  expected promtool {} / plumb {} (listed in KNOWN_DIFFERENCES)",
                verdict(*p),
                verdict(*q)
            )),
            None if tool.0 == plumb.0 => self.agreed += 1,
            None => self.unexplained.push(report),
        }
    }
}

#[test]
fn plumb_and_promtool_agree_on_every_corpus_file_and_variant() {
    let tool = promtool();
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus_files();
    assert!(
        corpus.len() >= 50,
        "expected the rule corpus, found {} files",
        corpus.len()
    );
    let variants = variants::derive(&corpus);
    let broken = variants.iter().filter(|v| !v.valid).count();
    assert!(broken >= 40, "only {broken} broken variants");
    let mut cases: Vec<(String, String)> = corpus.clone();
    cases.extend(
        variants
            .iter()
            .map(|v| (format!("{}.yml", v.name), v.text.clone())),
    );
    let known: Known = KNOWN_DIFFERENCES
        .iter()
        .map(|(n, p, q, why)| (*n, (*p, *q, *why)))
        .collect();
    let mut tally = Tally::default();
    for (name, text) in &cases {
        let tool_says = promtool_check(&tool, dir.path(), name, text);
        tally.record(name, tool_says, plumb_check(name, text), &known);
    }
    // Each variant must also come out as designed (a broken one broken).
    for v in &variants {
        let (ok, out) = plumb_check(&v.name, &v.text);
        let expected = v.valid || known.get(v.name.as_str()).is_some_and(|k| k.1);
        if ok != expected {
            let (ok, expected) = (verdict(ok), verdict(expected));
            tally.unexplained.push(format!(
                "{}: plumb {ok}, meant to {expected}: {out}",
                v.name
            ));
        }
    }
    println!(
        "{} vs plumb: {} files ({} corpus, {} variants of which {broken} broken): {} agree, {} differ as documented:",
        promtool_version(&tool),
        cases.len(),
        corpus.len(),
        variants.len(),
        tally.agreed,
        tally.explained.len()
    );
    for e in &tally.explained {
        println!("{e}");
    }
    assert_eq!(
        tally.explained.len(),
        known.len(),
        "a documented difference no longer shows: update KNOWN_DIFFERENCES"
    );
    assert!(
        tally.unexplained.is_empty(),
        "{} unexplained disagreement(s):\n{}",
        tally.unexplained.len(),
        tally.unexplained.join("\n")
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok { "accepts" } else { "rejects" }
}

fn promtool_version(tool: &Path) -> String {
    let out = Command::new(tool).arg("--version").output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    text.lines().next().unwrap_or("").to_string()
}

#[test]
fn every_corpus_file_is_valid_for_plumb() {
    for (name, text) in corpus_files() {
        let (ok, out) = plumb_check(&name, &text);
        assert!(ok, "{name}: {out}");
    }
}
