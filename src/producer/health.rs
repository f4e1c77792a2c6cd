//! `BrokerHealthInfo`: what the producer knows of each broker's health.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Consecutive failures that make a broker [`HealthState::Degraded`].
pub const DEGRADED_AFTER_FAILURES: u32 = 3;
/// Consecutive failures that make a broker [`HealthState::Unhealthy`].
pub const UNHEALTHY_AFTER_FAILURES: u32 = 5;
/// Consecutive successes that make a degraded or unhealthy broker healthy.
pub const HEALTHY_AFTER_SUCCESSES: u32 = 5;
/// Latencies kept per broker.
pub const LATENCY_WINDOW: usize = 100;

/// Java's `MQFaultStrategy` table: a send that took at least `LATENCY_MAX[i]`
/// ms makes the broker unavailable for `NOT_AVAILABLE_MS[i]` ms.
const LATENCY_MAX: [u64; 7] = [50, 100, 550, 1000, 2000, 3000, 15000];
const NOT_AVAILABLE_MS: [u64; 7] = [0, 0, 30_000, 60_000, 120_000, 180_000, 600_000];
/// Latency charged to a failed send (Java 5.x isolates with 10 s: 3 minutes off).
const FAILURE_LATENCY_MS: u64 = 10_000;

/// A broker's health as the producer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthState {
    /// Working.
    Healthy,
    /// 3 failures in a row: used only when no healthy broker is left.
    Degraded,
    /// 5 failures in a row: not routed to until it recovers.
    Unhealthy,
    /// Taken out by hand ([`MessageRouter::suspend_broker`](super::MessageRouter::suspend_broker)):
    /// never routed to, not even as a last resort.
    Suspended,
}

/// Counters, recent latencies and state of one broker.
///
/// Rules: every failure adds to the consecutive failures and clears the
/// consecutive successes; 3 in a row make the broker `Degraded`, 5
/// `Unhealthy`. Every success (a send, or a heartbeat the broker answers)
/// clears the failures; 5 in a row make a degraded or unhealthy broker
/// `Healthy`. `Suspended` is set and cleared only by hand.
///
/// ```
/// use std::time::Duration;
/// use rocketmq_blocking::producer::{BrokerHealthInfo, HealthState};
///
/// let mut h = BrokerHealthInfo::new("broker-a");
/// for _ in 0..3 {
///     h.record_failure(false);
/// }
/// assert_eq!(h.state(), HealthState::Degraded);
/// for _ in 0..5 {
///     h.record_success(Some(Duration::from_millis(2)), false);
/// }
/// assert_eq!(h.state(), HealthState::Healthy);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerHealthInfo {
    broker: String,
    state: HealthState,
    successes: u64,
    failures: u64,
    consecutive_failures: u32,
    consecutive_successes: u32,
    latencies: VecDeque<Duration>,
    not_available_until: Option<Instant>,
}

impl BrokerHealthInfo {
    /// A healthy broker with no history.
    pub fn new(broker: impl Into<String>) -> Self {
        BrokerHealthInfo {
            broker: broker.into(),
            state: HealthState::Healthy,
            successes: 0,
            failures: 0,
            consecutive_failures: 0,
            consecutive_successes: 0,
            latencies: VecDeque::with_capacity(LATENCY_WINDOW),
            not_available_until: None,
        }
    }

    /// Records a success; `latency` is `None` for a heartbeat. With
    /// `latency_aware`, a slow send keeps the broker out of routing for a
    /// while (Java's table: ≥ 550 ms → 30 s ... ≥ 15 s → 10 min); a heartbeat
    /// answer ends such a pause.
    pub fn record_success(&mut self, latency: Option<Duration>, latency_aware: bool) {
        self.successes += 1;
        self.consecutive_failures = 0;
        self.consecutive_successes += 1;
        if matches!(self.state, HealthState::Degraded | HealthState::Unhealthy)
            && self.consecutive_successes >= HEALTHY_AFTER_SUCCESSES
        {
            self.state = HealthState::Healthy;
        }
        match latency {
            Some(l) => {
                if self.latencies.len() == LATENCY_WINDOW {
                    self.latencies.pop_front();
                }
                self.latencies.push_back(l);
                if latency_aware {
                    self.pause_for(l.as_millis() as u64);
                }
            }
            None => self.not_available_until = None,
        }
    }

    /// Records a failure.
    pub fn record_failure(&mut self, latency_aware: bool) {
        self.failures += 1;
        self.consecutive_successes = 0;
        self.consecutive_failures += 1;
        if self.state != HealthState::Suspended {
            if self.consecutive_failures >= UNHEALTHY_AFTER_FAILURES {
                self.state = HealthState::Unhealthy;
            } else if self.consecutive_failures >= DEGRADED_AFTER_FAILURES {
                self.state = HealthState::Degraded;
            }
        }
        if latency_aware {
            self.pause_for(FAILURE_LATENCY_MS);
        }
    }

    fn pause_for(&mut self, latency_ms: u64) {
        let i = LATENCY_MAX.iter().rposition(|max| latency_ms >= *max);
        let pause = i.map_or(0, |i| NOT_AVAILABLE_MS[i]);
        self.not_available_until = (pause > 0).then(|| Instant::now() + Duration::from_millis(pause));
    }

    /// Takes the broker out of routing until [`recover`](Self::recover).
    pub fn suspend(&mut self) {
        self.state = HealthState::Suspended;
    }

    /// Makes the broker healthy again, clearing the failure run and any pause.
    pub fn recover(&mut self) {
        self.state = HealthState::Healthy;
        self.consecutive_failures = 0;
        self.not_available_until = None;
    }

    /// Whether routing may use the broker now (not unhealthy, suspended or paused).
    pub fn is_available(&self) -> bool {
        !matches!(self.state, HealthState::Unhealthy | HealthState::Suspended)
            && self.not_available_until.map_or(true, |t| Instant::now() >= t)
    }

    /// Broker name.
    pub fn broker(&self) -> &str {
        &self.broker
    }
    /// State.
    pub fn state(&self) -> HealthState {
        self.state
    }
    /// Successful sends and heartbeats.
    pub fn successes(&self) -> u64 {
        self.successes
    }
    /// Failed sends and heartbeats.
    pub fn failures(&self) -> u64 {
        self.failures
    }
    /// The share of sends and heartbeats that succeeded, 0.0 to 1.0;
    /// `None` before the first result.
    pub fn success_rate(&self) -> Option<f64> {
        let total = self.successes + self.failures;
        (total > 0).then(|| self.successes as f64 / total as f64)
    }
    /// Failures since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
    /// The last (up to 100) send latencies.
    pub fn latencies(&self) -> impl Iterator<Item = Duration> + '_ {
        self.latencies.iter().copied()
    }
    /// Average of the kept latencies.
    pub fn average_latency(&self) -> Option<Duration> {
        let n = self.latencies.len() as u32;
        (n > 0).then(|| self.latencies.iter().sum::<Duration>() / n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine() {
        let mut h = BrokerHealthInfo::new("b");
        h.record_failure(false);
        h.record_failure(false);
        assert_eq!(h.state(), HealthState::Healthy);
        h.record_failure(false);
        assert_eq!(h.state(), HealthState::Degraded);
        assert!(h.is_available());
        h.record_failure(false);
        h.record_failure(false);
        assert_eq!(h.state(), HealthState::Unhealthy);
        assert!(!h.is_available());
        for _ in 0..4 {
            h.record_success(None, false);
        }
        assert_eq!(h.state(), HealthState::Unhealthy);
        h.record_success(None, false);
        assert_eq!(h.state(), HealthState::Healthy);
        h.suspend();
        for _ in 0..10 {
            h.record_success(None, false);
            h.record_failure(false);
        }
        assert_eq!(h.state(), HealthState::Suspended);
        h.recover();
        assert_eq!(h.state(), HealthState::Healthy);
        assert_eq!(h.successes(), 15);
        assert_eq!(h.failures(), 15);
        assert_eq!(h.success_rate(), Some(0.5));
        assert_eq!(BrokerHealthInfo::new("c").success_rate(), None);
    }

    #[test]
    fn latencies_and_pauses() {
        let mut h = BrokerHealthInfo::new("b");
        for i in 0..150u64 {
            h.record_success(Some(Duration::from_millis(i)), false);
        }
        assert_eq!(h.latencies().count(), 100);
        assert_eq!(h.average_latency(), Some(Duration::from_micros(99_500)));
        h.record_success(Some(Duration::from_millis(600)), true);
        assert!(!h.is_available(), "a 600 ms send pauses the broker (30 s)");
        h.record_success(None, true);
        assert!(h.is_available(), "a heartbeat answer ends the pause");
        h.record_success(Some(Duration::from_millis(10)), true);
        assert!(h.is_available());
        h.record_failure(true);
        assert!(!h.is_available());
    }
}
