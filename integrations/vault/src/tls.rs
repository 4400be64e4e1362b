//! TLS for `https` Vault addresses: extra CA certificates (`ca_file`, every PEM file in
//! `ca_path`), a client certificate (`cert_file` + `key_file`), `tls_skip_verify`, and
//! `tls_server_name` (the name Vault's certificate must carry when it is not the address's
//! host). reqwest's own settings serve all but the last; with a server name the rustls
//! configuration is built here, with a verifier that checks the certificate against that name.

use crate::VaultError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The agent `vault {}` block's TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub ca_file: Option<PathBuf>,
    /// A directory of PEM CA certificates.
    pub ca_path: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub skip_verify: bool,
    /// The name to verify Vault's certificate against instead of the address's host.
    pub server_name: Option<String>,
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, VaultError> {
    std::fs::read(path)
        .map_err(|e| VaultError::Tls(format!("reading the {what} {}: {e}", path.display())))
}

/// `ca_file` and the files of `ca_path`, in order.
fn ca_files(cfg: &TlsConfig) -> Result<Vec<PathBuf>, VaultError> {
    let mut out: Vec<PathBuf> = cfg.ca_file.iter().cloned().collect();
    if let Some(dir) = &cfg.ca_path {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| VaultError::Tls(format!("reading ca_path {}: {e}", dir.display())))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        out.extend(files);
    }
    Ok(out)
}

fn add_cas(
    mut builder: reqwest::ClientBuilder,
    file: &Path,
) -> Result<reqwest::ClientBuilder, VaultError> {
    let pem = read("CA file", file)?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| VaultError::Tls(format!("{} is not PEM: {e}", file.display())))?;
    if certs.is_empty() {
        return Err(VaultError::Tls(format!(
            "{} holds no PEM certificate",
            file.display()
        )));
    }
    for c in certs {
        builder = builder.add_root_certificate(c);
    }
    Ok(builder)
}

pub(crate) fn configure(
    mut builder: reqwest::ClientBuilder,
    cfg: &TlsConfig,
) -> Result<reqwest::ClientBuilder, VaultError> {
    if cfg.cert_file.is_some() != cfg.key_file.is_some() {
        return Err(VaultError::Tls(
            "cert_file and key_file go together: set both or neither".into(),
        ));
    }
    if cfg.skip_verify {
        tracing::warn!("Vault's TLS certificate is not verified (tls_skip_verify)");
    }
    if let (Some(name), false) = (&cfg.server_name, cfg.skip_verify) {
        return Ok(builder.use_preconfigured_tls(rustls_config(cfg, name)?));
    }
    builder = builder.use_rustls_tls();
    for f in ca_files(cfg)? {
        builder = add_cas(builder, &f)?;
    }
    if let (Some(cert), Some(key)) = (&cfg.cert_file, &cfg.key_file) {
        let mut pem = read("client certificate", cert)?;
        pem.push(b'\n');
        pem.extend(read("client key", key)?);
        let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
            VaultError::Tls(format!(
                "{} and {} are not a usable certificate and key: {e}",
                cert.display(),
                key.display()
            ))
        })?;
        builder = builder.identity(id);
    }
    if cfg.skip_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

/// A rustls configuration that verifies Vault's certificate against `name`.
fn rustls_config(cfg: &TlsConfig, name: &str) -> Result<rustls::ClientConfig, VaultError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for f in ca_files(cfg)? {
        let pem = read("CA file", &f)?;
        let mut n = 0;
        for c in CertificateDer::pem_slice_iter(&pem) {
            let c = c.map_err(|e| VaultError::Tls(format!("{} is not PEM: {e}", f.display())))?;
            roots
                .add(c)
                .map_err(|e| VaultError::Tls(format!("{}: {e}", f.display())))?;
            n += 1;
        }
        if n == 0 {
            return Err(VaultError::Tls(format!(
                "{} holds no PEM certificate",
                f.display()
            )));
        }
    }
    let name = ServerName::try_from(name.to_string())
        .map_err(|e| VaultError::Tls(format!("tls_server_name {name:?}: {e}")))?;
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| VaultError::Tls(e.to_string()))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| VaultError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NamedVerifier { inner, name }));
    let mut config = match (&cfg.cert_file, &cfg.key_file) {
        (Some(cert), Some(key)) => {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(&read("client certificate", cert)?)
                    .collect::<Result<_, _>>()
                    .map_err(|e| VaultError::Tls(format!("{}: {e}", cert.display())))?;
            let key_der = PrivateKeyDer::from_pem_slice(&read("client key", key)?)
                .map_err(|e| VaultError::Tls(format!("{}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(certs, key_der)
                .map_err(|e| VaultError::Tls(format!("{}: {e}", cert.display())))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Verifies a certificate as rustls's WebPKI verifier does, for a fixed name.
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_tls_files_are_clear_errors() {
        let dir = std::env::temp_dir().join(format!("caravan-vault-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let cfg = |t: TlsConfig| {
            crate::Client::new(&crate::VaultConfig {
                address: "https://127.0.0.1:8200".into(),
                tls: t,
                ..Default::default()
            })
            .map(|_| ())
        };
        let e = cfg(TlsConfig {
            ca_file: Some(dir.join("absent.pem")),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("absent.pem"), "{e}");
        let e = cfg(TlsConfig {
            ca_file: Some(junk.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let e = cfg(TlsConfig {
            cert_file: Some(junk),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("set both or neither"), "{e}");
        cfg(TlsConfig {
            skip_verify: true,
            ..Default::default()
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
