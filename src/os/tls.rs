//! A cluster's throw-away TLS material, in its directory: a CA made for this cluster only, one certificate
//! per node and one for clients, each for 127.0.0.1 and localhost, as PEM files (ZooKeeper 3.6+ reads PEM
//! stores: `ssl.keyStore.type=PEM`; so do the Rust, Python and Go clients). The keys are not encrypted, so
//! there is no store password. Made by `up` when the profile turns TLS on, and again if a file is missing. The
//! CA's key is kept (owner-only, like every file here) so that a node added later (`zkdev add`) gets a
//! certificate from the same CA.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};

use crate::error::{Error, Result};
pub use crate::model::layout::TlsFiles;
use crate::model::spec::ClusterSpec;
use crate::os::state::ClusterPaths;

impl TlsFiles {
    fn all(&self, spec: &ClusterSpec) -> Vec<PathBuf> {
        let mut v = vec![self.ca(), self.client(), self.client_cert(), self.client_key()];
        v.extend(spec.ids().into_iter().map(|id| self.node(id)));
        v
    }
}

/// Make the cluster's TLS files unless they are all there. True when they were made now.
pub fn ensure(spec: &ClusterSpec, paths: &ClusterPaths) -> Result<bool> {
    let files = TlsFiles::of(paths);
    if !spec.settings.tls || files.all(spec).iter().all(|p| p.is_file()) {
        return Ok(false);
    }
    let made =
        make(&spec.name, &spec.ids()).map_err(|e| Error::failed(format!("cannot make TLS certificates: {e}")))?;
    std::fs::create_dir_all(&files.dir).map_err(|e| Error::io("cannot create", &files.dir, e))?;
    write_private(&files.ca(), &made.ca)?;
    write_private(&files.ca_key(), &made.ca_key)?;
    for (id, pem) in &made.nodes {
        write_private(&files.node(*id), pem)?;
    }
    write_private(&files.client(), &format!("{}{}", made.client_cert, made.client_key))?;
    write_private(&files.client_cert(), &made.client_cert)?;
    write_private(&files.client_key(), &made.client_key)?;
    Ok(true)
}

/// A certificate for node `id`, added after the others, from the cluster's own CA (whose key `up` kept). A
/// cluster made before zkdev kept the key cannot get one: said with the fix.
pub fn ensure_node(spec: &ClusterSpec, paths: &ClusterPaths, id: u32) -> Result<()> {
    let files = TlsFiles::of(paths);
    if !spec.settings.tls || files.node(id).is_file() {
        return Ok(());
    }
    let read = |p: PathBuf| {
        std::fs::read_to_string(&p).map_err(|e| {
            Error::failed(format!(
                "cannot give node {id} a TLS certificate: {} is missing or unreadable ({e}); this cluster's CA key \
                 was not kept (a cluster made by an older zkdev), so no node can be added to it. Make the cluster \
                 anew to add nodes to a TLS ensemble (this removes its data): `{}`",
                p.display(),
                spec.remake_command(&[])
            ))
        })
    };
    let key = read(files.ca_key())?;
    let pem = node_cert(&spec.name, &key, id)
        .map_err(|e| Error::failed(format!("cannot make node {id}'s TLS certificate: {e}")))?;
    write_private(&files.node(id), &pem)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    crate::os::state::write_atomic(path, text.as_bytes())?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("cannot chmod", path, e))
}

/// PEM texts: the CA certificate and key, each node's certificate + key, the client's certificate and key.
struct Made {
    ca: String,
    ca_key: String,
    nodes: Vec<(u32, String)>,
    client_cert: String,
    client_key: String,
}

/// The cluster's CA certificate made with `ca_key`. The same name and key always make a CA that verifies the
/// same leaves, so the CA of a node added later is rebuilt from the kept key.
fn ca_cert(cluster: &str, ca_key: &KeyPair) -> std::result::Result<rcgen::Certificate, rcgen::Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("zkdev throw-away CA for cluster {cluster}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.self_signed(ca_key)
}

/// A leaf certificate and its key, signed by the CA, for 127.0.0.1, localhost and `host`.
fn leaf(
    ca: &rcgen::Certificate,
    ca_key: &KeyPair,
    name: String,
    host: Option<String>,
    usages: Vec<ExtendedKeyUsagePurpose>,
) -> std::result::Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    names.extend(host);
    let mut p = CertificateParams::new(names)?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = usages;
    let cert = p.signed_by(&key, ca, ca_key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Node `id`'s key store (certificate + key). Server and client use: with quorum TLS a node is both to its
/// peers. Its host name too: on a --net cluster peers dial it by that name (quorum TLS checks it).
fn node_pem(
    cluster: &str,
    ca: &rcgen::Certificate,
    ca_key: &KeyPair,
    id: u32,
) -> std::result::Result<String, rcgen::Error> {
    let (cert, key) = leaf(
        ca,
        ca_key,
        format!("zkdev {cluster} node {id}"),
        Some(crate::model::spec::link_host(id)),
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
    )?;
    Ok(format!("{cert}{key}"))
}

/// Node `id`'s key store, signed by the CA whose key is `ca_key_pem`.
fn node_cert(cluster: &str, ca_key_pem: &str, id: u32) -> std::result::Result<String, rcgen::Error> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let ca = ca_cert(cluster, &ca_key)?;
    node_pem(cluster, &ca, &ca_key, id)
}

fn make(cluster: &str, ids: &[u32]) -> std::result::Result<Made, rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let ca = ca_cert(cluster, &ca_key)?;
    let mut nodes = Vec::new();
    for id in ids {
        nodes.push((*id, node_pem(cluster, &ca, &ca_key, *id)?));
    }
    let (client_cert, client_key) = leaf(
        &ca,
        &ca_key,
        format!("zkdev {cluster} client"),
        None,
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    )?;
    Ok(Made {
        ca: ca.pem(),
        ca_key: ca_key.serialize_pem(),
        nodes,
        client_cert,
        client_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    #[test]
    fn certificates_chain_to_the_ca_and_name_loopback() {
        let m = make("demo", &[1, 2]).unwrap();
        assert!(m.ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(m.nodes.len(), 2);
        for (_, pem) in &m.nodes {
            assert!(pem.contains("-----BEGIN CERTIFICATE-----") && pem.contains("-----BEGIN PRIVATE KEY-----"));
        }
        assert!(m.client_key.starts_with("-----BEGIN PRIVATE KEY-----"));
        // A real TLS stack accepts the node's certificate for 127.0.0.1 under the CA.
        let roots = {
            let mut r = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(m.ca.as_bytes()) {
                r.add(c.unwrap()).unwrap();
            }
            r
        };
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
            .build()
            .unwrap();
        let cert = CertificateDer::pem_slice_iter(m.nodes[0].1.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        use rustls::client::danger::ServerCertVerifier;
        verifier
            .verify_server_cert(
                &cert,
                &[],
                &rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .unwrap();
    }
}
