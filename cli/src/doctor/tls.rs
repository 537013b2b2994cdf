//! TLS for the doctor: the trust store (Mozilla's roots from `webpki-roots`, plus the PEM
//! bundle of `--ca-bundle`), the SMTP STARTTLS probe, the HTTPS fetch and TLSA matching.
//!
//! Certificates are always verified against that store and the expected host name; there is
//! no switch to turn verification off. The SMTP probe records the chain the server presented
//! while the verifier judges it, so that a TLSA record can be compared with the certificate
//! even when the certificate fails PKIX verification.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_lc_rs::digest;
use hickory_resolver::proto::rr::rdata::TLSA;
use hickory_resolver::proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest body read from an HTTPS page.
const MAX_BODY: usize = 1 << 20;

/// The roots the doctor trusts.
#[derive(Debug, Clone)]
pub struct Trust {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl Trust {
    /// Mozilla's roots, plus every certificate in the PEM file `ca_bundle`.
    ///
    /// Fails when the bundle cannot be read, holds no certificate, or holds one that is not a
    /// usable trust anchor.
    pub fn load(ca_bundle: Option<&Path>) -> anyhow::Result<Self> {
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = ca_bundle {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .with_context(|| format!("could not read the CA bundle {}", path.display()))?
                .collect::<Result<_, _>>()
                .with_context(|| format!("{} is not a PEM certificate bundle", path.display()))?;
            if certs.is_empty() {
                bail!("{} holds no PEM certificate", path.display());
            }
            for cert in certs {
                roots.add(cert).with_context(|| {
                    format!("a certificate in {} is not a usable CA certificate", path.display())
                })?;
            }
        }
        Ok(Self {
            roots: Arc::new(roots),
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        })
    }

    fn verifier(&self) -> anyhow::Result<Arc<WebPkiServerVerifier>> {
        WebPkiServerVerifier::builder_with_provider(self.roots.clone(), self.provider.clone())
            .build()
            .context("could not build the certificate verifier")
    }

    /// A client configuration that verifies against the roots, for HTTPS.
    ///
    /// Fails when the TLS provider cannot be set up.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        Ok(ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("could not set up TLS")?
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth())
    }

    fn recording_config(&self) -> anyhow::Result<(ClientConfig, Arc<Recorder>)> {
        let recorder = Arc::new(Recorder { inner: self.verifier()?, chain: Mutex::default() });
        // The custom verifier hook is the way rustls offers to see the presented chain; every
        // decision is still the WebPKI verifier's.
        let config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("could not set up TLS")?
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
        Ok((config, recorder))
    }
}

/// The WebPKI verifier, keeping a copy of the chain it was shown.
#[derive(Debug)]
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    chain: Mutex<Vec<CertificateDer<'static>>>,
}

impl Recorder {
    fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.chain.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        *self.chain.lock().unwrap_or_else(PoisonError::into_inner) = chain;
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What the SMTP probe found on one port.
#[derive(Debug, Clone)]
pub enum Smtp {
    /// No connection, no greeting, or the dialogue broke off; why.
    Unreachable(String),
    /// The server answered EHLO without STARTTLS.
    NoStartTls,
    /// STARTTLS was offered but the handshake or the certificate failed; why, and the chain
    /// the server presented (empty when the handshake failed before it).
    TlsFailed(String, Vec<CertificateDer<'static>>),
    /// STARTTLS worked and the certificate is valid for the host name.
    Secured(Secured),
}

/// A verified TLS session.
#[derive(Debug, Clone)]
pub struct Secured {
    /// The presented chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The negotiated protocol (`TLSv1_3`).
    pub protocol: String,
}

async fn reply(reader: &mut BufReader<TcpStream>) -> anyhow::Result<(u16, Vec<String>)> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            bail!("the server closed the connection");
        }
        let line = line.trim_end().to_owned();
        let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
        let Some(code) = code else { bail!("not an SMTP reply: {line:?}") };
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line.get(4..).unwrap_or_default().to_owned());
        if last || lines.len() > 100 {
            return Ok((code, lines));
        }
    }
}

async fn command(
    reader: &mut BufReader<TcpStream>,
    line: &str,
) -> anyhow::Result<(u16, Vec<String>)> {
    reader.get_mut().write_all(format!("{line}\r\n").as_bytes()).await?;
    reply(reader).await
}

/// Connects to `ip:port`, reads the greeting, sends EHLO and, if offered, STARTTLS, and
/// verifies the certificate for `host`. Every step waits at most `timeout`.
pub async fn probe_smtp(
    trust: &Trust,
    ip: IpAddr,
    port: u16,
    host: &str,
    timeout: Duration,
) -> Smtp {
    match tokio::time::timeout(timeout * 3, probe_smtp_inner(trust, ip, port, host, timeout)).await
    {
        Ok(smtp) => smtp,
        Err(_) => {
            Smtp::Unreachable(format!("no complete answer within {}s", timeout.as_secs() * 3))
        }
    }
}

async fn probe_smtp_inner(
    trust: &Trust,
    ip: IpAddr,
    port: u16,
    host: &str,
    timeout: Duration,
) -> Smtp {
    let addr = SocketAddr::new(ip, port);
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Smtp::Unreachable(format!("could not connect to {addr}: {e}")),
        Err(_) => {
            return Smtp::Unreachable(format!(
                "no connection to {addr} within {}s",
                timeout.as_secs()
            ));
        }
    };
    let mut reader = BufReader::new(stream);
    match reply(&mut reader).await {
        Ok((220, _)) => {}
        Ok((code, lines)) => {
            return Smtp::Unreachable(format!("greeting {code} {}", lines.join(" ")));
        }
        Err(e) => return Smtp::Unreachable(format!("no SMTP greeting: {e}")),
    }
    let capabilities = match command(&mut reader, "EHLO doctor.suppressions.invalid").await {
        Ok((250, lines)) => lines,
        Ok((code, lines)) => {
            return Smtp::Unreachable(format!("EHLO refused: {code} {}", lines.join(" ")));
        }
        Err(e) => return Smtp::Unreachable(format!("EHLO failed: {e}")),
    };
    if !capabilities.iter().any(|c| c.eq_ignore_ascii_case("STARTTLS")) {
        let _ = command(&mut reader, "QUIT").await;
        return Smtp::NoStartTls;
    }
    match command(&mut reader, "STARTTLS").await {
        Ok((220, _)) => {}
        Ok((code, lines)) => {
            return Smtp::TlsFailed(
                format!("STARTTLS refused: {code} {}", lines.join(" ")),
                Vec::new(),
            );
        }
        Err(e) => return Smtp::TlsFailed(format!("STARTTLS failed: {e}"), Vec::new()),
    }
    if !reader.buffer().is_empty() {
        // RFC 3207: nothing may follow the 220 before the handshake (command injection guard).
        return Smtp::TlsFailed("the server sent data after the STARTTLS reply".into(), Vec::new());
    }
    let stream = reader.into_inner();
    let (config, recorder) = match trust.recording_config() {
        Ok(pair) => pair,
        Err(e) => return Smtp::TlsFailed(format!("{e:#}"), Vec::new()),
    };
    let Ok(name) = ServerName::try_from(host.to_owned()) else {
        return Smtp::TlsFailed(format!("{host:?} is not a valid TLS server name"), Vec::new());
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match connector.connect(name, stream).await {
        Ok(mut tls) => {
            let protocol =
                tls.get_ref().1.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
            let _ = tls.write_all(b"QUIT\r\n").await;
            let _ = tls.shutdown().await;
            Smtp::Secured(Secured { chain: recorder.chain(), protocol })
        }
        Err(e) => Smtp::TlsFailed(e.to_string(), recorder.chain()),
    }
}

/// A fetched HTTPS page.
#[derive(Debug, Clone)]
pub struct Page {
    /// The HTTP status.
    pub status: u16,
    /// The URL after redirects.
    pub url: String,
    /// The body, at most 1 MiB, lossily decoded.
    pub body: String,
}

/// `https://host[:port]path`, the port left out when it is 443.
pub fn https_url(host: &str, port: u16, path: &str) -> String {
    if port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{port}{path}")
    }
}

/// Fetches `https://host[:port]/path` from `ip` (the name is not looked up again, so the page
/// comes from the host being checked), following up to five redirects.
///
/// Fails when the connection, the TLS handshake (certificate) or the request fails; the
/// error's last cause is the TLS or I/O reason.
pub async fn fetch(
    trust: &Trust,
    host: &str,
    ip: IpAddr,
    port: u16,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<Page> {
    let url = https_url(host, port, path);
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(trust.client_config()?)
        .resolve(host, SocketAddr::new(ip, port))
        .redirect(reqwest::redirect::Policy::limited(5))
        .timeout(timeout)
        .user_agent(concat!("suppressions-doctor/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("could not build the HTTPS client")?;
    let mut response = client.get(&url).send().await.map_err(anyhow::Error::from)?;
    let status = response.status().as_u16();
    let final_url = response.url().to_string();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_BODY {
            body.truncate(MAX_BODY);
            break;
        }
    }
    Ok(Page { status, url: final_url, body: String::from_utf8_lossy(&body).into_owned() })
}

/// The innermost cause of an error, where TLS and I/O failures say what went wrong.
pub fn root_cause(err: &anyhow::Error) -> String {
    err.chain().last().map(ToString::to_string).unwrap_or_default()
}

fn spki(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.tbs_certificate.subject_pki.raw.to_vec())
}

/// The end of a certificate's validity, as `YYYY-MM-DD`.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let at = parsed.validity().not_after.timestamp();
    chrono::DateTime::from_timestamp(at, 0).map(|t| t.format("%Y-%m-%d").to_string())
}

/// Days until a certificate expires (negative once expired).
pub fn days_left(cert: &CertificateDer<'_>, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some((parsed.validity().not_after.timestamp() - now.timestamp()) / 86_400)
}

fn association(
    cert: &CertificateDer<'_>,
    selector: Selector,
    matching: Matching,
) -> Option<Vec<u8>> {
    let selected = match selector {
        Selector::Full => cert.as_ref().to_vec(),
        Selector::Spki => spki(cert)?,
        _ => return None,
    };
    match matching {
        Matching::Raw => Some(selected),
        Matching::Sha256 => Some(digest::digest(&digest::SHA256, &selected).as_ref().to_vec()),
        Matching::Sha512 => Some(digest::digest(&digest::SHA512, &selected).as_ref().to_vec()),
        _ => None,
    }
}

/// Whether a TLSA record matches the chain (leaf first): usages 1 and 3 against the leaf,
/// usages 0 and 2 against any certificate of the chain.
pub fn tlsa_matches(record: &TLSA, chain: &[CertificateDer<'_>]) -> bool {
    let candidates: &[CertificateDer<'_>] = match record.cert_usage {
        CertUsage::PkixEe | CertUsage::DaneEe => chain.get(..1).unwrap_or_default(),
        CertUsage::PkixTa | CertUsage::DaneTa => chain,
        _ => &[],
    };
    candidates.iter().any(|cert| {
        association(cert, record.selector, record.matching).is_some_and(|d| d == record.cert_data)
    })
}

/// The `3 1 1 <hex>` (DANE-EE, public key, SHA-256) record data for a leaf certificate.
pub fn dane_ee(leaf: &CertificateDer<'_>) -> Option<String> {
    let data = association(leaf, Selector::Spki, Matching::Sha256)?;
    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("3 1 1 {hex}"))
}

/// A TLSA record as zone-file data (`3 1 1 ab12...`).
pub fn tlsa_text(record: &TLSA) -> String {
    let hex: String = record.cert_data.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{} {} {} {hex}",
        u8::from(record.cert_usage),
        u8::from(record.selector),
        u8::from(record.matching)
    )
}
