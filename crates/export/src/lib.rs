//! Ledger events in the formats other systems read. Pure functions of an event: the
//! ledger stays the record, these are views of it that keep writ's ids and hashes.

pub mod cloudevents;
pub mod ocsf;
