//! `writ break-glass` and `writ activations`: emergency access and its review.

use reqwest::Method;
use serde_json::json;

use super::Client;
use crate::{Failure, output};

impl Client {
    pub async fn break_glass(
        &self,
        profile: &str,
        justification: String,
        duration: Option<String>,
        on_behalf_of: Option<String>,
    ) -> Result<(), Failure> {
        let duration_seconds = super::duration_option(duration)?;
        let body = json!({ "justification": justification, "duration_seconds": duration_seconds, "on_behalf_of": on_behalf_of });
        let activated = self
            .call(
                Method::POST,
                &format!("/v1/break-glass/{}", Self::segment(profile)?),
                &[],
                Some(body),
            )
            .await?;
        self.print(&activated, output::activated);
        Ok(())
    }

    pub async fn list_activations(
        &self,
        state: Option<String>,
        inbox: bool,
        limit: u32,
    ) -> Result<(), Failure> {
        let mut query = Vec::new();
        if inbox {
            query.push(("reviewable_by_me", "true".to_string()));
        }
        query.extend(state.map(|s| ("review_state", s)));
        let list = self
            .pages("/v1/break-glass/activations", query, "activations", limit)
            .await?;
        self.print(&list, output::activation_list);
        Ok(())
    }

    pub async fn show_activation(&self, id: &str) -> Result<(), Failure> {
        let path = format!("/v1/break-glass/activations/{}", Self::segment(id)?);
        let activation = self.call(Method::GET, &path, &[], None).await?;
        self.print(&activation, output::activation);
        Ok(())
    }

    pub async fn sign_off_activation(&self, id: &str, comment: String) -> Result<(), Failure> {
        let path = format!(
            "/v1/break-glass/activations/{}/sign-off",
            Self::segment(id)?
        );
        let activation = self
            .call(
                Method::POST,
                &path,
                &[],
                Some(json!({ "comment": comment })),
            )
            .await?;
        self.print(&activation, output::activation);
        Ok(())
    }
}
