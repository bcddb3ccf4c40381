//! The crate's one error type: why code did not build, or why an execution failed. Every
//! execution failure names the action it happened in, so the idp can log and report it.

/// A failed build or a failed execution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The code does not compile (or is too large); reported at deploy time.
    #[error("{}", build_message(*.line, .message))]
    Build { line: Option<u32>, message: String },
    /// The action threw, or its promise was rejected.
    #[error("action {action} failed: {message}")]
    Threw { action: String, message: String },
    #[error("action {action} exceeded the time limit of {limit_ms} ms")]
    TimeLimit { action: String, limit_ms: u128 },
    #[error("action {action} exceeded the memory limit of {limit_mb} MB")]
    MemoryLimit { action: String, limit_mb: usize },
    #[error("action {action} exceeded the stack limit (runaway recursion?)")]
    StackLimit { action: String },
    #[error("action {action} failed: its promise never settled")]
    NeverSettled { action: String },
    /// The code ran but broke a rule of the runtime contract (no handler, claims too large…).
    #[error("action {action} failed: {message}")]
    Contract { action: String, message: String },
    /// The engine itself failed (not the action's fault).
    #[error("the JavaScript engine failed: {0}")]
    Engine(String),
}

fn build_message(line: Option<u32>, message: &str) -> String {
    match line {
        Some(l) => format!("line {l}: {message}"),
        None => message.to_string(),
    }
}

impl ActionError {
    /// The action a failed execution was running, if any.
    pub fn action(&self) -> Option<&str> {
        match self {
            ActionError::Threw { action, .. }
            | ActionError::TimeLimit { action, .. }
            | ActionError::MemoryLimit { action, .. }
            | ActionError::StackLimit { action }
            | ActionError::NeverSettled { action }
            | ActionError::Contract { action, .. } => Some(action),
            ActionError::Build { .. } | ActionError::Engine(_) => None,
        }
    }

    /// A resource limit was hit: the sandbox that ran it is not reused.
    pub(crate) fn is_limit(&self) -> bool {
        matches!(self, ActionError::TimeLimit { .. } | ActionError::MemoryLimit { .. } | ActionError::StackLimit { .. })
    }
}
