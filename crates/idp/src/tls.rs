//! A local certificate authority for `--tls` without real certificates: Auth0's SDKs only
//! speak `https://`, so development needs a certificate that clients can be told to trust.
//! The CA is created once in the data dir (`ca.pem`, `ca-key.pem`) and kept, so trusting it
//! once lasts; the server certificate is re-issued at every start for the names asked for.

use crate::datadir::write_private;
use std::path::{Path, PathBuf};

pub struct LocalCa {
    pub ca_pem_path: PathBuf,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// Certificate and key files given by the operator.
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

const CA_NAME: &str = "Gatehouse local development CA";

fn ca_params() -> Result<rcgen::CertificateParams, rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, CA_NAME);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

impl LocalCa {
    /// Loads or creates the CA under `dir`, and issues a server certificate for `names`
    /// (DNS names or IP addresses).
    pub fn ensure(dir: &Path, names: &[String]) -> std::io::Result<LocalCa> {
        let err = |e: rcgen::Error| std::io::Error::other(e.to_string());
        crate::datadir::create_private_dir(dir)?;
        let ca_pem_path = dir.join("ca.pem");
        let ca_key_path = dir.join("ca-key.pem");
        let ca_key = if ca_pem_path.exists() && ca_key_path.exists() {
            rcgen::KeyPair::from_pem(&std::fs::read_to_string(&ca_key_path)?).map_err(err)?
        } else {
            let key = rcgen::KeyPair::generate().map_err(err)?;
            let cert = ca_params().map_err(err)?.self_signed(&key).map_err(err)?;
            write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
            // The certificate is public, but every file of the data dir is private alike.
            write_private(&ca_pem_path, cert.pem().as_bytes())?;
            key
        };
        let issuer = rcgen::Issuer::new(ca_params().map_err(err)?, ca_key);
        let server_key = rcgen::KeyPair::generate().map_err(err)?;
        let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(err)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names.first().map(String::as_str).unwrap_or("localhost"));
        let cert = params.signed_by(&server_key, &issuer).map_err(err)?;
        let mut chain = cert.pem();
        chain.push_str(&std::fs::read_to_string(&ca_pem_path)?);
        Ok(LocalCa { ca_pem_path, cert_pem: chain.into_bytes(), key_pem: server_key.serialize_pem().into_bytes() })
    }
}
