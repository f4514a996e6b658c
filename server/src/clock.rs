//! Whether the server's clock is synchronised to a time source. Audit records carry the
//! server's UTC time, so a review must know when that time could not be trusted: the monitor
//! checks every minute, records each change (and the state at start) in the audit trail as
//! `system.clock_status`, and the review report `clock_unsynchronised` lists those records.
//!
//! How it is found, first that answers: the configured command (`--clock-check-command`,
//! exit 0 synchronised, 1 not), `chronyc tracking`, `timedatectl`, systemd-timesyncd's
//! marker file. If none answers the state is `unknown`, which is recorded like
//! unsynchronised.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tsunagu_protocol::audit::ClockStatus;

use crate::audit::{Action, Actor, Event, Origin, Outcome};
use crate::store::Store;
use crate::time::{from_micros, now_micros};

/// A probe's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockState {
    Synchronised,
    Unsynchronised,
    Unknown,
}

impl ClockState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClockState::Synchronised => "synchronised",
            ClockState::Unsynchronised => "unsynchronised",
            ClockState::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Observation {
    state: ClockState,
    source: Option<&'static str>,
    checked_at: i64,
}

/// Watches the clock; cheap to clone.
#[derive(Debug, Clone)]
pub struct ClockMonitor {
    command: Option<Vec<String>>,
    every: Duration,
    last: Arc<RwLock<Observation>>,
}

impl ClockMonitor {
    /// A monitor that runs `command` (split on whitespace) if given, else the built-in probes,
    /// every `every`.
    pub fn new(command: Option<&str>, every: Duration) -> Self {
        ClockMonitor {
            command: command
                .map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                .filter(|c| !c.is_empty()),
            every,
            last: Arc::new(RwLock::new(Observation {
                state: ClockState::Unknown,
                source: None,
                checked_at: now_micros(),
            })),
        }
    }

    /// The latest observation.
    pub fn status(&self) -> ClockStatus {
        let last = match self.last.read() {
            Ok(last) => *last,
            Err(poisoned) => *poisoned.into_inner(),
        };
        ClockStatus {
            state: last.state.as_str().to_owned(),
            source: last.source.map(str::to_owned),
            checked_at: from_micros(last.checked_at),
        }
    }

    /// Checks now; returns the state and how it was found.
    pub async fn probe(&self) -> (ClockState, Option<&'static str>) {
        if let Some(command) = &self.command {
            let status = run(&command[0], &command[1..]).await;
            let state = match status.map(|(code, _)| code) {
                Some(0) => ClockState::Synchronised,
                Some(1) => ClockState::Unsynchronised,
                _ => ClockState::Unknown,
            };
            return (state, Some("command"));
        }
        if let Some((0, out)) = run("chronyc", &["-n", "tracking"]).await {
            let state = if out.contains("Not synchronised") {
                ClockState::Unsynchronised
            } else if out
                .lines()
                .any(|l| l.starts_with("Leap status") && l.contains("Normal"))
            {
                ClockState::Synchronised
            } else {
                ClockState::Unsynchronised
            };
            return (state, Some("chrony"));
        }
        if let Some((0, out)) =
            run("timedatectl", &["show", "-p", "NTPSynchronized", "--value"]).await
        {
            match out.trim() {
                "yes" => return (ClockState::Synchronised, Some("timedatectl")),
                "no" => return (ClockState::Unsynchronised, Some("timedatectl")),
                _ => {}
            }
        }
        if tokio::fs::try_exists("/run/systemd/timesync/synchronized")
            .await
            .unwrap_or(false)
        {
            return (ClockState::Synchronised, Some("timesyncd"));
        }
        (ClockState::Unknown, None)
    }

    /// Checks, and records the state if it changed (or if `always`).
    async fn check(&self, store: &Store, always: bool) {
        let (state, source) = self.probe().await;
        let previous = {
            let mut last = match self.last.write() {
                Ok(last) => last,
                Err(poisoned) => poisoned.into_inner(),
            };
            let previous = last.state;
            *last = Observation {
                state,
                source,
                checked_at: now_micros(),
            };
            previous
        };
        if !always && previous == state {
            return;
        }
        if state != ClockState::Synchronised {
            tracing::warn!(
                state = state.as_str(),
                "the server's clock is not known to be synchronised"
            );
        }
        let outcome = if state == ClockState::Synchronised {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let recorded = Event::new(
            Action::ClockStatus,
            outcome,
            &Actor::default(),
            &Origin::default(),
        )
        .object("clock", "system")
        .reason(format!(
            "state={};source={}",
            state.as_str(),
            source.unwrap_or("none")
        ))
        .record(store)
        .await;
        if let Err(error) = recorded {
            tracing::error!(%error, "cannot record the clock status");
        }
    }

    /// Checks at start and then every period until `stop` turns true.
    pub async fn run(self, store: Store, mut stop: tokio::sync::watch::Receiver<bool>) {
        self.check(&store, true).await;
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => self.check(&store, false).await,
                _ = stop.changed() => break,
            }
        }
    }
}

/// Runs a probe with a time limit; its exit code and standard output, or `None` if it could
/// not run.
async fn run(program: &str, args: &[impl AsRef<std::ffi::OsStr>]) -> Option<(i32, String)> {
    let output = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    Some((
        output.status.code()?,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}
