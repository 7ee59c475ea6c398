//! Downloading a ZooKeeper release into the cache: the right file for the version, checked against the
//! published `.sha512` before anything is unpacked, unpacked into a temporary directory beside the cache
//! entry and renamed into place, so an interrupted or failed install leaves nothing half-installed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha512};

use crate::dist::parse_version;
use crate::error::{Error, Result};
use crate::os::interrupt;

pub const DEFAULT_MIRROR: &str = "https://archive.apache.org/dist/zookeeper/";

/// The file a version is published as: 3.5.5+ `apache-zookeeper-X-bin.tar.gz`; 3.4.x and 3.5.0-3.5.4
/// `zookeeper-X.tar.gz` (the 3.5.5+ file without `-bin` is the source release).
pub fn release_file(version: &str) -> String {
    let (maj, min, patch) = parse_version(version);
    if (maj, min, patch) >= (3, 5, 5) {
        format!("apache-zookeeper-{version}-bin.tar.gz")
    } else {
        format!("zookeeper-{version}.tar.gz")
    }
}

pub fn release_url(mirror: &str, version: &str) -> String {
    format!(
        "{}/zookeeper-{version}/{}",
        mirror.trim_end_matches('/'),
        release_file(version)
    )
}

/// A version must look like 3.8.6: it becomes a directory name and part of a URL.
pub fn validate_version(version: &str) -> Result<()> {
    let parts: Vec<&str> = version.split('.').collect();
    let ok = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()));
    if ok && parse_version(version) >= (3, 4, 0) {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "`{version}` is not a ZooKeeper version zkdev can install: give MAJOR.MINOR.PATCH, 3.4.0 or newer (e.g. 3.8.6)"
        )))
    }
}

/// The 128 hex digits in a `.sha512` file, whatever format surrounds them (`sha512sum`, gpg --print-md...).
pub fn parse_sha512(text: &str) -> Option<String> {
    let hex: String = text
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("");
    // gpg prints the digest in groups: join them, then take the first 128-digit run that is one token,
    // falling back to the concatenation.
    text.split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 128)
        .map(|w| w.to_lowercase())
        .or_else(|| (hex.len() >= 128).then(|| hex[hex.len() - 128..].to_lowercase()))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn get_text(url: &str) -> Result<String> {
    let mut resp = agent()
        .get(url)
        .call()
        .map_err(|e| Error::env(format!("cannot download {url}: {e}")))?;
    resp.body_mut()
        .read_to_string()
        .map_err(|e| Error::env(format!("cannot download {url}: {e}")))
}

/// The moments `install` asks whether it was interrupted (Ctrl-C). Stopping at any of them leaves `dest`
/// as it was: everything so far lives in a temporary directory that is removed on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The published digest is known; the download has not started.
    ChecksumFetched,
    /// Between two chunks of the download.
    Downloading,
    /// Downloaded and matching its digest (hashed while downloading); nothing unpacked yet.
    Verified,
    /// Unpacked beside the cache; not yet renamed into place.
    Unpacked,
}

/// What every interrupted install reports.
fn interrupted_error() -> Error {
    Error::failed("interrupted: nothing was installed")
}

/// What a download reports as it goes; the caller shows it (a progress bar) or not. `dist` draws nothing.
pub trait Progress {
    /// The download of `file` starts: `total` bytes, when the server says.
    fn start(&mut self, _file: &str, _total: Option<u64>) {}
    /// `got` bytes so far.
    fn advance(&mut self, _got: u64) {}
    /// All of it is there.
    fn finish(&mut self) {}
}

/// Progress nobody watches.
pub struct Unwatched;

impl Progress for Unwatched {}

/// Download `version` from `mirror`, verify it, unpack it to `dest` (which must not exist yet), unless
/// Ctrl-C is pressed first. `work` is a directory on the same file system for temporary files.
pub fn install(mirror: &str, version: &str, work: &Path, dest: &Path, progress: &mut dyn Progress) -> Result<()> {
    install_unless(mirror, version, work, dest, progress, |_| interrupt::interrupted())
}

/// `install`, asking `interrupted` at each [`Step`]: once it says yes, nothing more happens and
/// `dest` is left untouched.
fn install_unless(
    mirror: &str,
    version: &str,
    work: &Path,
    dest: &Path,
    progress: &mut dyn Progress,
    interrupted: impl Fn(Step) -> bool,
) -> Result<()> {
    let url = release_url(mirror, version);
    let sha_url = format!("{url}.sha512");
    let expected = parse_sha512(&get_text(&sha_url)?).ok_or_else(|| {
        Error::env(format!(
            "{sha_url} holds no SHA-512 digest (128 hex digits); is the mirror right?"
        ))
    })?;
    if interrupted(Step::ChecksumFetched) {
        return Err(interrupted_error());
    }

    std::fs::create_dir_all(work).map_err(|e| Error::io("cannot create", work, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".partial-")
        .tempdir_in(work)
        .map_err(|e| Error::io("cannot create a temporary directory in", work, e))?;
    let archive = tmp.path().join(release_file(version));
    let actual = download(&url, &archive, progress, || interrupted(Step::Downloading))?;
    if actual != expected {
        return Err(Error::failed(format!(
            "checksum mismatch for {url}: expected sha512 {expected}, got {actual}; nothing was installed \
             (a broken or tampered download, or a wrong --mirror)"
        )));
    }
    if interrupted(Step::Verified) {
        return Err(interrupted_error());
    }
    let unpacked = tmp.path().join("unpacked");
    unpack(&archive, &unpacked)?;
    // The release holds one top directory (apache-zookeeper-X-bin/ or zookeeper-X/): that becomes `dest`.
    let mut tops: Vec<PathBuf> = std::fs::read_dir(&unpacked)
        .map_err(|e| Error::io("cannot read", &unpacked, e))?
        .flatten()
        .map(|e| e.path())
        .collect();
    let top = match tops.len() {
        1 if tops[0].is_dir() => tops.remove(0),
        _ => unpacked.clone(),
    };
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("cannot create", parent, e))?;
    }
    if interrupted(Step::Unpacked) {
        return Err(interrupted_error());
    }
    std::fs::rename(&top, dest).map_err(|e| Error::io("cannot move the unpacked release to", dest, e))?;
    Ok(())
    // `tmp` (the archive and anything left) is removed on drop, on every path out of this function.
}

/// Stream `url` into `to`, hashing as it goes, until `interrupted`; returns the hex SHA-512.
fn download(url: &str, to: &Path, progress: &mut dyn Progress, interrupted: impl Fn() -> bool) -> Result<String> {
    let resp = agent().get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(404) => Error::env(format!(
            "{url} does not exist (404): is the version right, and does the mirror carry it?"
        )),
        e => Error::env(format!("cannot download {url}: {e}")),
    })?;
    let total = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    progress.start(url.rsplit('/').next().unwrap_or(url), total);
    let mut reader = resp.into_body().into_reader();
    let mut file = std::fs::File::create(to).map_err(|e| Error::io("cannot write", to, e))?;
    let mut hasher = Sha512::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got: u64 = 0;
    loop {
        if interrupted() {
            return Err(interrupted_error());
        }
        let n = reader.read(&mut buf).map_err(|e| {
            Error::env(format!(
                "download of {url} broke off after {got} bytes: {e}; nothing was installed"
            ))
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| Error::io("cannot write", to, e))?;
        got += n as u64;
        progress.advance(got);
    }
    progress.finish();
    if let Some(t) = total.filter(|t| *t != got) {
        return Err(Error::env(format!(
            "download of {url} broke off: {got} of {t} bytes; nothing was installed"
        )));
    }
    file.sync_all().map_err(|e| Error::io("cannot write", to, e))?;
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn unpack(archive: &Path, into: &Path) -> Result<()> {
    let f = std::fs::File::open(archive).map_err(|e| Error::io("cannot read", archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    // `unpack` refuses entries that would land outside `into` (absolute paths, `..`).
    tar.unpack(into).map_err(|e| {
        Error::failed(format!(
            "cannot unpack {}: {e}; nothing was installed",
            archive.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_file_for_each_version() {
        assert_eq!(release_file("3.9.5"), "apache-zookeeper-3.9.5-bin.tar.gz");
        assert_eq!(release_file("3.5.5"), "apache-zookeeper-3.5.5-bin.tar.gz");
        assert_eq!(release_file("3.5.4"), "zookeeper-3.5.4.tar.gz");
        assert_eq!(release_file("3.4.14"), "zookeeper-3.4.14.tar.gz");
        assert_eq!(
            release_url("https://archive.apache.org/dist/zookeeper/", "3.8.6"),
            "https://archive.apache.org/dist/zookeeper/zookeeper-3.8.6/apache-zookeeper-3.8.6-bin.tar.gz"
        );
    }

    #[test]
    fn sha512_files_parse_leniently() {
        let d = "a".repeat(128);
        assert_eq!(
            parse_sha512(&format!("{d}  apache-zookeeper-3.8.6-bin.tar.gz\n")),
            Some(d.clone())
        );
        assert_eq!(
            parse_sha512(&format!("apache-zookeeper-3.8.6-bin.tar.gz: {}", d.to_uppercase())),
            Some(d.clone())
        );
        // gpg --print-md SHA512 prints groups of 8 digits over several lines.
        let grouped: Vec<String> = (0..16).map(|_| "AAAAAAAA".to_string()).collect();
        assert_eq!(parse_sha512(&format!("file.tar.gz: {}", grouped.join(" "))), Some(d));
        assert_eq!(parse_sha512("no digest here"), None);
    }

    /// A release tarball (one top directory) in memory.
    fn release_tarball(version: &str) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let body = b"tickTime=2000\n";
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(
            &mut header,
            format!("apache-zookeeper-{version}-bin/conf/zoo_sample.cfg"),
            &body[..],
        )
        .unwrap();
        tar.into_inner().unwrap().finish().unwrap()
    }

    /// Serve `files` (path -> body) over HTTP/1.1 on an ephemeral loopback port, for the rest of the test
    /// process; anything else is a 404.
    fn serve(files: Vec<(String, Vec<u8>)>) -> String {
        use std::io::BufRead;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap_or(0);
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let (status, body) = match files.iter().find(|(p, _)| p == path) {
                    Some((_, body)) => ("200 OK", body.as_slice()),
                    None => ("404 Not Found", &[][..]),
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(body);
            }
        });
        format!("http://127.0.0.1:{port}/")
    }

    #[test]
    fn an_interrupt_at_any_step_installs_nothing() {
        let version = "3.8.6";
        let body = release_tarball(version);
        let digest: String = Sha512::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
        let path = format!("/zookeeper-{version}/{}", release_file(version));
        let mirror = serve(vec![
            (
                format!("{path}.sha512"),
                format!("{digest}  {}\n", release_file(version)).into_bytes(),
            ),
            (path, body),
        ]);
        for step in [Step::ChecksumFetched, Step::Downloading, Step::Verified, Step::Unpacked] {
            let work = tempfile::tempdir().unwrap();
            let dest = work.path().join(version);
            let err = install_unless(&mirror, version, work.path(), &dest, &mut Unwatched, |s| s == step)
                .expect_err("an interrupted install fails");
            assert_eq!(err.to_string(), "interrupted: nothing was installed", "at {step:?}");
            let left: Vec<_> = std::fs::read_dir(work.path())
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            assert!(left.is_empty(), "interrupted at {step:?}, the cache holds {left:?}");
        }
        // Not interrupted: installed.
        let work = tempfile::tempdir().unwrap();
        let dest = work.path().join(version);
        install_unless(&mirror, version, work.path(), &dest, &mut Unwatched, |_| false).unwrap();
        assert!(dest.join("conf/zoo_sample.cfg").is_file());
        let left: Vec<_> = std::fs::read_dir(work.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(left, vec![dest], "only the installation is left");
    }

    #[test]
    fn versions_are_checked() {
        validate_version("3.8.6").unwrap();
        for bad in ["3.8", "3.8.6-rc1", "../../x", "2.0.0", "3.8.x"] {
            assert!(validate_version(bad).is_err(), "{bad}");
        }
    }
}
