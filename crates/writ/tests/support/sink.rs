//! A notify sink the tests run: an HTTP endpoint that keeps every CloudEvent writ
//! delivers to it.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

#[derive(Clone, Default)]
pub struct Sink {
    received: Arc<Mutex<Vec<Value>>>,
}

impl Sink {
    /// Starts one on a free port; its URL goes in a `[[notify]]` block.
    pub async fn start() -> (Self, String) {
        let sink = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/events", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .route("/events", axum::routing::post(receive))
            .with_state(sink.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (sink, url)
    }

    /// The CloudEvents received so far, in order.
    pub fn events(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The CloudEvent types received so far, in order.
    pub fn types(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|event| event["type"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

async fn receive(State(sink): State<Sink>, body: Bytes) -> StatusCode {
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    sink.received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(event);
    StatusCode::ACCEPTED
}
