//! TLS to name servers, brokers and the 5.x proxy (`tls` feature).
//!
//! The Java client turns TLS on with `tls.enable=true` (or
//! `setUseTLS(true)`); here a [`TlsConfig`] on the client, producer or
//! consumer config does it, for every connection that config opens. The
//! encryption is [`rustls`] (with the `ring` provider); certificates and keys
//! are read from PEM files by `rustls-pki-types`.
//!
//! Unlike Java, whose client trusts any server certificate unless
//! `tls.client.authServer=true`, the server's certificate is always checked:
//! against the CA file given, else the system's trust store. Accepting any
//! certificate is an explicit switch for test clusters
//! ([`TlsConfigBuilder::accept_invalid_certs`]), never the default.
//!
//! # How a connection uses it
//! The TLS handshake runs in [`Connection::connect`](crate::net::Connection::connect),
//! on the caller's thread, before the reader thread starts, and within the
//! connect timeout (TCP connect and handshake together): a peer that stalls
//! mid-handshake gives [`Error::Tls`] with [`TlsErrorKind::Handshake`] when
//! the timeout runs out. Afterwards one `rustls` session is shared: the
//! reader thread reads raw bytes from its socket clone and decrypts them
//! under the session's lock; a writer takes the connection's write lock,
//! encrypts its frame under the session's lock (so records go out in
//! sequence order), releases the session and writes the bytes. Neither lock
//! is held while reading the socket, so many requests stay in flight and
//! the broker can still start requests of its own.
//!
//! ```no_run
//! use rocketmq_blocking::tls::TlsConfig;
//! use rocketmq_blocking::producer::ProducerConfig;
//!
//! let tls = TlsConfig::builder()
//!     .ca_file("/etc/rocketmq/ca.pem") // else the system's trust store
//!     .client_cert("/etc/rocketmq/client.pem", "/etc/rocketmq/client.key") // mutual TLS only
//!     .build()?;
//! let config = ProducerConfig::builder().group("orders").namesrv_addr("10.0.0.1:9876").tls(tls).build()?;
//! # Ok::<(), rocketmq_blocking::Error>(())
//! ```

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::env::{env_error, parse_env};
use crate::error::{Error, Result, TlsErrorKind};

/// `ROCKETMQ_TLS`: `1` / `true` turns TLS on, `0` / `false` off.
pub const ENV_TLS: &str = "ROCKETMQ_TLS";
/// `ROCKETMQ_TLS_CA_FILE`: PEM file of the CA certificates to trust.
pub const ENV_TLS_CA_FILE: &str = "ROCKETMQ_TLS_CA_FILE";
/// `ROCKETMQ_TLS_CERT_FILE`: PEM client certificate chain (mutual TLS).
pub const ENV_TLS_CERT_FILE: &str = "ROCKETMQ_TLS_CERT_FILE";
/// `ROCKETMQ_TLS_KEY_FILE`: PEM private key of that certificate.
pub const ENV_TLS_KEY_FILE: &str = "ROCKETMQ_TLS_KEY_FILE";
/// `ROCKETMQ_TLS_SERVER_NAME`: the name every server certificate must carry.
pub const ENV_TLS_SERVER_NAME: &str = "ROCKETMQ_TLS_SERVER_NAME";
/// `ROCKETMQ_TLS_INSECURE`: `1` / `true` accepts any server certificate (test clusters only).
pub const ENV_TLS_INSECURE: &str = "ROCKETMQ_TLS_INSECURE";

/// The variables [`TlsConfig::from_env`] reads.
pub const ENV_VARIABLES: &[&str] =
    &[ENV_TLS, ENV_TLS_CA_FILE, ENV_TLS_CERT_FILE, ENV_TLS_KEY_FILE, ENV_TLS_SERVER_NAME, ENV_TLS_INSECURE];

/// What a [`TlsConfig`] was built from (compared and printed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Settings {
    ca_file: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    server_name: Option<String>,
    accept_invalid_certs: bool,
}

/// TLS settings, with the certificates already loaded.
///
/// Build it with [`TlsConfig::builder`] or [`TlsConfig::from_env`]; files
/// are read by `build`, so a missing or malformed file is an
/// [`Error::Tls`] of kind [`TlsErrorKind::Config`] before anything connects.
#[derive(Clone)]
pub struct TlsConfig {
    settings: Settings,
    rustls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.settings.fmt(f)
    }
}

impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
    }
}

impl Eq for TlsConfig {}

/// Builds a [`TlsConfig`].
#[derive(Debug, Clone, Default)]
pub struct TlsConfigBuilder {
    settings: Settings,
}

impl TlsConfig {
    /// A builder: server certificates checked against the system's trust
    /// store, no client certificate, the server name taken from each address.
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder::default()
    }

    /// The TLS settings of the environment, or `None` when `ROCKETMQ_TLS` is
    /// unset or off (see [`ENV_VARIABLES`]). A file variable without
    /// `ROCKETMQ_TLS=1` is an [`Error::InvalidEnv`], so a half-done setup
    /// does not silently send in clear.
    pub fn from_env() -> Result<Option<TlsConfig>> {
        TlsConfig::from_env_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) reading from `lookup`.
    pub fn from_env_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<TlsConfig>> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let flag = |name: &str| -> Result<bool> {
            match get(name) {
                None => Ok(false),
                Some(v) if v == "1" => Ok(true),
                Some(v) if v == "0" => Ok(false),
                Some(v) => parse_env(name, &v.to_ascii_lowercase()),
            }
        };
        if !flag(ENV_TLS)? {
            if let Some(name) = ENV_VARIABLES[1..].iter().find(|n| get(n).is_some()) {
                return Err(env_error(name, &get(name).unwrap_or_default(), format!("is set but {ENV_TLS} is not 1")));
            }
            return Ok(None);
        }
        let mut b = TlsConfig::builder().accept_invalid_certs(flag(ENV_TLS_INSECURE)?);
        if let Some(ca) = get(ENV_TLS_CA_FILE) {
            b = b.ca_file(ca);
        }
        match (get(ENV_TLS_CERT_FILE), get(ENV_TLS_KEY_FILE)) {
            (Some(cert), Some(key)) => b = b.client_cert(cert, key),
            (None, None) => {}
            (Some(_), None) => {
                return Err(env_error(ENV_TLS_KEY_FILE, "", format!("is not set but {ENV_TLS_CERT_FILE} is")))
            }
            (None, Some(_)) => {
                return Err(env_error(ENV_TLS_CERT_FILE, "", format!("is not set but {ENV_TLS_KEY_FILE} is")))
            }
        }
        if let Some(name) = get(ENV_TLS_SERVER_NAME) {
            b = b.server_name(name);
        }
        b.build().map(Some)
    }

    /// The CA file, if one was given.
    pub fn ca_file(&self) -> Option<&Path> {
        self.settings.ca_file.as_deref()
    }

    /// The client certificate and key files, if given (mutual TLS).
    pub fn client_cert(&self) -> Option<(&Path, &Path)> {
        self.settings.client_cert.as_ref().map(|(c, k)| (c.as_path(), k.as_path()))
    }

    /// The server name override, if set.
    pub fn server_name(&self) -> Option<&str> {
        self.settings.server_name.as_deref()
    }

    /// Whether any server certificate is accepted (test clusters only).
    pub fn accepts_invalid_certs(&self) -> bool {
        self.settings.accept_invalid_certs
    }
}

impl TlsConfigBuilder {
    /// Trust the CA certificates of this PEM file (instead of the system's
    /// trust store). Java: `tls.client.trustCertPath`.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.ca_file = Some(path.into());
        self
    }

    /// Present this certificate chain and private key (PEM: PKCS#8, PKCS#1
    /// or SEC1) to servers that ask for one (`tls.server.need.client.auth`).
    /// Java: `tls.client.certPath` / `tls.client.keyPath`.
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.settings.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// The name every server certificate must carry (default: the host of
    /// the address connected to, an IP address or a DNS name).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.settings.server_name = Some(name.into());
        self
    }

    /// Accept any server certificate, unchecked (default false). Only for
    /// test clusters with throw-away certificates: it gives up protection
    /// against anyone in the path. Signatures of the handshake are still
    /// checked, so the connection is still encrypted.
    pub fn accept_invalid_certs(mut self, accept: bool) -> Self {
        self.settings.accept_invalid_certs = accept;
        self
    }

    /// Reads the files and builds the settings.
    pub fn build(self) -> Result<TlsConfig> {
        let s = self.settings;
        if let Some(name) = &s.server_name {
            ServerName::try_from(name.as_str()).map_err(|e| config_error(format!("server name {name:?}: {e}")))?;
        }
        let provider = Arc::new(ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error(e.to_string()))?;
        let builder = if s.accept_invalid_certs {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        } else {
            builder.with_root_certificates(trust_roots(s.ca_file.as_deref())?)
        };
        let config = match &s.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| file_error(cert, e))?;
                if chain.is_empty() {
                    return Err(file_error(cert, "no CERTIFICATE in the file"));
                }
                let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| file_error(key, e))?
            }
        };
        Ok(TlsConfig { settings: s, rustls: Arc::new(config) })
    }
}

fn config_error(detail: impl Into<String>) -> Error {
    Error::Tls { addr: String::new(), kind: TlsErrorKind::Config, detail: detail.into() }
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> Error {
    config_error(format!("{}: {e}", path.display()))
}

/// The CA certificates of `ca_file`, else the system's trust store.
fn trust_roots(ca_file: Option<&Path>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| file_error(path, e))? {
                let cert = cert.map_err(|e| file_error(path, e))?;
                roots.add(cert).map_err(|e| file_error(path, e))?;
            }
            if roots.is_empty() {
                return Err(file_error(path, "no CERTIFICATE in the file"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(config_error("no CA file given and no certificate in the system's trust store"));
            }
        }
    }
    Ok(roots)
}

/// Accepts any certificate but still checks the handshake's signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Classifies a `rustls` error.
fn kind_of(e: &rustls::Error) -> TlsErrorKind {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => TlsErrorKind::UnknownCa,
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            TlsErrorKind::NameMismatch
        }
        rustls::Error::InvalidCertificate(_) => TlsErrorKind::BadCertificate,
        rustls::Error::AlertReceived(_) => TlsErrorKind::Refused,
        _ => TlsErrorKind::Handshake,
    }
}

fn tls_error(addr: &str, kind: TlsErrorKind, detail: impl Into<String>) -> Error {
    Error::Tls { addr: addr.to_string(), kind, detail: detail.into() }
}

/// An I/O error of the handshake as a typed error: a `rustls` error inside
/// is classified, a timeout or end of stream is a handshake failure.
fn handshake_io_error(addr: &str, e: std::io::Error, timeout: std::time::Duration) -> Error {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return tls_error(addr, kind_of(inner), inner.to_string());
    }
    let detail = match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("no complete handshake within the connect timeout of {timeout:?}")
        }
        _ => format!("{e}"),
    };
    tls_error(addr, TlsErrorKind::Handshake, detail)
}

/// Runs the client handshake on `stream`, finishing before `deadline`
/// (socket timeouts are set for each step from the time left).
pub(crate) fn handshake(
    config: &TlsConfig,
    addr: &str,
    stream: &mut TcpStream,
    deadline: Instant,
    timeout: std::time::Duration,
) -> Result<ClientConnection> {
    let name = match &config.settings.server_name {
        Some(n) => ServerName::try_from(n.clone()).map_err(|e| config_error(e.to_string()))?,
        None => server_name_of(addr)?,
    };
    let mut conn = ClientConnection::new(Arc::clone(&config.rustls), name)
        .map_err(|e| tls_error(addr, TlsErrorKind::Config, e.to_string()))?;
    let left = || {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(handshake_io_error(addr, std::io::ErrorKind::TimedOut.into(), timeout))
        } else {
            Ok(left)
        }
    };
    let io_error = |e| handshake_io_error(addr, e, timeout);
    loop {
        while conn.wants_write() {
            stream.set_write_timeout(Some(left()?)).map_err(io_error)?;
            conn.write_tls(stream).map_err(io_error)?;
        }
        if !conn.is_handshaking() {
            return Ok(conn);
        }
        stream.set_read_timeout(Some(left()?)).map_err(io_error)?;
        if conn.read_tls(stream).map_err(io_error)? == 0 {
            return Err(tls_error(
                addr,
                TlsErrorKind::Handshake,
                "the peer closed the connection during the handshake (does it speak TLS, and does it want a client certificate?)",
            ));
        }
        if let Err(e) = conn.process_new_packets() {
            // Tell the peer why (an alert), as far as the socket lets us.
            let _ = conn.write_tls(stream);
            return Err(tls_error(addr, kind_of(&e), e.to_string()));
        }
    }
}

/// The name a certificate must carry for `addr` (`host:port`, `[v6]:port`).
fn server_name_of(addr: &str) -> Result<ServerName<'static>> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_string())
        .map_err(|e| tls_error(addr, TlsErrorKind::Config, format!("host {host:?} is not a server name: {e}")))
}

/// Encrypts `plain` into TLS records appended to `out`.
pub(crate) fn seal(conn: &mut ClientConnection, plain: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut rest = plain;
    loop {
        while conn.wants_write() {
            conn.write_tls(out)?;
        }
        if rest.is_empty() {
            return Ok(());
        }
        let n = conn.writer().write(rest)?;
        if n == 0 && !conn.wants_write() {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        rest = &rest[n..];
    }
}

/// What [`open`] found besides plaintext.
pub(crate) struct Opened {
    /// The peer sent close_notify: no more data will come.
    pub peer_closed: bool,
    /// The session has records to send (an alert, a key update answer).
    pub wants_write: bool,
}

/// Decrypts the TLS bytes `cipher` read from the socket, appending the
/// plaintext to `plain`. An error is a corrupt or refused record.
pub(crate) fn open(
    conn: &mut ClientConnection,
    mut cipher: &[u8],
    plain: &mut Vec<u8>,
) -> std::result::Result<Opened, (TlsErrorKind, String)> {
    let mut peer_closed = false;
    loop {
        peer_closed |= drain(conn, plain)?;
        if cipher.is_empty() {
            return Ok(Opened { peer_closed, wants_write: conn.wants_write() });
        }
        conn.read_tls(&mut cipher).map_err(|e| (TlsErrorKind::Corrupt, e.to_string()))?;
        conn.process_new_packets().map_err(|e| {
            let kind = match kind_of(&e) {
                TlsErrorKind::Refused => TlsErrorKind::Refused,
                _ => TlsErrorKind::Corrupt,
            };
            (kind, e.to_string())
        })?;
    }
}

/// Moves the plaintext the session holds to `plain`; true when the peer
/// has closed the TLS session.
pub(crate) fn drain(
    conn: &mut ClientConnection,
    plain: &mut Vec<u8>,
) -> std::result::Result<bool, (TlsErrorKind, String)> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match conn.reader().read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => plain.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err((TlsErrorKind::Corrupt, e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        let map: HashMap<_, _> = vars.iter().copied().collect();
        move |name| map.get(name).map(|v| v.to_string())
    }

    #[test]
    fn env_off_unless_asked() {
        assert!(TlsConfig::from_env_lookup(env(&[])).unwrap().is_none());
        assert!(TlsConfig::from_env_lookup(env(&[(ENV_TLS, "0")])).unwrap().is_none());
        let err = TlsConfig::from_env_lookup(env(&[(ENV_TLS_CA_FILE, "/tmp/ca.pem")])).unwrap_err();
        assert!(matches!(&err, Error::InvalidEnv { variable, .. } if variable == ENV_TLS_CA_FILE), "{err:?}");
        let err = TlsConfig::from_env_lookup(env(&[(ENV_TLS, "yes")])).unwrap_err();
        assert!(matches!(&err, Error::InvalidEnv { variable, .. } if variable == ENV_TLS), "{err:?}");
        let err = TlsConfig::from_env_lookup(env(&[(ENV_TLS, "1"), (ENV_TLS_CERT_FILE, "/tmp/c.pem")])).unwrap_err();
        assert!(matches!(&err, Error::InvalidEnv { variable, .. } if variable == ENV_TLS_KEY_FILE), "{err:?}");
    }

    #[test]
    fn env_insecure_and_missing_files() {
        let c = TlsConfig::from_env_lookup(env(&[(ENV_TLS, "true"), (ENV_TLS_INSECURE, "1")])).unwrap().unwrap();
        assert!(c.accepts_invalid_certs());
        assert!(!TlsConfig::builder().accept_invalid_certs(false).settings.accept_invalid_certs);
        let err = TlsConfig::builder().ca_file("/nonexistent/ca.pem").build().unwrap_err();
        assert!(
            matches!(&err, Error::Tls { kind: TlsErrorKind::Config, detail, .. } if detail.contains("/nonexistent/ca.pem")),
            "{err:?}"
        );
    }

    #[test]
    fn server_names_from_addresses() {
        assert!(matches!(server_name_of("127.0.0.1:9876").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(server_name_of("[::1]:9876").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(server_name_of("broker-a.example:10911").unwrap(), ServerName::DnsName(_)));
        assert!(TlsConfig::builder().accept_invalid_certs(true).server_name("bad name!").build().is_err());
    }
}
