//! What the engine's benchmarks share: their knobs, medians, and a policy folder.

use std::path::Path;

/// A numeric setting from the environment, or its default.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `dir/policies` with one policy that permits every request (the benchmarks measure
/// revocation and reconciliation, not decisions).
pub fn write_permissive_policies(dir: &Path) {
    std::fs::create_dir_all(dir.join("policies")).expect("policies");
    std::fs::write(
        dir.join("policies/p.cedar"),
        "permit (principal, action == Action::\"request\", resource);\n",
    )
    .expect("policy");
}
