//! Closing connections that keep the server waiting for a request head:
//! slow-header ("slowloris") clients, silent ones, and idle keep-alive
//! connections, after [`super::HEADER_READ_TIMEOUT`].
//!
//! hyper can do this itself (`header_read_timeout`), but it arms a fresh
//! timer for every request, which cost ~0.8 µs of CPU and ~4 % of
//! throughput per request under load. Here each connection has one
//! watchdog that looks every quarter of the timeout at a counter its
//! requests bump when they start and when they end: a connection with no
//! request in flight and no change over a whole timeout is closed, 1 to
//! 1.25 timeouts after its last activity. The requests themselves only
//! touch two atomics of their own connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// What one connection's requests report to its watchdog.
#[derive(Debug, Default)]
pub struct Activity {
    /// Bumped when a request starts and when it ends.
    changes: AtomicU64,
    /// Requests whose answer is not finished.
    in_flight: AtomicU32,
}

/// Held while a request is in flight; dropping it (answer done, or the
/// request cancelled) ends the request for the watchdog.
pub struct InFlight(Arc<Activity>);

impl Activity {
    /// Reports a request that starts.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.changes.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Completes once the connection has been waiting for a request head
    /// for `timeout`: nothing in flight and nothing changed for the four
    /// looks that span it.
    pub async fn idle_for(&self, timeout: Duration) {
        const LOOKS: u32 = 4;
        let mut ticks = tokio::time::interval(timeout / LOOKS);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate
        let mut seen = self.changes.load(Ordering::Relaxed);
        let mut unchanged = 0;
        loop {
            ticks.tick().await;
            let now = self.changes.load(Ordering::Relaxed);
            if now != seen || self.in_flight.load(Ordering::Relaxed) > 0 {
                seen = now;
                unchanged = 0;
            } else {
                unchanged += 1;
                if unchanged == LOOKS {
                    return;
                }
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.changes.fetch_add(1, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(8);

    /// Time is paused: the runtime jumps to each timer, so these are exact.
    #[tokio::test(start_paused = true)]
    async fn an_untouched_connection_is_idle_after_the_timeout() {
        let activity = Arc::new(Activity::default());
        let started = tokio::time::Instant::now();
        activity.idle_for(TIMEOUT).await;
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_is_never_idle_and_its_end_restarts_the_clock() {
        let activity = Arc::new(Activity::default());
        let started = tokio::time::Instant::now();
        let request = activity.start();
        let watchdog = tokio::spawn({
            let activity = Arc::clone(&activity);
            async move { activity.idle_for(TIMEOUT).await }
        });
        // A request that takes three timeouts: no close meanwhile.
        tokio::time::sleep(TIMEOUT * 3).await;
        assert!(!watchdog.is_finished());
        drop(request);
        watchdog.await.unwrap();
        let idle = started.elapsed() - TIMEOUT * 3;
        assert!(idle >= TIMEOUT && idle <= TIMEOUT * 5 / 4, "{idle:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn requests_keep_a_connection_open_and_its_last_one_starts_the_clock() {
        let activity = Arc::new(Activity::default());
        let watchdog = tokio::spawn({
            let activity = Arc::clone(&activity);
            async move { activity.idle_for(TIMEOUT).await }
        });
        // A request every 3/4 of a timeout, for five timeouts.
        let mut last = tokio::time::Instant::now();
        for _ in 0..7 {
            tokio::time::sleep(TIMEOUT * 3 / 4).await;
            assert!(!watchdog.is_finished());
            drop(activity.start());
            last = tokio::time::Instant::now();
        }
        watchdog.await.unwrap();
        let idle = last.elapsed();
        assert!(idle >= TIMEOUT && idle <= TIMEOUT * 5 / 4, "{idle:?}");
    }
}
