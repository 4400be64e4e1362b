//! TLS for `https` Vault addresses: extra CA certificates (`ca_file`, every PEM file in
//! `ca_path`), a client certificate (`cert_file` + `key_file`) and `tls_skip_verify`, loaded
//! into reqwest's rustls settings.

use crate::VaultError;
use std::path::{Path, PathBuf};

/// The agent `vault {}` block's TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub ca_file: Option<PathBuf>,
    /// A directory of PEM CA certificates.
    pub ca_path: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub skip_verify: bool,
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, VaultError> {
    std::fs::read(path)
        .map_err(|e| VaultError::Tls(format!("reading the {what} {}: {e}", path.display())))
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
    builder = builder.use_rustls_tls();
    if let Some(f) = &cfg.ca_file {
        builder = add_cas(builder, f)?;
    }
    if let Some(dir) = &cfg.ca_path {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| VaultError::Tls(format!("reading ca_path {}: {e}", dir.display())))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            builder = add_cas(builder, &f)?;
        }
    }
    match (&cfg.cert_file, &cfg.key_file) {
        (None, None) => {}
        (Some(cert), Some(key)) => {
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
        _ => {
            return Err(VaultError::Tls(
                "cert_file and key_file go together: set both or neither".into(),
            ))
        }
    }
    if cfg.skip_verify {
        tracing::warn!("Vault's TLS certificate is not verified (tls_skip_verify)");
        builder = builder.danger_accept_invalid_certs(true);
    }
    Ok(builder)
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
