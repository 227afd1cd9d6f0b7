//! Differential test: writ's sliced evaluation must give exactly the decision, the
//! determining policies and the erroring policies that Cedar's own conformance suite
//! expects, on the handwritten tests and on every case of the generated corpus.
//!
//! The suite is not part of writ's repository. Where it is absent these tests say so
//! and pass; `sliced_differential.rs` (generated sets, always run) still compares the
//! sliced evaluation with Cedar's over the whole set.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request, Schema,
};
use common::summary;
use serde::Deserialize;
use writ_policy::SlicedPolicySet;

/// The suite lives beside the repository, in `../shared/reference/` (never copied in);
/// `WRIT_CEDAR_SUITE` overrides (and must then exist). Searched upwards so any clone
/// location works. `None` when it is not there: the caller says so and skips.
fn suite_root() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WRIT_CEDAR_SUITE") {
        let path = PathBuf::from(path);
        assert!(
            path.is_dir(),
            "WRIT_CEDAR_SUITE={} is not a directory",
            path.display()
        );
        return Some(path);
    }
    let manifest_dir = manifest_dir();
    let found = manifest_dir
        .ancestors()
        .map(|dir| dir.join("shared/reference/cedar-integration-tests"))
        .find(|candidate| candidate.is_dir());
    // Written to stderr directly, not through the test harness's capture, so the line
    // shows in the output of a passing run: which differential test really ran.
    let line = match &found {
        Some(root) => format!(
            "cedar_conformance: Cedar's suite found at {}",
            root.display()
        ),
        None => format!(
            "cedar_conformance: Cedar's suite not found in shared/reference/ above {}: skipped \
             (set WRIT_CEDAR_SUITE to run it); sliced_differential still compares generated sets",
            manifest_dir.display()
        ),
    };
    let _ = writeln!(std::io::stderr(), "{line}");
    found
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestFile {
    policies: String,
    entities: String,
    schema: String,
    requests: Vec<TestRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestRequest {
    description: String,
    principal: serde_json::Value,
    action: serde_json::Value,
    resource: serde_json::Value,
    context: serde_json::Value,
    #[serde(default)]
    validate_request: bool,
    decision: String,
    reason: Vec<String>,
    errors: Vec<String>,
}

/// Reads the files a test names, from disk or from the corpus archive.
trait Files {
    fn read(&self, name: &str) -> Option<String>;
}

struct Dir(PathBuf);

impl Files for Dir {
    fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(name)).ok()
    }
}

impl Files for std::collections::HashMap<String, String> {
    fn read(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

#[derive(Default, Debug)]
struct Tally {
    requests: usize,
    skipped: usize,
    mismatches: Vec<String>,
}

fn run_test(name: &str, test: &TestFile, files: &dyn Files, tally: &mut Tally) {
    let Some(policy_text) = files.read(&test.policies) else {
        tally
            .mismatches
            .push(format!("{name}: cannot read {}", test.policies));
        return;
    };
    let Ok(policies) = PolicySet::from_str(&policy_text) else {
        tally.skipped += test.requests.len();
        return;
    };
    let schema = files
        .read(&test.schema)
        .and_then(|text| Schema::from_cedarschema_str(&text).ok().map(|(s, _)| s));
    let entities_json: serde_json::Value = files
        .read(&test.entities)
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(serde_json::Value::Null);
    let entities = Entities::from_json_value(entities_json.clone(), schema.as_ref())
        .ok()
        .or_else(|| Entities::from_json_value(entities_json, None).ok());
    let Some(entities) = entities else {
        tally.skipped += test.requests.len();
        return;
    };
    let sliced = SlicedPolicySet::new(policies.clone());
    let authorizer = Authorizer::new();
    for case in &test.requests {
        let uids = (
            EntityUid::from_json(case.principal.clone()),
            EntityUid::from_json(case.action.clone()),
            EntityUid::from_json(case.resource.clone()),
        );
        let (Ok(principal), Ok(action), Ok(resource)) = uids else {
            tally.skipped += 1;
            continue;
        };
        let request_schema = if case.validate_request {
            schema.as_ref()
        } else {
            None
        };
        let context =
            Context::from_json_value(case.context.clone(), request_schema.map(|s| (s, &action)));
        let Ok(context) = context else {
            tally.skipped += 1;
            continue;
        };
        let Ok(request) = Request::new(principal, action, resource, context, request_schema) else {
            tally.skipped += 1;
            continue;
        };
        tally.requests += 1;
        let expected_decision = if case.decision.eq_ignore_ascii_case("allow") {
            Decision::Allow
        } else {
            Decision::Deny
        };
        let expected = (
            expected_decision,
            case.reason.iter().cloned().collect(),
            case.errors.iter().cloned().collect(),
        );
        let raw = summary(&authorizer.is_authorized(&request, &policies, &entities));
        let writ = summary(&sliced.is_authorized(&request, &entities));
        if raw != expected {
            // The harness itself disagrees with the suite: report, since then the comparison means nothing.
            tally.mismatches.push(format!(
                "{name} / {}: raw Cedar {raw:?} != expected {expected:?}",
                case.description
            ));
        } else if writ != expected {
            tally.mismatches.push(format!(
                "{name} / {}: writ {writ:?} != expected {expected:?}",
                case.description
            ));
        }
    }
}

#[test]
fn sliced_evaluation_matches_the_handwritten_suite() {
    let Some(root) = suite_root() else {
        return;
    };
    let mut tally = Tally::default();
    for folder in ["decimal", "example_use_cases", "ip", "multi"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join("tests").join(folder))
            .expect("the Cedar suite is in ../shared/reference")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let test: TestFile =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("readable"))
                    .expect("test JSON");
            run_test(
                &path.display().to_string(),
                &test,
                &Dir(root.clone()),
                &mut tally,
            );
        }
    }
    assert!(tally.mismatches.is_empty(), "{:#?}", tally.mismatches);
    assert!(
        tally.requests >= 50,
        "only {} requests ran: {tally:?}",
        tally.requests
    );
}

#[test]
fn sliced_evaluation_matches_the_generated_corpus() {
    let Some(root) = suite_root() else {
        return;
    };
    let archive = std::fs::File::open(root.join("corpus-tests.tar.gz")).expect("corpus archive");
    let mut files = std::collections::HashMap::new();
    let mut reader = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for entry in reader.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let name = entry
            .path()
            .expect("path")
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut text = String::new();
        if entry.read_to_string(&mut text).is_ok() && !text.is_empty() {
            files.insert(name, text);
        }
    }
    let mut tests: Vec<&String> = files
        .keys()
        .filter(|n| n.ends_with(".json") && !n.ends_with(".entities.json"))
        .collect();
    tests.sort();
    let mut tally = Tally::default();
    for name in &tests {
        let test: TestFile = serde_json::from_str(&files[*name]).expect("test JSON");
        run_test(name, &test, &files, &mut tally);
    }
    eprintln!(
        "corpus: {} tests, {} requests compared, {} skipped",
        tests.len(),
        tally.requests,
        tally.skipped
    );
    assert!(
        tally.mismatches.is_empty(),
        "{} mismatches, first: {:#?}",
        tally.mismatches.len(),
        &tally.mismatches[..tally.mismatches.len().min(10)]
    );
    assert!(tests.len() > 7000, "corpus has only {} tests", tests.len());
    assert!(
        tally.requests > 10 * tally.skipped,
        "too many skipped: {tally:?}"
    );
}

/// Read at run time, not baked in at build time: a build shared between two checkouts
/// (one target directory) must read the files of the checkout under test.
fn manifest_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
}
