//! A certificate authority made for one test, and server certificates it signs: for the
//! throw-away Redis and PostgreSQL servers that speak TLS. Written as PEM files in a directory
//! removed with the authority.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::TempDir;

pub struct Authority {
    params: CertificateParams,
    key: KeyPair,
    /// This authority's certificate (PEM): what a client trusts.
    pub ca_file: PathBuf,
    dir: TempDir,
}

/// A server certificate and its key, as PEM files.
pub struct ServerCert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Authority {
    pub fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("tokenauth test CA {name}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let dir = TempDir::new();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, cert.pem()).unwrap();
        Authority {
            params,
            key,
            ca_file,
            dir,
        }
    }

    /// A certificate for `names` (host names or IP addresses), signed by this authority.
    /// The key file is readable by its owner only (PostgreSQL insists).
    pub fn server(&self, file_stem: &str, names: &[&str]) -> ServerCert {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, file_stem.to_owned());
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::new(self.params.clone(), &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let cert_file = self.dir.join(&format!("{file_stem}.crt"));
        let key_file = self.dir.join(&format!("{file_stem}.key"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        set_mode(&key_file, 0o600);
        ServerCert {
            cert_file,
            key_file,
        }
    }

    /// The directory the files are in (removed with the authority).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Sets a file's permission bits.
pub fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
