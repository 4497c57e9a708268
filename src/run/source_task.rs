//! One source's task ([`SourceTask`]): polls on the source's interval (with jitter) until
//! shutdown, idles while the source is paused, and after a failure waits as
//! [`error_policy`] says. The work of one poll ([`SourceTask::poll_once`]) is apart from what
//! happens on its failure, as controller-rs keeps `reconcile` and `error_policy` apart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use super::services::SourcePoller;
use crate::config::Source;
use crate::poll::feed::PollReport;
use crate::poll::pipeline::{Context, PollError};
use crate::retry::{Doubling, with_jitter};
use crate::shutdown::Shutdown;
use crate::source::SourceSpec;
use crate::telemetry::{self, Telemetry};

/// The longest a failing source waits before trying again.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The longest wait after a failure on the NATS side (a publish or cursor write that timed
/// out: an election, a restarting server). Each such attempt already waited for its own
/// timeout, so a longer backoff would only keep the source idle after NATS is back.
const NATS_BACKOFF_CAP: Duration = Duration::from_secs(2);

/// How a failed poll is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Happening {
    /// Gitea refuses the source (401, 403, 404): the operator must see which.
    Refused,
    /// Anything else: retried after the backoff.
    Failed,
}

/// What one source's task holds between its polls.
pub struct SourceTask {
    /// The run's shared context (telemetry, pauses, cadence).
    ctx: Arc<Context>,
    /// The feed and kinds of the source, with the feed's cursor.
    poller: SourcePoller,
    /// The source polled.
    spec: SourceSpec,
    /// Its configured interval.
    interval: Duration,
    /// Its key in the cadence planner.
    name: String,
    /// NATS, asked whether it is connected before each poll.
    nats: async_nats::Client,
    /// `poll.jitter`: each wait is lengthened by up to this fraction.
    jitter: f64,
    /// This task's stop (shutdown, its own trigger, its lease's end).
    shutdown: Shutdown,
    /// Idling because of a pause mark (`pause`).
    idle: bool,
    /// Consecutive failed polls.
    failures: u32,
}

impl SourceTask {
    /// A task for `source`, stopping when `shutdown` fires.
    pub fn new(
        ctx: Arc<Context>,
        source: Source,
        nats: async_nats::Client,
        jitter: f64,
        shutdown: Shutdown,
    ) -> SourceTask {
        SourceTask {
            spec: source.spec.clone(),
            interval: source.interval,
            name: source.spec.to_string(),
            poller: SourcePoller::new(ctx.clone(), source),
            ctx,
            nats,
            jitter,
            shutdown,
            idle: false,
            failures: 0,
        }
    }

    fn telemetry(&self) -> &Telemetry {
        &self.ctx.telemetry
    }

    /// Polls the source forever (until shutdown). With `spread`, the first poll waits a
    /// random part of the interval (at most a second) so that sources started together do
    /// not poll in lock-step; without, it polls at once (a source whose lease was just taken
    /// over).
    pub async fn run(mut self, spread: bool) {
        let mut wait = match spread {
            true => self
                .interval
                .min(Duration::from_secs(1))
                .mul_f64(rand::rng().random_range(0.0..1.0)),
            false => Duration::ZERO,
        };
        loop {
            if !self.wait_while_paused().await {
                break;
            }
            if self.idle {
                self.idle = false;
                self.ctx.pauses.set_idle(&self.spec, false);
                self.telemetry().emit(telemetry::SourceResumed {
                    source: &self.spec,
                    interval: self.interval,
                });
                wait = Duration::ZERO;
            }
            let pauses = self.ctx.pauses.clone();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.shutdown.wait() => break,
                _ = pauses.wait_paused(&self.spec) => continue,
            }
            match self.poll_once().await {
                Next::Wait(w) => wait = w,
                Next::Top => continue,
                Next::End => break,
            }
        }
        if self.idle {
            self.ctx.pauses.set_idle(&self.spec, false);
        }
        self.ctx.cadence.forget(&self.name);
    }

    /// Paused, or the pause marks not read yet: no request until that changes. `false`
    /// when shutdown came meanwhile.
    async fn wait_while_paused(&mut self) -> bool {
        let pauses = self.ctx.pauses.clone();
        loop {
            let seen = pauses.state(&self.spec);
            let (may_poll, paused) = seen;
            if may_poll {
                return true;
            }
            if paused && !self.idle {
                self.idle = true;
                pauses.set_idle(&self.spec, true);
                self.telemetry()
                    .emit(telemetry::SourcePaused { source: &self.spec });
            }
            tokio::select! {
                _ = pauses.wait_change(&self.spec, seen) => {}
                _ = self.shutdown.wait() => return false,
            }
        }
    }

    /// One poll (unless NATS is away), reported; what comes next.
    async fn poll_once(&mut self) -> Next {
        if self.nats.connection_state() != async_nats::connection::State::Connected {
            self.telemetry().emit(telemetry::NatsWaiting {
                source: self.poller.spec(),
            });
            return Next::Wait(Duration::from_secs(1));
        }
        let started = Instant::now();
        self.telemetry().emit(telemetry::PollStarted {
            source: self.poller.spec(),
        });
        let (result, requests) = self.poll_until_paused().await;
        match result {
            Ok(report) => self.succeeded(report, requests, started),
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                let (wait, happening) = error_policy(&e, self.failures, self.interval, self.jitter);
                self.failed(&e, happening, wait);
                Next::Wait(wait)
            }
        }
    }

    /// The poll, and the requests it made. A pause during the poll stops it at its next safe
    /// point, as a lease's end does.
    async fn poll_until_paused(&mut self) -> (Result<PollReport, PollError>, u64) {
        let pauses = self.ctx.pauses.clone();
        let (pause_stop, poll_shutdown) = self.shutdown.child();
        let poll = crate::gitea::cadence::count_requests(self.poller.poll(&poll_shutdown));
        tokio::pin!(poll);
        tokio::select! {
            r = &mut poll => r,
            _ = pauses.wait_paused(&self.spec) => {
                pause_stop.fire();
                poll.await
            }
        }
    }

    /// A poll that succeeded: the wait the cadence plans, or the top of the loop after a
    /// stop.
    fn succeeded(&mut self, report: PollReport, requests: u64, started: Instant) -> Next {
        self.failures = 0;
        self.telemetry().emit(telemetry::PollCompleted {
            source: self.poller.spec(),
            read: report.read,
            published: report.published,
            took: started.elapsed(),
        });
        if report.stopped {
            // Stopped by a pause: idle at the top; by shutdown (or the lease): end.
            return match self.shutdown.is_fired() {
                true => Next::End,
                false => Next::Top,
            };
        }
        // The source's interval, unless the budget is short (`cadence`).
        let plan = self.ctx.cadence.next_wait(
            &self.name,
            self.interval,
            requests,
            report.published,
            report.days > 0,
        );
        self.telemetry().emit(telemetry::PollPlanned {
            source: self.poller.spec(),
            wait: plan.wait,
            interval: self.interval,
            active: plan.active,
            planned_rps: plan.planned_rps,
        });
        Next::Wait(with_jitter(plan.wait, self.jitter))
    }

    /// Reports a failed poll as `happening`, to be tried again after `wait`.
    fn failed(&self, e: &PollError, happening: Happening, wait: Duration) {
        let source = self.poller.spec();
        let reason = e.reason();
        match happening {
            Happening::Refused => self.telemetry().emit(telemetry::SourceRefused {
                source,
                reason,
                error: e,
                retry_in: wait,
            }),
            Happening::Failed => self.telemetry().emit(telemetry::PollFailed {
                source,
                reason,
                error: e,
                retry_in: wait,
            }),
        }
    }
}

/// What the task does after a poll.
enum Next {
    /// Waits this long, then polls.
    Wait(Duration),
    /// Goes back to the top of the loop at once (a pause stopped the poll).
    Top,
    /// Ends (shutdown, or the lease passed).
    End,
}

/// What happens after `failures` consecutive failed polls of a source polled every
/// `interval`, the last failing with `e`: the wait before the next poll (the backoff of
/// [`retry_delay`], with `jitter`) and how the failure is reported.
pub(crate) fn error_policy(
    e: &PollError,
    failures: u32,
    interval: Duration,
    jitter: f64,
) -> (Duration, Happening) {
    let wait = with_jitter(retry_delay(interval, failures, e), jitter);
    let happening = match e {
        PollError::Gitea(g) if matches!(g.status(), Some(401 | 403 | 404)) => Happening::Refused,
        _ => Happening::Failed,
    };
    (wait, happening)
}

/// The wait before the next poll after `failures` consecutive failures, the last being
/// `e`: the interval doubled per failure, up to [`MAX_BACKOFF`] for Gitea's errors and to
/// [`NATS_BACKOFF_CAP`] (or the interval, if longer) for NATS's.
fn retry_delay(interval: Duration, failures: u32, e: &PollError) -> Duration {
    // A NATS-side failure (a publish, fenced ones too, or a bucket that may answer again)
    // waits briefly; a Gitea-side one longer.
    let cap = match e {
        PollError::Publish(_) => NATS_BACKOFF_CAP.max(interval),
        PollError::State(e) if e.is_retryable() => NATS_BACKOFF_CAP.max(interval),
        _ => MAX_BACKOFF.max(interval),
    };
    // Doubled at most ten times, whatever the cap.
    Doubling {
        from: interval,
        cap: cap.min(interval.saturating_mul(1 << 10)),
    }
    .after(failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nats::publish::PublishError;

    fn publish() -> PollError {
        PollError::Publish(PublishError {
            kind: crate::nats::publish::PublishErrorKind::Ack,
            acked: 0,
            total: 3,
            source: Some("timed out: didn't receive ack in time".into()),
        })
    }

    fn gitea(status: u16) -> PollError {
        PollError::Gitea(crate::gitea::GiteaError::Status {
            url: "http://gitea/api/v1/repos/a/b/activities/feeds".into(),
            status,
            message: "boom".into(),
            retry_after: None,
        })
    }

    #[test]
    fn a_nats_side_failure_backs_off_at_most_two_seconds_a_gitea_one_up_to_five_minutes() {
        let interval = Duration::from_millis(200);
        let publish = publish();
        let kv = PollError::State(crate::store::StoreError::Kv("timed out".into()));
        let gitea = gitea(500);
        let delays = |e: &PollError| -> Vec<u64> {
            (1..=12)
                .map(|n| retry_delay(interval, n, e).as_millis() as u64)
                .collect()
        };
        assert_eq!(
            delays(&publish),
            vec![
                200, 400, 800, 1600, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000
            ]
        );
        assert_eq!(delays(&kv), delays(&publish));
        assert_eq!(*delays(&gitea).last().unwrap(), 204_800);
        assert_eq!(
            retry_delay(Duration::from_secs(60), 3, &publish),
            Duration::from_secs(60),
            "never shorter than the interval"
        );
    }

    #[test]
    fn the_error_policy_doubles_up_to_its_cap_and_tells_a_refusal_from_a_failure() {
        let interval = Duration::from_secs(10);
        let waits: Vec<u64> = (1..=8)
            .map(|n| error_policy(&gitea(500), n, interval, 0.0).0.as_secs())
            .collect();
        assert_eq!(waits, vec![10, 20, 40, 80, 160, 300, 300, 300]);
        // The doubling stops at 2^10 however many failures came.
        let long = Duration::from_millis(1);
        assert_eq!(
            error_policy(&gitea(500), u32::MAX, long, 0.0).0,
            Duration::from_millis(1024)
        );
        for status in [401, 403, 404] {
            assert_eq!(
                error_policy(&gitea(status), 1, interval, 0.0).1,
                Happening::Refused
            );
        }
        assert_eq!(
            error_policy(&gitea(500), 1, interval, 0.0).1,
            Happening::Failed
        );
        assert_eq!(
            error_policy(&publish(), 1, interval, 0.0).1,
            Happening::Failed
        );
    }

    #[test]
    fn jitter_lengthens_a_wait_by_less_than_its_fraction_and_never_shortens_it() {
        let d = Duration::from_secs(100);
        assert_eq!(with_jitter(d, 0.0), d);
        assert_eq!(with_jitter(d, -1.0), d);
        for failures in 1..=4 {
            for _ in 0..200 {
                let (wait, _) = error_policy(&gitea(500), failures, d, 0.25);
                let base = retry_delay(d, failures, &gitea(500));
                assert!(
                    wait >= base && wait < base.mul_f64(1.25),
                    "{wait:?} for {base:?}"
                );
            }
        }
    }
}
