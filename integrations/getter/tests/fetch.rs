//! End-to-end fetches against a tiny HTTP server started by each test: checksums, archives,
//! zip-slip refusal, destination checks, modes, limits and the node cache.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use caravan_getter::checksum::{hash_file, Algorithm};
use caravan_getter::{Artifact, Getter, GetterConfig, GetterError, GetterMode};

/// Serves fixed bodies by path on 127.0.0.1 and counts the requests for each path.
struct Server {
    base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    headers: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(files: Vec<(&str, Vec<u8>)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let files: Arc<HashMap<String, Vec<u8>>> =
            Arc::new(files.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let headers = Arc::new(Mutex::new(Vec::new()));
        let (h, hd) = (hits.clone(), headers.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (files, h, hd) = (files.clone(), h.clone(), hd.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                    loop {
                        let mut l = String::new();
                        if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                            break;
                        }
                        hd.lock().unwrap().push(l.trim().to_string());
                    }
                    let key = path.split('?').next().unwrap_or("").to_string();
                    *h.lock().unwrap().entry(key.clone()).or_insert(0) += 1;
                    let resp = match files.get(&key) {
                        Some(body) => {
                            let mut r = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .into_bytes();
                            r.extend_from_slice(body);
                            r
                        }
                        None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                    };
                    let _ = stream.write_all(&resp);
                });
            }
        });
        Server {
            base,
            hits,
            headers,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn hits(&self, path: &str) -> usize {
        *self.hits.lock().unwrap().get(path).unwrap_or(&0)
    }
}

/// An allocation dir with one task dir (`web`) holding `local/`.
struct Alloc {
    _tmp: tempfile::TempDir,
    alloc: PathBuf,
    task: PathBuf,
}

fn alloc() -> Alloc {
    let tmp = tempfile::tempdir().unwrap();
    let alloc = tmp.path().join("alloc-1");
    let task = alloc.join("web");
    std::fs::create_dir_all(task.join("local")).unwrap();
    Alloc {
        _tmp: tmp,
        alloc,
        task,
    }
}

fn sha256(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    std::fs::write(&p, bytes).unwrap();
    hash_file(Algorithm::Sha256, &p).unwrap()
}

enum Entry<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Link(&'a str, &'a str),
}

fn tar_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        match e {
            Entry::File(name, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(*mode);
                // Raw name so that `..` entries can be written.
                h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            Entry::Dir(name) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            Entry::Link(name, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
                h.as_gnu_mut().unwrap().linkname[..target.len()].copy_from_slice(target.as_bytes());
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn getter() -> Getter {
    Getter::new(GetterConfig::default()).unwrap()
}

/// Everything under `dir`, as relative paths (staging leftovers included).
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                out.push(e.path().strip_prefix(root).unwrap().display().to_string());
                if e.file_type().unwrap().is_dir() {
                    walk(root, &e.path(), out);
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn plain_file_with_checksum_and_headers() {
    let body = b"#!/bin/sh\necho hi\n".to_vec();
    let srv = Server::start(vec![("/bin/app.sh", body.clone())]);
    let a = alloc();
    let mut art = Artifact::new(srv.url("/bin/app.sh"));
    art.options
        .insert("checksum".into(), format!("sha256:{}", sha256(&body)));
    art.headers.insert("X-Token".into(), "secret-1".into());
    let done = getter().fetch(&art, &a.alloc, &a.task, None).await.unwrap();
    assert_eq!(done.destination, a.task.join("local"));
    assert_eq!(done.bytes, body.len() as u64);
    assert_eq!(std::fs::read(a.task.join("local/app.sh")).unwrap(), body);
    assert!(srv
        .headers
        .lock()
        .unwrap()
        .iter()
        .any(|h| h.eq_ignore_ascii_case("x-token: secret-1")));
    // No staging directory left behind.
    assert_eq!(listing(&a.task), vec!["local", "local/app.sh"]);
}

#[tokio::test]
async fn checksum_mismatch_leaves_nothing() {
    let body = b"real contents".to_vec();
    let srv = Server::start(vec![(
        "/app.tar.gz",
        gz(&tar_bytes(&[Entry::File("app", &body, 0o755)])),
    )]);
    let a = alloc();
    for algo in ["md5:", "sha1:", "sha256:", "sha512:"] {
        let len = match algo {
            "md5:" => 32,
            "sha1:" => 40,
            "sha256:" => 64,
            _ => 128,
        };
        let mut art = Artifact::new(srv.url("/app.tar.gz"));
        art.options
            .insert("checksum".into(), format!("{algo}{}", "0".repeat(len)));
        let err = getter()
            .fetch(&art, &a.alloc, &a.task, None)
            .await
            .unwrap_err();
        assert!(matches!(err, GetterError::ChecksumMismatch { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "checksum mismatch: expected {algo}{}",
                "0".repeat(len)
            )),
            "{msg}"
        );
        assert!(msg.contains(", got "), "{msg}");
    }
    assert_eq!(listing(&a.task), vec!["local"]);
}

#[tokio::test]
async fn tar_gz_unpacks_with_modes_and_subdir() {
    let archive = gz(&tar_bytes(&[
        Entry::Dir("pkg/"),
        Entry::File("pkg/bin/run", b"#!/bin/sh\n", 0o755),
        Entry::File("pkg/README", b"read me", 0o644),
        Entry::Link("pkg/bin/readme", "../README"),
    ]));
    let srv = Server::start(vec![("/pkg.tgz", archive.clone())]);
    let a = alloc();
    let mut art = Artifact::new(srv.url("/pkg.tgz"));
    art.options
        .insert("checksum".into(), format!("sha256:{}", sha256(&archive)));
    getter().fetch(&art, &a.alloc, &a.task, None).await.unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(a.task.join("local/pkg/bin/run"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        std::fs::read(a.task.join("local/pkg/bin/readme")).unwrap(),
        b"read me"
    );
    assert!(!a.task.join("local/pkg.tgz").exists());

    // The //subdir form picks one directory of the archive; destination elsewhere in the task.
    let mut art = Artifact::new(format!("{}//pkg/bin", srv.url("/pkg.tgz")));
    art.relative_dest = "local/only-bin".into();
    getter().fetch(&art, &a.alloc, &a.task, None).await.unwrap();
    assert!(a.task.join("local/only-bin/run").is_file());
    assert!(!a.task.join("local/only-bin/README").exists());
}

#[tokio::test]
async fn archive_false_and_archive_option() {
    let archive = zip_bytes(&[("hello.txt", b"hello")]);
    let srv = Server::start(vec![
        ("/a.zip", archive.clone()),
        ("/download", archive.clone()),
    ]);
    let a = alloc();
    let art = Artifact::new(format!("{}?archive=false", srv.url("/a.zip")));
    getter().fetch(&art, &a.alloc, &a.task, None).await.unwrap();
    assert_eq!(std::fs::read(a.task.join("local/a.zip")).unwrap(), archive);
    assert!(!a.task.join("local/hello.txt").exists());

    let mut art = Artifact::new(srv.url("/download"));
    art.options.insert("archive".into(), "zip".into());
    getter().fetch(&art, &a.alloc, &a.task, None).await.unwrap();
    assert_eq!(
        std::fs::read(a.task.join("local/hello.txt")).unwrap(),
        b"hello"
    );

    let mut art = Artifact::new(srv.url("/download"));
    art.options.insert("archive".into(), "rar".into());
    let err = getter()
        .fetch(&art, &a.alloc, &a.task, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an archive type"), "{err}");
}

#[tokio::test]
async fn zip_slip_is_refused_and_nothing_written() {
    let evil_zip = zip_bytes(&[("ok.txt", b"fine"), ("../../../evil.txt", b"pwned")]);
    let evil_tar = gz(&tar_bytes(&[
        Entry::File("ok", b"fine", 0o644),
        Entry::File("../evil", b"pwned", 0o644),
    ]));
    let link_tar = tar_bytes(&[
        Entry::Link("l", "/etc"),
        Entry::File("l/passwd", b"x", 0o644),
    ]);
    let chain_tar = tar_bytes(&[
        Entry::Link("a", "."),
        Entry::Link("b", "a/.."),
        Entry::File("c", b"x", 0o644),
    ]);
    let through_link = tar_bytes(&[Entry::Link("up", ".."), Entry::File("up/evil", b"x", 0o644)]);
    let srv = Server::start(vec![
        ("/evil.zip", evil_zip),
        ("/evil.tar.gz", evil_tar),
        ("/link.tar", link_tar),
        ("/chain.tar", chain_tar),
        ("/through.tar", through_link),
    ]);
    for (path, want) in [
        ("/evil.zip", "contains '..'"),
        ("/evil.tar.gz", "contains '..'"),
        ("/link.tar", "absolute path"),
        ("/chain.tar", "outside the destination"),
        ("/through.tar", "outside the destination"),
    ] {
        let a = alloc();
        let art = Artifact::new(srv.url(path));
        let err = getter()
            .fetch(&art, &a.alloc, &a.task, None)
            .await
            .unwrap_err();
        assert!(matches!(err, GetterError::Archive { .. }), "{path}: {err}");
        assert!(err.to_string().contains(want), "{path}: {err}");
        assert!(err.to_string().contains("refusing entry"), "{path}: {err}");
        // Nothing in the task dir, nothing beside or above it.
        assert_eq!(listing(&a.task), vec!["local"], "{path}");
        assert_eq!(listing(&a.alloc), vec!["web", "web/local"], "{path}");
    }
}

#[tokio::test]
async fn bad_destinations_are_refused() {
    let srv = Server::start(vec![("/f", b"x".to_vec())]);
    let a = alloc();
    for dest in ["../../outside", "local/../../../x", "../.."] {
        let mut art = Artifact::new(srv.url("/f"));
        art.relative_dest = dest.into();
        let err = getter()
            .fetch(&art, &a.alloc, &a.task, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, GetterError::DestinationEscapes { .. }),
            "{dest}: {err}"
        );
    }
    // A symlink in the task dir that points out of the allocation.
    std::os::unix::fs::symlink("/tmp", a.task.join("out")).unwrap();
    let mut art = Artifact::new(srv.url("/f"));
    art.relative_dest = "out/x".into();
    assert!(matches!(
        getter()
            .fetch(&art, &a.alloc, &a.task, None)
            .await
            .unwrap_err(),
        GetterError::DestinationEscapes { .. }
    ));
    assert_eq!(
        srv.hits("/f"),
        0,
        "nothing is downloaded for a refused destination"
    );
    // The shared alloc dir is inside the allocation: allowed, as in Nomad.
    let mut art = Artifact::new(srv.url("/f"));
    art.relative_dest = "../alloc/data".into();
    getter().fetch(&art, &a.alloc, &a.task, None).await.unwrap();
    assert!(a.alloc.join("alloc/data/f").is_file());
}

#[tokio::test]
async fn modes_file_and_dir() {
    let srv = Server::start(vec![
        ("/config.json", b"{}".to_vec()),
        ("/t.tar", tar_bytes(&[Entry::File("x", b"1", 0o644)])),
        ("/one.gz", gz(b"single")),
    ]);
    let a = alloc();
    let mut art = Artifact::new(srv.url("/config.json"));
    art.mode = GetterMode::File;
    art.relative_dest = "local/conf/app.json".into();
    getter().fetch(&art, &a.alloc, &a.task, None).await.unwrap();
    assert_eq!(
        std::fs::read(a.task.join("local/conf/app.json")).unwrap(),
        b"{}"
    );

    let mut art = Artifact::new(srv.url("/config.json"));
    art.mode = GetterMode::Dir;
    let err = getter()
        .fetch(&art, &a.alloc, &a.task, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("mode \"dir\""), "{err}");

    let mut art = Artifact::new(srv.url("/t.tar"));
    art.mode = GetterMode::Dir;
    art.relative_dest = "local/t".into();
    getter().fetch(&art, &a.alloc, &a.task, None).await.unwrap();
    assert!(a.task.join("local/t/x").is_file());

    let mut art = Artifact::new(srv.url("/one.gz"));
    art.mode = GetterMode::File;
    art.relative_dest = "local/plain".into();
    getter().fetch(&art, &a.alloc, &a.task, None).await.unwrap();
    assert_eq!(
        std::fs::read(a.task.join("local/plain")).unwrap(),
        b"single"
    );

    // filename option.
    let mut art = Artifact::new(srv.url("/config.json"));
    art.options.insert("filename".into(), "renamed.json".into());
    getter().fetch(&art, &a.alloc, &a.task, None).await.unwrap();
    assert!(a.task.join("local/renamed.json").is_file());
}

#[tokio::test]
async fn limits_are_enforced() {
    let many: Vec<(String, Vec<u8>)> = (0..5).map(|i| (format!("f{i}"), vec![b'a'; 10])).collect();
    let entries: Vec<Entry> = many.iter().map(|(n, d)| Entry::File(n, d, 0o644)).collect();
    let bomb = gz(&vec![0u8; 1 << 20]);
    let srv = Server::start(vec![
        ("/many.tar", tar_bytes(&entries)),
        ("/bomb.gz", bomb),
        ("/big", vec![1u8; 16384]),
    ]);
    let a = alloc();
    let cfg = GetterConfig {
        decompression_file_count_limit: 3,
        decompression_size_limit: 64 * 1024,
        http_max_size: 8192,
        ..GetterConfig::default()
    };
    let g = Getter::new(cfg).unwrap();
    let err = g
        .fetch(
            &Artifact::new(srv.url("/many.tar")),
            &a.alloc,
            &a.task,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, GetterError::TooManyFiles { limit: 3, .. }),
        "{err}"
    );
    let err = g
        .fetch(&Artifact::new(srv.url("/bomb.gz")), &a.alloc, &a.task, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, GetterError::DecompressedTooLarge { .. }),
        "{err}"
    );
    let err = g
        .fetch(&Artifact::new(srv.url("/big")), &a.alloc, &a.task, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, GetterError::TooLarge { limit: 8192, .. }),
        "{err}"
    );
    assert_eq!(listing(&a.task), vec!["local"]);
}

#[tokio::test]
async fn cache_avoids_second_download() {
    let body = b"cached bytes".to_vec();
    let sum = sha256(&body);
    let srv = Server::start(vec![
        ("/c.bin", body.clone()),
        ("/SHA256SUMS", format!("{sum}  c.bin\n").into_bytes()),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let cfg = GetterConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..GetterConfig::default()
    };
    let g = Getter::new(cfg).unwrap();
    let mut art = Artifact::new(srv.url("/c.bin"));
    art.options
        .insert("checksum".into(), format!("sha256:{sum}"));
    let (a1, a2) = (alloc(), alloc());
    assert!(
        !g.fetch(&art, &a1.alloc, &a1.task, None)
            .await
            .unwrap()
            .from_cache
    );
    assert!(
        g.fetch(&art, &a2.alloc, &a2.task, None)
            .await
            .unwrap()
            .from_cache
    );
    assert_eq!(srv.hits("/c.bin"), 1);
    assert_eq!(std::fs::read(a2.task.join("local/c.bin")).unwrap(), body);

    // Without a checksum, from a server that sends no ETag/Last-Modified, nothing is cached.
    let plain = Artifact::new(srv.url("/c.bin"));
    g.fetch(&plain, &a1.alloc, &a1.task, None).await.unwrap();
    assert_eq!(srv.hits("/c.bin"), 2);

    // A `file:` checksum list is honoured.
    let mut art = Artifact::new(srv.url("/c.bin"));
    art.options.insert(
        "checksum".into(),
        format!("file:{}", srv.url("/SHA256SUMS")),
    );
    let a3 = alloc();
    getter()
        .fetch(&art, &a3.alloc, &a3.task, None)
        .await
        .unwrap();
    assert_eq!(srv.hits("/SHA256SUMS"), 1);
}

#[tokio::test]
async fn file_and_unsupported_sources() {
    let a = alloc();
    let src_dir = tempfile::tempdir().unwrap();
    std::fs::write(src_dir.path().join("host.txt"), b"from host").unwrap();
    let url = format!("file://{}/host.txt", src_dir.path().display());
    // Isolation on (the default): host paths outside the allocation are refused ...
    let err = getter()
        .fetch(&Artifact::new(&url), &a.alloc, &a.task, None)
        .await
        .unwrap_err();
    assert!(matches!(err, GetterError::FileOutsideAlloc { .. }), "{err}");
    // ... files inside the allocation are fine ...
    std::fs::create_dir_all(a.alloc.join("alloc/data")).unwrap();
    std::fs::write(a.alloc.join("alloc/data/shared.txt"), b"shared").unwrap();
    let inside = format!("file://{}/alloc/data/shared.txt", a.alloc.display());
    getter()
        .fetch(&Artifact::new(&inside), &a.alloc, &a.task, None)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(a.task.join("local/shared.txt")).unwrap(),
        b"shared"
    );
    // ... a client may switch file sources off entirely ...
    let off = Getter::new(GetterConfig {
        allow_file_urls: false,
        ..GetterConfig::default()
    })
    .unwrap();
    let err = off
        .fetch(&Artifact::new(&inside), &a.alloc, &a.task, None)
        .await
        .unwrap_err();
    assert!(matches!(err, GetterError::FileUrlsDisabled { .. }), "{err}");
    // ... and with isolation disabled host paths are allowed.
    let g = Getter::new(GetterConfig {
        disable_filesystem_isolation: true,
        ..GetterConfig::default()
    })
    .unwrap();
    g.fetch(&Artifact::new(&url), &a.alloc, &a.task, None)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(a.task.join("local/host.txt")).unwrap(),
        b"from host"
    );

    // Object stores that cannot be reached name the object in the error.
    for (src, shown) in [
        ("s3::http://127.0.0.1:9/b/k", "GET s3://b/k: "),
        ("gcs::http://127.0.0.1:9/storage/v1/b/o", "GET gs://b/o: "),
    ] {
        let err = getter()
            .fetch(&Artifact::new(src), &a.alloc, &a.task, None)
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with(shown), "{src}: {err}");
    }
    let err = getter()
        .fetch(
            &Artifact::new("http://127.0.0.1:9/none"),
            &a.alloc,
            &a.task,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("GET http://127.0.0.1:9/none"),
        "{err}"
    );
    assert!(listing(&a.task)
        .iter()
        .all(|p| !p.contains(".caravan-artifact")));
}

#[tokio::test]
async fn git_clone_at_tag() {
    if std::process::Command::new("git")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP git_clone_at_tag: the git binary is not installed");
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(repo.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@e")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@e")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    std::fs::write(repo.path().join("v.txt"), b"one").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "one"]);
    git(&["tag", "v1"]);
    std::fs::write(repo.path().join("v.txt"), b"two").unwrap();
    git(&["commit", "-q", "-am", "two"]);
    let a = alloc();
    let g = Getter::new(GetterConfig {
        disable_filesystem_isolation: true,
        ..GetterConfig::default()
    })
    .unwrap();
    let mut art = Artifact::new(format!("git::file://{}", repo.path().display()));
    art.options.insert("ref".into(), "v1".into());
    art.relative_dest = "local/repo".into();
    g.fetch(&art, &a.alloc, &a.task, None).await.unwrap();
    let mut s = String::new();
    std::fs::File::open(a.task.join("local/repo/v.txt"))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "one");
}
