//! Access control: credentials and request signatures (the `acl` feature).
//!
//! A broker with access control (4.x ACL 1.0, `aclEnable=true`; 5.x ACL
//! 2.0, `authenticationEnabled=true`) checks a signature on every request,
//! computed the way the Java client's `AclClientRPCHook` does it:
//!
//! 1. the ext fields `AccessKey` and, when there is one, `SecurityToken` are
//!    added to the request's other ext fields;
//! 2. the values of all ext fields except `Signature`, in the order of their
//!    keys, are concatenated (UTF-8) and the body bytes appended;
//! 3. `Signature` = Base64(HMAC-SHA1(secret key, those bytes)).
//!
//! The broker rebuilds the same bytes from the fields it receives, so the
//! signature must be computed last, over the fields as sent. A
//! [`Connection`](crate::net::Connection) whose
//! [`ConnectionConfig`](crate::net::ConnectionConfig) holds [`Credentials`]
//! signs every request it sends (not its answers to requests the broker
//! starts, which the broker does not check).
//!
//! A refused signature or an unknown user ends in
//! [`Error::Authentication`], a resource the
//! user may not use in [`Error::Authorization`].

use std::fmt;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::env::env_error;
use crate::error::{Error, Result};
use crate::protocol::RemotingCommand;

/// Ext field holding the access key.
pub const ACCESS_KEY_FIELD: &str = "AccessKey";
/// Ext field holding the signature.
pub const SIGNATURE_FIELD: &str = "Signature";
/// Ext field holding the optional security token.
pub const SECURITY_TOKEN_FIELD: &str = "SecurityToken";

/// Environment variable of the access key.
pub const ENV_ACCESS_KEY: &str = "ROCKETMQ_ACCESS_KEY";
/// Environment variable of the secret key.
pub const ENV_SECRET_KEY: &str = "ROCKETMQ_SECRET_KEY";
/// Environment variable of the optional security token.
pub const ENV_SECURITY_TOKEN: &str = "ROCKETMQ_SECURITY_TOKEN";

const REDACTED: &str = "<redacted>";

/// An access key, its secret key and an optional security token (Java
/// `SessionCredentials`).
///
/// `Debug` shows the access key only; the secret key and the token never
/// appear in `Debug` output or in an error message.
///
/// ```
/// use rocketmq_blocking::acl::Credentials;
///
/// let c = Credentials::new("app-user", "app-secret")?;
/// assert_eq!(c.access_key(), "app-user");
/// assert!(!format!("{c:?}").contains("app-secret"));
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key: String,
    secret_key: String,
    security_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &REDACTED)
            .field("security_token", &self.security_token.as_ref().map(|_| REDACTED))
            .finish()
    }
}

impl Credentials {
    /// Credentials of a user; both keys must be non-empty.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Result<Credentials> {
        let (access_key, secret_key) = (access_key.into(), secret_key.into());
        if access_key.trim().is_empty() {
            return Err(Error::invalid("credentials", "the access key is empty"));
        }
        if secret_key.is_empty() {
            return Err(Error::invalid("credentials", "the secret key is empty"));
        }
        Ok(Credentials { access_key, secret_key, security_token: None })
    }

    /// Adds a security token (sent as the `SecurityToken` ext field and signed).
    pub fn with_security_token(mut self, token: impl Into<String>) -> Credentials {
        self.security_token = Some(token.into()).filter(|t| !t.is_empty());
        self
    }

    /// The access key (user name in ACL 2.0).
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The security token, if any.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// Credentials from `ROCKETMQ_ACCESS_KEY`, `ROCKETMQ_SECRET_KEY` and
    /// (optional) `ROCKETMQ_SECURITY_TOKEN`; `None` when neither key is set.
    /// Only one of the two keys set is an [`Error::InvalidEnv`] (whose value
    /// never shows a secret).
    pub fn from_env() -> Result<Option<Credentials>> {
        Credentials::from_env_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) reading from `lookup`.
    pub fn from_env_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Credentials>> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let (access, secret) = (get(ENV_ACCESS_KEY), get(ENV_SECRET_KEY));
        let credentials = match (access, secret) {
            (None, None) => return Ok(None),
            (Some(a), None) => {
                return Err(env_error(ENV_SECRET_KEY, "", format!("is not set but {ENV_ACCESS_KEY}={a:?} is")))
            }
            (None, Some(_)) => {
                return Err(env_error(ENV_ACCESS_KEY, "", format!("is not set but {ENV_SECRET_KEY} is")))
            }
            (Some(a), Some(s)) => Credentials::new(a.trim(), s).map_err(|_| env_error(ENV_ACCESS_KEY, "", "empty"))?,
        };
        Ok(Some(match get(ENV_SECURITY_TOKEN) {
            Some(token) => credentials.with_security_token(token),
            None => credentials,
        }))
    }

    /// Adds `AccessKey`, `SecurityToken` (if any) and `Signature` to `cmd`.
    /// A `Signature` already there is replaced.
    pub fn sign(&self, cmd: &mut RemotingCommand) {
        cmd.ext_fields.remove(SIGNATURE_FIELD);
        cmd.ext_fields.insert(ACCESS_KEY_FIELD.to_string(), self.access_key.clone());
        if let Some(token) = &self.security_token {
            cmd.ext_fields.insert(SECURITY_TOKEN_FIELD.to_string(), token.clone());
        }
        let signature = signature(&self.secret_key, cmd);
        cmd.ext_fields.insert(SIGNATURE_FIELD.to_string(), signature);
    }
}

/// Base64(HMAC-SHA1(secret, values of the ext fields but `Signature` in key
/// order, then the body)).
fn signature(secret: &str, cmd: &RemotingCommand) -> String {
    // HMAC takes keys of any length, so this never fails; were it to, an
    // empty signature makes the broker refuse the request (no panic).
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    for (key, value) in &cmd.ext_fields {
        if key != SIGNATURE_FIELD {
            mac.update(value.as_bytes());
        }
    }
    mac.update(&cmd.body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RemotingCommand {
        let mut cmd = RemotingCommand::request(10);
        cmd.ext_fields.insert("topic".into(), "T".into());
        cmd.ext_fields.insert("b".into(), "x".into());
        cmd.body = b"hello".to_vec();
        cmd
    }

    #[test]
    fn signs_sorted_values_then_body() {
        let mut cmd = request();
        Credentials::new("rocketmq2", "12345678").unwrap().sign(&mut cmd);
        assert_eq!(cmd.ext_fields[ACCESS_KEY_FIELD], "rocketmq2");
        assert!(!cmd.ext_fields.contains_key(SECURITY_TOKEN_FIELD));
        // Python: base64(hmac.new(b"12345678", b"rocketmq2" + b"x" + b"T" + b"hello", sha1).digest())
        assert_eq!(cmd.ext_fields[SIGNATURE_FIELD], "R0UGsB/E1y77qaTRbjPto3VqcQI=");
    }

    #[test]
    fn token_is_signed_and_resigning_is_stable() {
        let creds = Credentials::new("ak-user", "secret!").unwrap().with_security_token("tok");
        let mut cmd = request();
        creds.sign(&mut cmd);
        assert_eq!(cmd.ext_fields[SECURITY_TOKEN_FIELD], "tok");
        // Python: base64(hmac.new(b"secret!", b"ak-user" + b"tok" + b"x" + b"T" + b"hello", sha1).digest())
        assert_eq!(cmd.ext_fields[SIGNATURE_FIELD], "3G5wo6sP0SanWHMkrRH1KLfbFsE=");
        let first = cmd.clone();
        creds.sign(&mut cmd);
        assert_eq!(cmd, first);
    }

    #[test]
    fn empty_body_and_fields() {
        let mut cmd = RemotingCommand::request(34);
        Credentials::new("a", "k").unwrap().sign(&mut cmd);
        // Python: base64(hmac.new(b"k", b"a", sha1).digest())
        assert_eq!(cmd.ext_fields[SIGNATURE_FIELD], "QOfUQcrbF7B/BQNBqiOmgg7YHIs=");
    }

    #[test]
    fn debug_and_errors_hide_the_secret() {
        let c = Credentials::new("user", "TOPSECRET").unwrap().with_security_token("TOKENVALUE");
        let debug = format!("{c:?}");
        assert!(debug.contains("user"), "{debug}");
        assert!(!debug.contains("TOPSECRET") && !debug.contains("TOKENVALUE"), "{debug}");
        assert!(Credentials::new("", "x").is_err());
        assert!(Credentials::new("x", "").is_err());

        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        assert_eq!(Credentials::from_env_lookup(env(&[])).unwrap(), None);
        let err = Credentials::from_env_lookup(env(&[(ENV_SECRET_KEY, "TOPSECRET")])).unwrap_err();
        assert!(matches!(&err, Error::InvalidEnv { variable, .. } if variable == ENV_ACCESS_KEY), "{err:?}");
        assert!(!format!("{err} {err:?}").contains("TOPSECRET"));
        let err = Credentials::from_env_lookup(env(&[(ENV_ACCESS_KEY, "user")])).unwrap_err();
        assert!(matches!(&err, Error::InvalidEnv { variable, .. } if variable == ENV_SECRET_KEY), "{err:?}");
        let c = Credentials::from_env_lookup(env(&[
            (ENV_ACCESS_KEY, "user"),
            (ENV_SECRET_KEY, "TOPSECRET"),
            (ENV_SECURITY_TOKEN, "TOKENVALUE"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((c.access_key(), c.security_token()), ("user", Some("TOKENVALUE")));
    }
}
