//! The evaluation broker: hands pending evaluations to scheduler workers by priority, at most
//! one in flight per job, with ack/nack, redelivery on nack (up to a delivery limit), and
//! delayed evaluations held until their `WaitUntil`.

use caravan_structs::{time::now_nanos, Evaluation};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How many times an evaluation is delivered before it is failed.
pub const DELIVERY_LIMIT: u32 = 3;

type JobKey = (String, String);

#[derive(Default)]
struct Inner {
    /// Ready evaluations by (priority desc, arrival order).
    ready: BTreeMap<(std::cmp::Reverse<i32>, u64), Evaluation>,
    /// Evaluations waiting because their job already has one in flight.
    pending_by_job: HashMap<JobKey, VecDeque<Evaluation>>,
    /// Jobs with an evaluation in flight.
    inflight_jobs: HashMap<JobKey, String>,
    /// In-flight evaluations by ID: (eval, token, deliveries).
    unacked: HashMap<String, (Evaluation, String, u32)>,
    deliveries: HashMap<String, u32>,
    delayed: Vec<Evaluation>,
    seq: u64,
    enabled: bool,
    /// `pause_eval_broker`: evaluations queue up but none is handed out.
    paused: bool,
}

/// What a nack asks of the caller: the eval failed too often and must be marked failed.
pub enum NackOutcome {
    Requeued,
    DeliveryLimitReached(Box<Evaluation>),
}

pub struct EvalBroker {
    inner: Mutex<Inner>,
    ready_notify: Notify,
}

impl Default for EvalBroker {
    fn default() -> Self {
        EvalBroker {
            inner: Mutex::new(Inner {
                enabled: true,
                ..Default::default()
            }),
            ready_notify: Notify::new(),
        }
    }
}

impl EvalBroker {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Adds a pending evaluation. Delayed ones wait for their time.
    pub fn enqueue(&self, eval: Evaluation) {
        let mut g = self.lock();
        if !g.enabled || g.unacked.contains_key(&eval.id) {
            return;
        }
        if eval.wait_until > now_nanos() {
            g.delayed.push(eval);
            drop(g);
            self.ready_notify.notify_waiters();
            return;
        }
        Self::push_ready(&mut g, eval);
        drop(g);
        self.ready_notify.notify_waiters();
    }

    fn push_ready(g: &mut Inner, eval: Evaluation) {
        let key = (eval.namespace.clone(), eval.job_id.clone());
        if g.inflight_jobs.contains_key(&key)
            || g.ready
                .values()
                .any(|e| e.namespace == key.0 && e.job_id == key.1)
        {
            let q = g.pending_by_job.entry(key).or_default();
            if !q.iter().any(|e| e.id == eval.id) {
                q.push_back(eval);
            }
            return;
        }
        g.seq += 1;
        let seq = g.seq;
        g.ready
            .insert((std::cmp::Reverse(eval.priority), seq), eval);
    }

    /// Moves delayed evaluations whose time has come to the ready queue; returns how long
    /// until the next one is due.
    fn promote_delayed(g: &mut Inner) -> Option<Duration> {
        let now = now_nanos();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut g.delayed)
            .into_iter()
            .partition(|e| e.wait_until <= now);
        g.delayed = later;
        for e in due {
            Self::push_ready(g, e);
        }
        g.delayed
            .iter()
            .map(|e| e.wait_until)
            .min()
            .map(|t| Duration::from_nanos((t - now).max(0) as u64))
    }

    /// Pauses or resumes handing out evaluations (`pause_eval_broker`).
    pub fn set_paused(&self, paused: bool) {
        let mut g = self.lock();
        if g.paused != paused {
            g.paused = paused;
            drop(g);
            self.ready_notify.notify_waiters();
        }
    }

    /// Waits for the next ready evaluation. Returns it with a token for ack/nack.
    pub async fn dequeue(&self) -> (Evaluation, String) {
        loop {
            let notified = self.ready_notify.notified();
            let next_delay = {
                let mut g = self.lock();
                let next_delay = Self::promote_delayed(&mut g);
                let first = if g.paused {
                    None
                } else {
                    g.ready.keys().next().cloned()
                };
                if let Some(key) = first {
                    if let Some(eval) = g.ready.remove(&key) {
                        let token = caravan_structs::new_id();
                        let n = {
                            let d = g.deliveries.entry(eval.id.clone()).or_insert(0);
                            *d += 1;
                            *d
                        };
                        g.inflight_jobs.insert(
                            (eval.namespace.clone(), eval.job_id.clone()),
                            eval.id.clone(),
                        );
                        g.unacked
                            .insert(eval.id.clone(), (eval.clone(), token.clone(), n));
                        return (eval, token);
                    }
                }
                next_delay
            };
            match next_delay {
                Some(d) => {
                    let _ = tokio::time::timeout(d, notified).await;
                }
                None => notified.await,
            }
        }
    }

    fn release_job(&self, g: &mut Inner, eval: &Evaluation) {
        let key = (eval.namespace.clone(), eval.job_id.clone());
        g.inflight_jobs.remove(&key);
        if let Some(q) = g.pending_by_job.get_mut(&key) {
            // Only the newest pending eval for a job matters; older ones are superseded but
            // still delivered in order so each is marked complete.
            if let Some(next) = q.pop_front() {
                if q.is_empty() {
                    g.pending_by_job.remove(&key);
                }
                g.seq += 1;
                let seq = g.seq;
                g.ready
                    .insert((std::cmp::Reverse(next.priority), seq), next);
            }
        }
    }

    /// The worker finished the evaluation.
    pub fn ack(&self, eval_id: &str, token: &str) -> Result<(), String> {
        let mut g = self.lock();
        match g.unacked.get(eval_id) {
            Some((_, t, _)) if t == token => {}
            Some(_) => return Err("evaluation token does not match".into()),
            None => return Err(format!("evaluation {eval_id} is not outstanding")),
        }
        let Some((eval, _, _)) = g.unacked.remove(eval_id) else {
            return Err(format!("evaluation {eval_id} is not outstanding"));
        };
        g.deliveries.remove(eval_id);
        self.release_job(&mut g, &eval);
        drop(g);
        self.ready_notify.notify_waiters();
        Ok(())
    }

    /// The worker failed; the evaluation is redelivered unless it hit the delivery limit.
    pub fn nack(&self, eval_id: &str, token: &str) -> Result<NackOutcome, String> {
        let mut g = self.lock();
        let Some((eval, t, n)) = g.unacked.get(eval_id).cloned() else {
            return Err(format!("evaluation {eval_id} is not outstanding"));
        };
        if t != token {
            return Err("evaluation token does not match".into());
        }
        g.unacked.remove(eval_id);
        let key = (eval.namespace.clone(), eval.job_id.clone());
        g.inflight_jobs.remove(&key);
        let out = if n >= DELIVERY_LIMIT {
            g.deliveries.remove(eval_id);
            self.release_job(&mut g, &eval);
            NackOutcome::DeliveryLimitReached(Box::new(eval))
        } else {
            Self::push_ready(&mut g, eval);
            NackOutcome::Requeued
        };
        drop(g);
        self.ready_notify.notify_waiters();
        Ok(out)
    }

    /// Counts for `/v1/metrics` and tests: (ready, unacked, delayed, pending-by-job).
    pub fn stats(&self) -> (usize, usize, usize, usize) {
        let g = self.lock();
        (
            g.ready.len(),
            g.unacked.len(),
            g.delayed.len(),
            g.pending_by_job.values().map(|q| q.len()).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(job: &str, prio: i32) -> Evaluation {
        Evaluation {
            id: caravan_structs::new_id(),
            job_id: job.into(),
            priority: prio,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn one_in_flight_per_job_and_priority_order() {
        let b = EvalBroker::new();
        let a1 = eval("a", 50);
        let a2 = eval("a", 50);
        let c = eval("c", 80);
        b.enqueue(a1.clone());
        b.enqueue(a2.clone());
        b.enqueue(c.clone());
        let (first, t1) = b.dequeue().await;
        assert_eq!(first.id, c.id, "higher priority first");
        let (second, t2) = b.dequeue().await;
        assert_eq!(second.id, a1.id);
        // a2 is blocked behind a1.
        assert_eq!(b.stats().0, 0);
        b.ack(&c.id, &t1).unwrap();
        b.ack(&a1.id, &t2).unwrap();
        let (third, _) = b.dequeue().await;
        assert_eq!(third.id, a2.id);
    }

    #[tokio::test]
    async fn nack_redelivers_until_limit() {
        let b = EvalBroker::new();
        let e = eval("j", 50);
        b.enqueue(e.clone());
        for i in 1..=DELIVERY_LIMIT {
            let (got, tok) = b.dequeue().await;
            assert_eq!(got.id, e.id);
            match b.nack(&got.id, &tok).unwrap() {
                NackOutcome::Requeued => assert!(i < DELIVERY_LIMIT),
                NackOutcome::DeliveryLimitReached(_) => assert_eq!(i, DELIVERY_LIMIT),
            }
        }
        assert_eq!(b.stats().0, 0);
        assert!(b.ack(&e.id, "x").is_err());
    }

    #[tokio::test]
    async fn delayed_evals_wait() {
        let b = EvalBroker::new();
        let mut e = eval("j", 50);
        e.wait_until = now_nanos() + 200_000_000;
        b.enqueue(e.clone());
        let start = std::time::Instant::now();
        let (got, _) = b.dequeue().await;
        assert_eq!(got.id, e.id);
        assert!(start.elapsed() >= Duration::from_millis(150));
    }
}
