//! A bound on expensive work done at once (reports): so many run, a few more wait their
//! turn, and the rest are told at once to come back later (503), so that no pile of
//! requests can take the server's memory or every core.

use super::ApiError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Gate {
    what: &'static str,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// Held while the work runs; the next waiter enters when it is dropped.
pub struct Turn(#[allow(dead_code)] OwnedSemaphorePermit);

/// Counts a waiter while it waits, however its wait ends (a request given up by its time
/// limit included).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    /// `at_once` may run; `4 × at_once` more may wait.
    pub fn new(what: &'static str, at_once: usize) -> Gate {
        let at_once = at_once.max(1);
        Gate {
            what,
            permits: Arc::new(Semaphore::new(at_once)),
            waiting: AtomicUsize::new(0),
            max_waiting: 4 * at_once,
        }
    }

    /// Waits for a turn, or refuses at once when too many wait already.
    pub async fn enter(&self) -> Result<Turn, ApiError> {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Ok(Turn(p));
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::busy(
                format!(
                    "too many {} are being made at once; try again in a few seconds",
                    self.what
                ),
                5,
            ));
        }
        let _waiting = Waiting(&self.waiting);
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map(Turn)
            .map_err(|_| ApiError::internal("the server is stopping"))
    }

    /// How many run now.
    pub fn running(&self, at_once: usize) -> usize {
        at_once - self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn some_run_some_wait_the_rest_are_refused() {
        let gate = Arc::new(Gate::new("reports", 1));
        let first = gate.enter().await.unwrap();
        // Four may wait behind it; they are let in one by one as turns end.
        let mut waiters = Vec::new();
        for _ in 0..4 {
            let g = gate.clone();
            let (entered, rx) = tokio::sync::oneshot::channel();
            waiters.push((
                tokio::spawn(async move {
                    let turn = g.enter().await.unwrap();
                    let _ = entered.send(());
                    turn
                }),
                rx,
            ));
        }
        // Wait until all four are queued (the count is the gate's own).
        while gate.waiting.load(Ordering::SeqCst) < 4 {
            tokio::task::yield_now().await;
        }
        let refused = gate.enter().await.err().unwrap();
        assert_eq!(refused.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(refused.message.contains("too many reports"));
        assert_eq!(gate.running(1), 1);
        drop(first);
        for (task, entered) in waiters {
            entered.await.unwrap();
            drop(task.await.unwrap());
        }
        assert_eq!(gate.running(1), 0);
        assert_eq!(gate.waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_waiter_given_up_is_no_longer_counted() {
        let gate = Gate::new("reports", 1);
        let _first = gate.enter().await.unwrap();
        {
            let wait = gate.enter();
            tokio::pin!(wait);
            // Poll once so that it queues, then give it up.
            assert!(futures_util::FutureExt::now_or_never(wait.as_mut()).is_none());
            assert_eq!(gate.waiting.load(Ordering::SeqCst), 1);
        }
        assert_eq!(gate.waiting.load(Ordering::SeqCst), 0);
    }
}
