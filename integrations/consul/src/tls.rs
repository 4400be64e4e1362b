//! Loads the PEM files of [`ConsulConfig`](crate::ConsulConfig) into reqwest's rustls settings.

use std::path::Path;

use crate::config::ConsulConfig;
use crate::error::ConsulError;

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, ConsulError> {
    std::fs::read(path).map_err(|source| ConsulError::TlsFile {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Applies CA, client certificate and verification settings to a reqwest builder.
pub fn configure(
    mut builder: reqwest::ClientBuilder,
    config: &ConsulConfig,
) -> Result<reqwest::ClientBuilder, ConsulError> {
    builder = builder.use_rustls_tls();
    if let Some(ca) = &config.ca_file {
        let pem = read("CA", ca)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            ConsulError::TlsConfig(format!(
                "CA file {} is not a PEM certificate bundle: {e}",
                ca.display()
            ))
        })?;
        if certs.is_empty() {
            return Err(ConsulError::TlsConfig(format!(
                "CA file {} holds no PEM certificate",
                ca.display()
            )));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    match (&config.cert_file, &config.key_file) {
        (None, None) => {}
        (Some(_), None) => {
            return Err(ConsulError::TlsConfig(
                "cert_file is set but key_file is not: a client certificate needs its private key"
                    .into(),
            ))
        }
        (None, Some(_)) => {
            return Err(ConsulError::TlsConfig(
                "key_file is set but cert_file is not: a private key needs its client certificate"
                    .into(),
            ))
        }
        (Some(cert), Some(key)) => {
            let mut pem = read("client certificate", cert)?;
            pem.push(b'\n');
            pem.extend(read("client key", key)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                ConsulError::TlsConfig(format!(
                    "client certificate {} and key {} are not a usable PEM pair: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
            builder = builder.identity(identity);
        }
    }
    if config.tls_skip_verify {
        tracing::warn!("TLS verification of Consul's certificate is disabled (tls_skip_verify)");
        builder = builder.danger_accept_invalid_certs(true);
    }
    Ok(builder)
}
