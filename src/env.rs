//! Reading settings from environment variables (shared by the producer and
//! consumer configs).

use crate::error::Error;

/// A typed error naming the variable, its value and why it is refused.
pub(crate) fn env_error(variable: &str, value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidEnv { variable: variable.to_string(), value: value.to_string(), reason: reason.into() }
}

/// Parses a variable's value, or names the variable in the error.
pub(crate) fn parse_env<T: std::str::FromStr>(variable: &str, value: &str) -> Result<T, Error> {
    value.parse().map_err(|_| env_error(variable, value, format!("not a valid {}", std::any::type_name::<T>())))
}
