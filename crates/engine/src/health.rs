//! Liveness of writ's long-lived tasks, and their supervisor.
//!
//! Revocation happens in a background task: if it died quietly, leases would stop
//! expiring while the API still answered. So every long-lived task runs under
//! [`supervise`]: a panic is caught, logged and counted, and the task restarted with
//! backoff; one that keeps dying ends the process (non-zero), so an orchestrator
//! notices and restarts writ whole. Each task also ticks [`Health`] every time round
//! its loop, and `/healthz` answers 503 naming any task that is not running or has
//! not ticked within its deadline (stuck, not dead).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
// Tokio's clock: the real one in production, and one tests can pause and advance.
use tokio::time::Instant;

use crate::metrics_names;

/// The first pause before restarting a task that panicked; doubled each time.
const RESTART_BACKOFF_MIN: Duration = Duration::from_secs(1);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A task that panics this many times within `PANIC_WINDOW` is given up on.
pub const PANICS_MAX: usize = 5;
const PANIC_WINDOW: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
struct TaskState {
    running: bool,
    last_tick: Instant,
    /// How long the task may go without ticking before it counts as stuck.
    deadline: Option<Duration>,
    panics: u64,
}

/// What each supervised task last reported.
#[derive(Debug, Default)]
pub struct Health {
    tasks: Mutex<BTreeMap<&'static str, TaskState>>,
    /// Since when, and why, the database cannot be used (the scheduler's last look).
    database_down: Mutex<Option<(Instant, String)>>,
}

impl Health {
    fn with_task<T>(&self, name: &'static str, change: impl FnOnce(&mut TaskState) -> T) -> T {
        let mut tasks = self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let state = tasks.entry(name).or_insert_with(|| TaskState {
            running: false,
            last_tick: Instant::now(),
            deadline: None,
            panics: 0,
        });
        change(state)
    }

    /// A task says it is alive and making progress.
    pub fn tick(&self, name: &'static str) {
        self.with_task(name, |state| state.last_tick = Instant::now());
    }

    fn set_running(&self, name: &'static str, running: bool, deadline: Option<Duration>) {
        self.with_task(name, |state| {
            state.running = running;
            state.deadline = deadline;
            state.last_tick = Instant::now();
        });
    }

    fn count_panic(&self, name: &'static str) -> u64 {
        self.with_task(name, |state| {
            state.running = false;
            state.panics += 1;
            state.panics
        })
    }

    /// The database failed a read or write: this node claims no work until it answers
    /// again (leases due meanwhile are still removed, from the outage lookahead).
    pub fn database_failed(&self, error: &str) {
        let mut down = self
            .database_down
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match down.as_mut() {
            Some((_, last)) => *last = error.to_string(),
            None => *down = Some((Instant::now(), error.to_string())),
        }
    }

    /// The database answered again.
    pub fn database_answered(&self) {
        *self
            .database_down
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Every reason writ is not healthy now, one line each; empty when it is.
    pub fn problems(&self) -> Vec<String> {
        let now = Instant::now();
        let database = self
            .database_down
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|(since, error)| {
                format!(
                    "database unavailable for {}s; this node claims no work until it answers: {error}",
                    now.duration_since(*since).as_secs()
                )
            });
        let tasks = self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        database
            .into_iter()
            .chain(tasks.iter().filter_map(|(name, state)| {
                if !state.running {
                    return Some(format!(
                        "{name} is not running ({} panics since start; restarting)",
                        state.panics
                    ));
                }
                let silent = now.duration_since(state.last_tick);
                match state.deadline {
                    Some(deadline) if silent > deadline => Some(format!(
                        "{name} has not made progress for {}s (deadline {}s)",
                        silent.as_secs(),
                        deadline.as_secs()
                    )),
                    _ => None,
                }
            }))
            .collect()
    }
}

/// A task that panicked `PANICS_MAX` times within the window: writ should stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{task} panicked {panics} times within {window_seconds}s; giving up: {last_panic}")]
pub struct TaskDied {
    pub task: &'static str,
    pub panics: usize,
    pub window_seconds: u64,
    pub last_panic: String,
}

fn panic_text(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into()),
        Err(error) => error.to_string(),
    }
}

/// Runs `task()` until it returns (shutdown), restarting it after each panic with
/// capped exponential backoff. Gives up (`Err`) after `PANICS_MAX` panics within
/// `PANIC_WINDOW`.
pub async fn supervise<F, Fut>(
    health: std::sync::Arc<Health>,
    name: &'static str,
    deadline: Option<Duration>,
    mut shutdown: watch::Receiver<bool>,
    task: F,
) -> Result<(), TaskDied>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut recent_panics: Vec<Instant> = Vec::new();
    let mut backoff = RESTART_BACKOFF_MIN;
    loop {
        health.set_running(name, true, deadline);
        let error = match tokio::spawn(task()).await {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        let last_panic = panic_text(error);
        let panics = health.count_panic(name);
        metrics::counter!(metrics_names::TASK_PANICS, "task" => name).increment(1);
        let now = Instant::now();
        recent_panics.retain(|at| now.duration_since(*at) < PANIC_WINDOW);
        recent_panics.push(now);
        tracing::error!(task = name, panics, panic = %last_panic, "background task panicked; restarting it in {}s", backoff.as_secs());
        if recent_panics.len() >= PANICS_MAX {
            return Err(TaskDied {
                task: name,
                panics: recent_panics.len(),
                window_seconds: PANIC_WINDOW.as_secs(),
                last_panic,
            });
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return Ok(()),
        }
        backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_restarted_and_reported_meanwhile() {
        let health = Arc::new(Health::default());
        let (_stop, stopped) = watch::channel(false);
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let supervised = tokio::spawn(supervise(
            health.clone(),
            "worker",
            None,
            stopped,
            move || {
                let run = counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    if run < 2 {
                        panic!("run {run} fails");
                    }
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
            },
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let problems = health.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("worker is not running (1 panics"),
            "{problems:?}"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert!(health.problems().is_empty(), "{:?}", health.problems());
        supervised.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_keeps_dying_is_given_up_on() {
        let health = Arc::new(Health::default());
        let (_stop, stopped) = watch::channel(false);
        let died = supervise(health.clone(), "worker", None, stopped, || async {
            panic!("always");
        })
        .await
        .expect_err("gives up");
        assert_eq!((died.task, died.panics), ("worker", PANICS_MAX));
        assert!(died.last_panic.contains("always"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_stops_ticking_is_reported_stuck() {
        let health = Arc::new(Health::default());
        let (_stop, stopped) = watch::channel(false);
        let deadline = Some(Duration::from_secs(10));
        let supervised = tokio::spawn(supervise(
            health.clone(),
            "worker",
            deadline,
            stopped,
            || async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            },
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
        health.tick("worker");
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(health.problems().is_empty());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let problems = health.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("worker has not made progress for 11s"),
            "{problems:?}"
        );
        supervised.abort();
    }
}
