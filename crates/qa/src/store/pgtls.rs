//! TLS for the PostgreSQL store over rustls (ring), with libpq's `sslmode` and `sslrootcert`
//! read from the URL: `disable` (plaintext), `prefer` (the default: TLS when the server offers
//! it, else plaintext), `require` (TLS or refuse), `verify-ca` (and the certificate chains to the
//! CA) and `verify-full` (and names the host). The CA is `sslrootcert=FILE` (PEM), or the system
//! roots (`sslrootcert=system`, or a `verify-*` mode without a file). The URL handed to the
//! PostgreSQL client keeps its other parameters; `sslmode` is mapped to what it understands.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use super::url::SslMode;
use super::url::{PgTlsParams, RootCert};

/// How to connect: plaintext only, or through a rustls connector.
pub enum Connector {
    Plain,
    Tls(RustlsConnect),
}

/// The connector for `params` (the URL's sslmode/sslrootcert): a clear error when the CA
/// file cannot be read or holds no certificate.
pub fn connector(params: &PgTlsParams) -> Result<Connector, String> {
    if params.mode == SslMode::Disable {
        return Ok(Connector::Plain);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match (&params.root_cert, params.mode) {
        (Some(RootCert::File(path)), _) => Some(file_roots(path)?),
        (Some(RootCert::System), _) | (None, SslMode::VerifyCa | SslMode::VerifyFull) => {
            Some(system_roots()?)
        }
        (None, _) => None,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match roots {
        None => Arc::new(NoVerify(provider.clone())),
        Some(roots) => {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("TLS setup: {e}"))?;
            if params.mode == SslMode::VerifyFull {
                webpki as Arc<dyn ServerCertVerifier>
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // PostgreSQL 17 checks the ALPN a client offers; older servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Connector::Tls(RustlsConnect {
        config: Arc::new(config),
    }))
}

fn file_roots(path: &Path) -> Result<RootCertStore, String> {
    let show = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the CA file {show}: {e}"))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| format!("the CA file {show} is not PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("the CA file {show} holds a bad certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("the CA file {show} holds no certificate"));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(
            "no system CA certificates found: give the server's CA with sslrootcert=FILE in the URL or --db-ca FILE"
                .to_owned(),
        );
    }
    Ok(roots)
}

/// `require`/`prefer` without a CA: encrypted, the certificate not checked (as libpq does).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA; the host name is not checked. webpki checks
/// the chain before the name, so a name mismatch means the chain already passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Makes one [`RustlsConnector`] per host the client tries.
#[derive(Clone)]
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
}

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type TlsConnect = RustlsConnector;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnector> {
        let name = ServerName::try_from(domain.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{domain:?} is not a host name TLS can check"),
            )
        })?;
        Ok(RustlsConnector {
            config: self.config.clone(),
            name,
        })
    }
}

/// The TLS handshake with one host.
pub struct RustlsConnector {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<PgTlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(PgTlsStream(tls))
        })
    }
}

/// A TLS session with the server.
pub struct PgTlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for PgTlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM then runs without channel binding (tokio-postgres' `channel_binding=prefer`).
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgTlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgTlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A connection error with its causes, and a hint for the usual TLS mistakes.
pub fn describe(e: &postgres::Error, params: &PgTlsParams) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_owned();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    let ca = match &params.root_cert {
        Some(RootCert::File(p)) => format!("the CA in {}", p.display()),
        _ => "the system's trusted CAs".to_owned(),
    };
    if text.contains("UnknownIssuer") || text.contains("BadSignature") {
        text.push_str(&format!(
            " (the server's certificate is not signed by {ca}: give its CA with sslrootcert=FILE or --db-ca FILE)"
        ));
    } else if text.contains("NotValidForName") {
        text.push_str(" (the server's certificate does not name this host: connect by a name it carries, or use sslmode=verify-ca)");
    } else if text.contains("server does not support TLS") {
        text.push_str(&format!(
            " (sslmode={} needs TLS: turn on ssl in postgresql.conf, or use sslmode=prefer to allow plaintext)",
            params.mode.as_str()
        ));
    }
    text
}
