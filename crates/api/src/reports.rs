//! `GET /v1/reports/{name}`: auditors' reports (docs/reports.md).

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use writ_engine::reports::{Report, ReportName};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::handlers::query;
use crate::segment::Segment;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// The period or threshold in days (standing-access: held longer than; exceptions:
    /// expiring within; time-to-revoke, break-glass, requests-by-outcome: the last N
    /// days). Each report has its default.
    #[param(minimum = 1, maximum = 3650)]
    pub days: Option<i64>,
}

#[utoipa::path(get, path = "/v1/reports/{name}", params(("name" = String, Path,
        description = "standing-access, exceptions, failed-revocations, time-to-revoke, break-glass, orphans, requests-by-outcome, agent-access or controls"), ReportQuery),
    responses((status = 200, body = Report), (status = 403, description = "not_an_auditor"), (status = 404), (status = 422)))]
pub async fn report(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(name): Segment,
    params: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Report>, ApiError> {
    let params = query(params)?;
    let name = ReportName::parse(&name).ok_or_else(|| {
        writ_engine::EngineError::new(
            writ_engine::ErrorCode::NotFound,
            format!(
                "no report {name:?}; reports: {}",
                ReportName::ALL.map(ReportName::as_str).join(", ")
            ),
        )
    })?;
    Ok(Json(state.engine.report(&caller, name, params.days).await?))
}
