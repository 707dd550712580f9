//! The one error type. AWS failures keep their service, operation and error code, so the report,
//! the logs and Lambda's error record all say exactly which call failed and why.

// Every SDK crate re-exports the same smithy types; EC2's path is as good as any.
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use lambda_runtime::Diagnostic;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The payload is not something we can act on safely; retrying will not help.
    #[error("bad input at `{field}`: {message}")]
    BadInput { field: String, message: String },

    /// A configuration variable has a bad value; start-up stops.
    #[error("bad configuration {var}: {message}")]
    Config { var: &'static str, message: String },

    #[error("AWS {service} {operation} failed: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
    Aws {
        service: &'static str,
        operation: &'static str,
        code: Option<String>,
        message: String,
    },

    /// The member role in the finding's account could not be assumed. Retryable: STS may be
    /// throttling or briefly unavailable, and a fixed trust policy makes the retry succeed.
    #[error("cannot assume {role_arn} in account {account}: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
    AssumeRole {
        account: String,
        role_arn: String,
        code: Option<String>,
        message: String,
    },

    /// Too little of the invocation is left to start a step and still report: stopped between
    /// steps, so that Lambda's retry finishes the work rather than Lambda cutting a step short.
    #[error(
        "stopped before {step} on {target}: {left_ms} ms of the invocation left, {reserve_ms} ms kept in hand; a retry finishes the remaining steps"
    )]
    DeadlineNear {
        step: String,
        target: String,
        left_ms: u128,
        reserve_ms: u128,
    },

    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout { what: String, seconds: u64 },

    /// An AWS call answered, but not as it must for the remediation to be safe.
    #[error("{0}")]
    Unexpected(String),

    /// Some step failed. The report (logged in full) says what was done and what still needs doing.
    #[error("remediation failed: {0}")]
    RemediationFailed(String),
}

impl Error {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A bad input's field, as named from a level up (`[2].` for a batch's item, `event.` for
    /// an envelope's event); any other error as it is.
    pub fn under(self, prefix: &str) -> Self {
        match self {
            Self::BadInput { field, message } => Self::BadInput {
                field: format!("{prefix}{field}"),
                message,
            },
            other => other,
        }
    }

    pub fn aws<E, R>(service: &'static str, operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let (code, message) = code_and_message(&err);
        Self::Aws {
            service,
            operation,
            code,
            message,
        }
    }

    /// The AWS error code, where the failure came from AWS with one.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Self::Aws { code, .. } | Self::AssumeRole { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// A stable name for Lambda's `errorType` and for the report.
    pub fn kind(&self) -> String {
        match self {
            Self::BadInput { .. } => "BadInput".into(),
            Self::Config { .. } => "BadConfig".into(),
            Self::Aws {
                service,
                operation,
                code,
                ..
            } => {
                format!("Aws.{service}.{operation}.{}", code.as_deref().unwrap_or("NoCode"))
            }
            Self::AssumeRole { code, .. } => format!("AssumeRole.{}", code.as_deref().unwrap_or("NoCode")),
            Self::DeadlineNear { .. } => "DeadlineNear".into(),
            Self::Timeout { .. } => "Timeout".into(),
            Self::Unexpected(_) => "Unexpected".into(),
            Self::RemediationFailed(_) => "RemediationFailed".into(),
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(err: Error) -> Self {
        Diagnostic {
            error_type: err.kind(),
            error_message: err.to_string(),
        }
    }
}

/// An SDK error's AWS error code, and its message (or, without one, the whole error chain).
pub fn code_and_message<E, R>(err: &SdkError<E, R>) -> (Option<String>, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = match err.message() {
        Some(m) => m.to_owned(),
        None => DisplayErrorContext(err).to_string(),
    };
    (err.code().map(str::to_owned), message)
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
