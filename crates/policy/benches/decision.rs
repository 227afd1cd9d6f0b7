//! Decision latency: writ's whole decision (entity slice + context + sliced Cedar +
//! combiner) against raw `Authorizer::is_authorized` over the same policy set, in the
//! same run, for 10 to 10k policies and 10k identities.
//!
//! cargo bench -p writ-policy --bench decision
//! Prints one table; each figure is the median over WRIT_BENCH_RUNS runs (default 5).
//! WRIT_BENCH_POLICIES (e.g. "10,1000") measures only those policy-set sizes.

use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Instant;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityUid, PolicySet, Request, RestrictedExpression,
};
use writ_config::Config;
use writ_domain::Timestamp;
use writ_policy::{PolicyEngine, RequestFacts};

const IDENTITIES: usize = 10_000;
const ENTITLEMENTS: usize = 200;
const GROUPS: usize = 500;
const SAMPLES: usize = 20_000;
const WARMUP: usize = 2_000;
/// Raw Cedar at 10k policies takes milliseconds per call; cap its total work per run.
const RAW_POLICY_EVALUATIONS_PER_RUN: usize = 4_000_000;

/// A small deterministic generator (xorshift), so every run sees the same workload.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % (u32::MAX as u64)).unwrap_or(0)
    }
}

fn config_text() -> String {
    let mut text = String::from("[[target]]\nname = \"pg\"\nkind = \"noop\"\n");
    for e in 0..ENTITLEMENTS {
        let sensitivity = ["low", "medium", "high", "critical"][e % 4];
        let _ = write!(
            text,
            "\n[[entitlement]]\nid = \"pg/e{e}\"\ntarget = \"pg\"\nrole = \"r{e}\"\nsensitivity = \"{sensitivity}\"\nmax_duration = \"8h\"\nowners = \"g{}\"\n",
            e % GROUPS
        );
    }
    let mut rng = Rng(42);
    for u in 0..IDENTITIES {
        let groups: Vec<String> = (0..3)
            .map(|_| format!("\"g{}\"", rng.next() % GROUPS))
            .collect();
        let _ = write!(
            text,
            "\n[[user]]\nname = \"u{u}\"\ngroups = [{}]\nmanager = \"u{}\"\n",
            groups.join(", "),
            (u + 1) % IDENTITIES
        );
    }
    text
}

/// Policies in the shapes writ users write: per-group grants on one entitlement,
/// sensitivity rules for everyone, a few forbids, approver rules. The per-group grants
/// are spread evenly over (group, entitlement) pairs (137 is coprime with 200, so the
/// 20 policies of a group at 10k policies name 20 different entitlements).
fn policies(count: usize) -> String {
    let mut text = String::new();
    let fixed = [
        "@id(\"no-critical-for-agents\") @reason(\"agents\") forbid (principal, action == Action::\"request\", resource) when { context.subject_kind == \"agent\" && resource.sensitivity == \"critical\" };",
        "@id(\"ticket-for-high\") forbid (principal, action == Action::\"request\", resource) when { resource.sensitivity == \"high\" && !context.has_ticket };",
        "@id(\"owners-approve\") permit (principal, action == Action::\"approve\", resource) when { resource.entitlement has owners && principal in resource.entitlement.owners };",
        "@id(\"manager-approves\") permit (principal, action == Action::\"approve\", resource) when { resource.subject has manager && principal == resource.subject.manager };",
    ];
    for policy in fixed.iter().take(count) {
        text.push_str(policy);
        text.push('\n');
    }
    for i in fixed.len()..count {
        let _ = writeln!(
            text,
            "@id(\"p{i}\") @approvals(\"{}\") @max_duration(\"{}h\") permit (principal in Group::\"g{}\", action == Action::\"request\", resource == Entitlement::\"pg/e{}\") when {{ context.duration_seconds <= {} }};",
            i % 3,
            1 + i % 8,
            i % GROUPS,
            (13 * (i % GROUPS) + 137 * (i / GROUPS)) % ENTITLEMENTS,
            3600 * (1 + i % 8)
        );
    }
    text
}

fn percentile(sorted: &[u128], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct Run {
    writ_p50: f64,
    writ_p99: f64,
    raw_p50: f64,
    raw_p99: f64,
}

fn uid(text: &str) -> EntityUid {
    EntityUid::from_str(text).expect("uid")
}

fn measure(engine: &PolicyEngine, whole: &PolicySet, config: &Config, seed: u64) -> Run {
    let now = Timestamp::from_unix_micros(1_795_000_000_000_000);
    let mut rng = Rng(seed);
    let cases: Vec<(String, String)> = (0..SAMPLES)
        .map(|_| {
            (
                format!("u{}", rng.next() % IDENTITIES),
                format!("pg/e{}", rng.next() % ENTITLEMENTS),
            )
        })
        .collect();
    let authorizer = Authorizer::new();

    // Warm caches and the allocator before measuring.
    for (user, entitlement) in cases.iter().take(WARMUP) {
        let facts = RequestFacts {
            requester: user,
            subject: user,
            entitlement,
            duration_seconds: 3600,
            justification: "bench",
            ticket: None,
            on_behalf_of: None,
            actors: &[],
            holds: &[],
            on_behalf_of_holds: &[],
            effective: None,
            now,
        };
        std::hint::black_box(engine.decide_request(&facts));
    }
    let mut writ_ns = Vec::with_capacity(SAMPLES);
    for (user, entitlement) in &cases {
        let facts = RequestFacts {
            requester: user,
            subject: user,
            entitlement,
            duration_seconds: 3600,
            justification: "bench",
            ticket: None,
            on_behalf_of: None,
            actors: &[],
            holds: &[],
            on_behalf_of_holds: &[],
            effective: None,
            now,
        };
        let started = Instant::now();
        let decision = engine.decide_request(&facts);
        writ_ns.push(started.elapsed().as_nanos());
        std::hint::black_box(decision);
    }

    // Raw Cedar gets the same entities writ would build, prepared outside the timing,
    // and the whole policy set.
    let raw_samples =
        (RAW_POLICY_EVALUATIONS_PER_RUN / whole.policies().count().max(1)).clamp(200, SAMPLES);
    let mut raw_ns = Vec::with_capacity(raw_samples);
    for (user, entitlement) in cases.iter().take(raw_samples) {
        let identity = config.identity(user).expect("user");
        let parents = identity
            .groups
            .iter()
            .map(|g| uid(&format!("Group::\"{g}\"")))
            .collect();
        let principal = Entity::new_no_attrs(uid(&format!("User::\"{user}\"")), parents);
        let subject = Entity::new_no_attrs(
            uid(&format!("Subject::\"{user}\"")),
            [principal.uid()].into_iter().collect(),
        );
        let resource = Entity::new_no_attrs(
            uid(&format!("Entitlement::\"{entitlement}\"")),
            [uid("Target::\"pg\"")].into_iter().collect(),
        );
        let entities =
            Entities::from_entities([principal.clone(), subject, resource.clone()], None)
                .expect("entities");
        let context = Context::from_pairs([
            (
                "now".to_string(),
                RestrictedExpression::new_datetime(now.to_cedar_datetime()),
            ),
            (
                "subject".to_string(),
                RestrictedExpression::new_entity_uid(uid(&format!("Subject::\"{user}\""))),
            ),
            (
                "subject_kind".to_string(),
                RestrictedExpression::new_string("user".into()),
            ),
            (
                "duration_seconds".to_string(),
                RestrictedExpression::new_long(3600),
            ),
            (
                "justification".to_string(),
                RestrictedExpression::new_string("bench".into()),
            ),
            (
                "has_ticket".to_string(),
                RestrictedExpression::new_bool(false),
            ),
            ("holds".to_string(), RestrictedExpression::new_set([])),
            (
                "ticket_system".to_string(),
                RestrictedExpression::new_string(String::new()),
            ),
            (
                "ticket_key".to_string(),
                RestrictedExpression::new_string(String::new()),
            ),
        ])
        .expect("context");
        let request = Request::new(
            principal.uid(),
            uid("Action::\"request\""),
            resource.uid(),
            context,
            None,
        )
        .expect("request");
        let started = Instant::now();
        let response = authorizer.is_authorized(&request, whole, &entities);
        raw_ns.push(started.elapsed().as_nanos());
        std::hint::black_box(response);
    }
    writ_ns.sort_unstable();
    raw_ns.sort_unstable();
    Run {
        writ_p50: percentile(&writ_ns, 0.5),
        writ_p99: percentile(&writ_ns, 0.99),
        raw_p50: percentile(&raw_ns, 0.5),
        raw_p99: percentile(&raw_ns, 0.99),
    }
}

fn main() {
    let runs: usize = std::env::var("WRIT_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::from_toml(&dir.path().join("writ.toml"), &config_text()).expect("config");
    println!(
        "decision latency, {IDENTITIES} identities, {ENTITLEMENTS} entitlements, {SAMPLES} writ decisions per run \
         (raw Cedar: at most {RAW_POLICY_EVALUATIONS_PER_RUN} policy evaluations per run), median of {runs} runs (µs)"
    );
    println!(
        "| policies | writ p50 | writ p99 | raw Cedar p50 | raw Cedar p99 | speed-up at p99 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let counts: Vec<usize> = std::env::var("WRIT_BENCH_POLICIES")
        .ok()
        .map(|list| {
            list.split(',')
                .map(|n| n.trim().parse().expect("WRIT_BENCH_POLICIES: numbers"))
                .collect()
        })
        .unwrap_or_else(|| vec![10, 100, 1_000, 10_000]);
    for count in counts {
        let policy_dir = dir.path().join(format!("p{count}"));
        std::fs::create_dir_all(&policy_dir).expect("mkdir");
        std::fs::write(policy_dir.join("bench.cedar"), policies(count)).expect("write");
        let engine = PolicyEngine::load(&policy_dir, &config).expect("policies load");
        let whole = PolicySet::from_str(&policies(count)).expect("parse");
        let results: Vec<Run> = (0..runs)
            .map(|run| measure(&engine, &whole, &config, 7 + run as u64))
            .collect();
        let pick = |f: fn(&Run) -> f64| median(results.iter().map(f).collect());
        let (wp50, wp99, rp50, rp99) = (
            pick(|r| r.writ_p50),
            pick(|r| r.writ_p99),
            pick(|r| r.raw_p50),
            pick(|r| r.raw_p99),
        );
        println!(
            "| {count} | {wp50:.1} | {wp99:.1} | {rp50:.1} | {rp99:.1} | {:.1}× |",
            rp99 / wp99
        );
    }
}
