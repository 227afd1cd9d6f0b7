//! `writ report NAME`: a report as a table, CSV or JSON.

use reqwest::Method;
use serde_json::Value;

use super::Client;
use crate::{Failure, output};

/// A report's columns and rows as CSV (RFC 4180), a header line first.
fn csv(report: &Value) -> Result<String, Failure> {
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .into_iter()
            .flatten()
            .map(|cell| cell.as_str().unwrap_or_default().to_string())
            .collect()
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| Failure::failed(format!("cannot write CSV: {e}"));
    writer
        .write_record(strings(&report["columns"]))
        .map_err(failed)?;
    for row in report["rows"].as_array().into_iter().flatten() {
        writer.write_record(strings(row)).map_err(failed)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| Failure::failed(format!("cannot write CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Failure::failed(e.to_string()))
}

impl Client {
    pub async fn report(&self, name: &str, days: Option<i64>, as_csv: bool) -> Result<(), Failure> {
        let path = format!("/v1/reports/{}", Self::segment(name)?);
        let query: Vec<(&str, String)> =
            days.map(|d| ("days", d.to_string())).into_iter().collect();
        let report = self.call(Method::GET, &path, &query, None).await?;
        if as_csv {
            crate::stdout::write(&csv(&report)?);
        } else {
            self.print(&report, output::report);
        }
        Ok(())
    }
}
