//! Checksums as go-getter takes them: `md5|sha1|sha256|sha512:<hex>` (or a bare hex digest whose
//! length names the algorithm), and the lines of a `file:<url>` checksum file.

use std::io::Read;
use std::path::Path;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::error::{GetterError, Result};

/// A hash algorithm go-getter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The lower-case name used in `checksum = "<name>:<hex>"`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "md5" => Some(Algorithm::Md5),
            "sha1" => Some(Algorithm::Sha1),
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha1 => 40,
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_hex_len(len: usize) -> Option<Self> {
        [
            Algorithm::Md5,
            Algorithm::Sha1,
            Algorithm::Sha256,
            Algorithm::Sha512,
        ]
        .into_iter()
        .find(|a| a.hex_len() == len)
    }
}

/// An expected digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checksum {
    pub algorithm: Algorithm,
    /// Lower-case hex.
    pub hex: String,
}

/// What the `checksum` option asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumSpec {
    /// A digest given inline.
    Inline(Checksum),
    /// A checksum file to download; the line for the artifact's file name is used.
    File(String),
}

impl ChecksumSpec {
    /// Parses the `checksum` option.
    pub fn parse(value: &str) -> Result<Self> {
        let bad = |reason: &str| GetterError::InvalidChecksum {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let v = value.trim();
        if let Some(url) = v.strip_prefix("file:") {
            if url.is_empty() {
                return Err(bad("file: needs the URL of a checksum file"));
            }
            return Ok(ChecksumSpec::File(url.to_string()));
        }
        let (algo, hex) = match v.split_once(':') {
            Some((a, h)) => (
                Some(Algorithm::from_name(a).ok_or_else(|| {
                    bad("the type must be one of md5, sha1, sha256, sha512 or file")
                })?),
                h,
            ),
            None => (None, v),
        };
        Ok(ChecksumSpec::Inline(
            Checksum::new(algo, hex).map_err(|r| bad(&r))?,
        ))
    }
}

impl Checksum {
    /// Builds a checksum from hex, guessing the algorithm from its length when not given.
    pub fn new(algo: Option<Algorithm>, hex: &str) -> std::result::Result<Self, String> {
        let hex = hex.trim().to_ascii_lowercase();
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err("the digest must be hexadecimal".into());
        }
        let algorithm = match algo {
            Some(a) => a,
            None => Algorithm::from_hex_len(hex.len()).ok_or_else(|| {
                format!(
                    "cannot tell the hash type from a {}-digit digest; prefix it, e.g. sha256:",
                    hex.len()
                )
            })?,
        };
        if hex.len() != algorithm.hex_len() {
            return Err(format!(
                "a {} digest has {} hex digits, this one has {}",
                algorithm.name(),
                algorithm.hex_len(),
                hex.len()
            ));
        }
        Ok(Checksum { algorithm, hex })
    }

    /// `algo:hex`, the form used as a cache key and in messages.
    pub fn to_spec(&self) -> String {
        format!("{}:{}", self.algorithm.name(), self.hex)
    }

    /// Hashes a file and fails with `checksum mismatch: ...` when it differs.
    pub fn verify_file(&self, path: &Path) -> Result<()> {
        let actual = hash_file(self.algorithm, path)?;
        if actual != self.hex {
            return Err(GetterError::ChecksumMismatch {
                algo: self.algorithm.name().to_string(),
                expected: self.hex.clone(),
                actual,
            });
        }
        Ok(())
    }
}

/// The lower-case hex digest of a file.
pub fn hash_file(algo: Algorithm, path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| GetterError::io("open", path, e))?;
    match algo {
        Algorithm::Md5 => digest_reader::<Md5>(&mut f, path),
        Algorithm::Sha1 => digest_reader::<Sha1>(&mut f, path),
        Algorithm::Sha256 => digest_reader::<Sha256>(&mut f, path),
        Algorithm::Sha512 => digest_reader::<Sha512>(&mut f, path),
    }
}

fn digest_reader<D: Digest>(r: &mut impl Read, path: &Path) -> Result<String> {
    let mut d = D::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r
            .read(&mut buf)
            .map_err(|e| GetterError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        d.update(&buf[..n]);
    }
    Ok(to_hex(&d.finalize()))
}

/// Lower-case hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Finds the checksum for `file_name` in a checksum file (GNU `<hex>  <name>`, `<hex> *<name>`,
/// BSD `SHA256 (<name>) = <hex>`, or a file holding a single digest).
pub fn find_in_checksum_file(text: &str, file_name: &str) -> Option<Checksum> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let name_matches = |name: &str| {
        let name = name.trim().trim_start_matches('*').trim_start_matches("./");
        name == file_name || Path::new(name).file_name().and_then(|n| n.to_str()) == Some(file_name)
    };
    for line in &lines {
        // BSD style.
        if let Some((head, hex)) = line.split_once(") = ") {
            if let Some((algo, name)) = head.split_once(" (") {
                if name_matches(name) {
                    if let Ok(c) = Checksum::new(Algorithm::from_name(algo.trim()), hex) {
                        return Some(c);
                    }
                }
            }
            continue;
        }
        let mut parts = line.splitn(2, char::is_whitespace);
        let hex = parts.next().unwrap_or("");
        if let Some(name) = parts.next() {
            if name_matches(name) {
                if let Ok(c) = Checksum::new(None, hex) {
                    return Some(c);
                }
            }
        }
    }
    if lines.len() == 1 && !lines[0].contains(char::is_whitespace) {
        return Checksum::new(None, lines[0]).ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let c = ChecksumSpec::parse(
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        )
        .unwrap();
        assert_eq!(
            c,
            ChecksumSpec::Inline(Checksum {
                algorithm: Algorithm::Sha256,
                hex: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into()
            })
        );
        let md5 = ChecksumSpec::parse("d41d8cd98f00b204e9800998ecf8427e").unwrap();
        assert!(matches!(
            md5,
            ChecksumSpec::Inline(Checksum {
                algorithm: Algorithm::Md5,
                ..
            })
        ));
        assert_eq!(
            ChecksumSpec::parse("file:https://h/SHA256SUMS").unwrap(),
            ChecksumSpec::File("https://h/SHA256SUMS".into())
        );
        assert!(ChecksumSpec::parse("sha256:abc").is_err());
        assert!(ChecksumSpec::parse("crc:abc").is_err());
        assert!(ChecksumSpec::parse("sha1:zz").is_err());
        assert!(ChecksumSpec::parse("abc").is_err());
    }

    #[test]
    fn verifies_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        let good = Checksum::new(
            Some(Algorithm::Sha256),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        )
        .unwrap();
        good.verify_file(&p).unwrap();
        assert_eq!(
            hash_file(Algorithm::Md5, &p).unwrap(),
            "5d41402abc4b2a76b9719d911017c592"
        );
        assert_eq!(
            hash_file(Algorithm::Sha1, &p).unwrap(),
            "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
        );
        let bad = Checksum::new(Some(Algorithm::Sha256), &"0".repeat(64)).unwrap();
        let err = bad.verify_file(&p).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("checksum mismatch: expected sha256:{}, got 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "0".repeat(64))
        );
    }

    #[test]
    fn reads_checksum_files() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let gnu = format!("{a}  other.tgz\n{b} *app.tgz\n");
        assert_eq!(find_in_checksum_file(&gnu, "app.tgz").unwrap().hex, b);
        let bsd = format!("SHA256 (other) = {a}\nSHA256 (app.tgz) = {b}\n");
        assert_eq!(find_in_checksum_file(&bsd, "app.tgz").unwrap().hex, b);
        assert_eq!(
            find_in_checksum_file(&format!("{a}\n"), "x").unwrap().hex,
            a
        );
        assert!(find_in_checksum_file(&gnu, "missing.tgz").is_none());
        let nested = format!("{a}  ./dist/app.tgz\n");
        assert_eq!(find_in_checksum_file(&nested, "app.tgz").unwrap().hex, a);
    }
}
