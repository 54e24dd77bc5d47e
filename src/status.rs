//! The lifecycle of one execution context.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an [`ExecutionContext`](crate::ExecutionContext) is in its life.
///
/// The legal moves are `Pending → Executing → {Finished, Aborted, Cancelled}`
/// and `Pending → Cancelled`. Nothing leaves a terminal state; the
/// [`ExecutionStateManager`](crate::ExecutionStateManager) refuses any other
/// move with [`RunError::IllegalTransition`](crate::RunError::IllegalTransition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Created, not yet started.
    Pending,
    /// Its tasks are running.
    Executing,
    /// It ran and its evaluation strategy judged it a success.
    Finished,
    /// It stopped because a task or a caller asked the run to stop.
    Cancelled,
    /// It failed: its evaluation strategy judged it a failure, or the engine
    /// could not run it.
    Aborted,
}

impl ExecutionStatus {
    /// Whether no further transition is allowed from this status.
    ///
    /// ```
    /// use conveyor::ExecutionStatus;
    /// assert!(ExecutionStatus::Finished.is_terminal());
    /// assert!(!ExecutionStatus::Executing.is_terminal());
    /// ```
    #[must_use]
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Finished | Self::Cancelled | Self::Aborted)
    }

    /// Whether moving from `self` to `next` is one of the legal transitions.
    ///
    /// ```
    /// use conveyor::ExecutionStatus::*;
    /// assert!(Pending.can_transition_to(Executing));
    /// assert!(Pending.can_transition_to(Cancelled));
    /// assert!(!Pending.can_transition_to(Finished));
    /// assert!(!Finished.can_transition_to(Executing));
    /// ```
    #[must_use]
    pub const fn can_transition_to(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Pending, Self::Executing)
                | (Self::Pending, Self::Cancelled)
                | (Self::Executing, Self::Finished)
                | (Self::Executing, Self::Aborted)
                | (Self::Executing, Self::Cancelled)
        )
    }

    /// Whether this status counts as a failure (cancelled or aborted), as the
    /// original engine counted it.
    #[must_use]
    pub const fn is_failure(self) -> bool {
        matches!(self, Self::Cancelled | Self::Aborted)
    }

    /// The lowercase name used in logs and reports.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Executing => "executing",
            Self::Finished => "finished",
            Self::Cancelled => "cancelled",
            Self::Aborted => "aborted",
        }
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ExecutionStatus::{self, *};

    const ALL: [ExecutionStatus; 5] = [Pending, Executing, Finished, Cancelled, Aborted];

    #[test]
    fn terminal_states_have_no_exit() {
        for from in ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in ALL {
                assert!(!from.can_transition_to(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn exactly_the_documented_transitions_are_legal() {
        let legal: Vec<_> = ALL
            .into_iter()
            .flat_map(|a| ALL.into_iter().map(move |b| (a, b)))
            .filter(|(a, b)| a.can_transition_to(*b))
            .collect();
        assert_eq!(
            legal,
            vec![
                (Pending, Executing),
                (Pending, Cancelled),
                (Executing, Finished),
                (Executing, Cancelled),
                (Executing, Aborted),
            ]
        );
    }

    #[test]
    fn display_matches_serde_name() {
        for s in ALL {
            let json = format!("\"{}\"", s.as_str());
            assert_eq!(serde_json::to_string(&s).unwrap(), json);
        }
    }
}
