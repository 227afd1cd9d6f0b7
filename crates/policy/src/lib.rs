//! writ's policy engine.
//!
//! Architecture invariant: this is the only crate that imports `cedar_policy`. Other
//! crates see [`PolicyEngine`], writ's [`Decision`] type and plain strings.

mod cedar_values;
mod decide;
mod entities;
mod explain;
mod lint;
mod load;
mod slice;

pub use decide::{ApproveFacts, DryRun, Evaluation, RequestFacts};
pub use explain::{Explanation, PolicyPart, PolicyVerdict};
pub use lint::{LintFinding, LintRule};
pub use load::{PolicyDiagnostic, PolicyEngine, PolicyLoadError, SCHEMA_TEXT};
pub use slice::SlicedPolicySet;
