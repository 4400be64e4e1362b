//! Unchecksummed downloads in the node cache are revalidated before reuse: a local HTTP server
//! with ETag / Last-Modified support keeps an access log, which shows the conditional request
//! of the second allocation answered 304 with no body, and a changed file downloaded again.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use caravan_getter::{Artifact, Getter, GetterConfig};

/// One access-log line: path, the conditional headers received, status, body bytes sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Access {
    path: String,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    status: u16,
    body_bytes: usize,
}

#[derive(Clone)]
struct Doc {
    body: Vec<u8>,
    etag: Option<String>,
    last_modified: Option<String>,
}

struct Server {
    base: String,
    docs: Arc<Mutex<Vec<(String, Doc)>>>,
    log: Arc<Mutex<Vec<Access>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let docs: Arc<Mutex<Vec<(String, Doc)>>> = Arc::default();
        let log: Arc<Mutex<Vec<Access>>> = Arc::default();
        let (d, l) = (docs.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (d, l) = (d.clone(), l.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let (mut inm, mut ims) = (None, None);
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = h.trim().split_once(':') {
                            match k.to_ascii_lowercase().as_str() {
                                "if-none-match" => inm = Some(v.trim().to_string()),
                                "if-modified-since" => ims = Some(v.trim().to_string()),
                                _ => {}
                            }
                        }
                    }
                    let doc = d
                        .lock()
                        .unwrap()
                        .iter()
                        .find(|(p, _)| *p == path)
                        .map(|(_, doc)| doc.clone());
                    let (status, head, body) = match doc {
                        None => (404, String::new(), Vec::new()),
                        Some(doc) => {
                            let fresh = match (&inm, &doc.etag, &ims, &doc.last_modified) {
                                (Some(a), Some(b), _, _) => a == b,
                                (None, _, Some(a), Some(b)) => a == b,
                                _ => false,
                            };
                            let mut head = String::new();
                            if let Some(e) = &doc.etag {
                                head.push_str(&format!("ETag: {e}\r\n"));
                            }
                            if let Some(m) = &doc.last_modified {
                                head.push_str(&format!("Last-Modified: {m}\r\n"));
                            }
                            if fresh {
                                (304, head, Vec::new())
                            } else {
                                (200, head, doc.body.clone())
                            }
                        }
                    };
                    l.lock().unwrap().push(Access {
                        path,
                        if_none_match: inm,
                        if_modified_since: ims,
                        status,
                        body_bytes: body.len(),
                    });
                    let reason = match status {
                        200 => "OK",
                        304 => "Not Modified",
                        _ => "Not Found",
                    };
                    let mut resp = format!("HTTP/1.1 {status} {reason}\r\n{head}");
                    if status != 304 {
                        resp.push_str(&format!("Content-Length: {}\r\n", body.len()));
                    }
                    resp.push_str("Connection: close\r\n\r\n");
                    let mut bytes = resp.into_bytes();
                    bytes.extend_from_slice(&body);
                    let _ = stream.write_all(&bytes);
                });
            }
        });
        Server { base, docs, log }
    }

    fn put(&self, path: &str, body: &[u8], etag: Option<&str>, last_modified: Option<&str>) {
        let mut docs = self.docs.lock().unwrap();
        docs.retain(|(p, _)| p != path);
        docs.push((
            path.to_string(),
            Doc {
                body: body.to_vec(),
                etag: etag.map(str::to_string),
                last_modified: last_modified.map(str::to_string),
            },
        ));
    }

    fn log(&self) -> Vec<Access> {
        self.log.lock().unwrap().clone()
    }
}

struct Dirs {
    _root: tempfile::TempDir,
    alloc: PathBuf,
    task: PathBuf,
}

fn alloc() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let alloc = root.path().join("a");
    let task = alloc.join("t");
    std::fs::create_dir_all(&task).unwrap();
    Dirs {
        _root: root,
        alloc,
        task,
    }
}

#[tokio::test]
async fn etag_revalidation_reuses_the_cached_copy() {
    let srv = Server::start();
    srv.put("/tool.bin", b"version one", Some("\"v1\""), None);
    let cache = tempfile::tempdir().unwrap();
    let g = Getter::new(GetterConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..GetterConfig::default()
    })
    .unwrap();
    let art = Artifact::new(format!("{}/tool.bin", srv.base));

    let a1 = alloc();
    assert!(
        !g.fetch(&art, &a1.alloc, &a1.task, None)
            .await
            .unwrap()
            .from_cache
    );
    let a2 = alloc();
    let second = g.fetch(&art, &a2.alloc, &a2.task, None).await.unwrap();
    assert!(second.from_cache);
    assert_eq!(
        std::fs::read(a2.task.join("local/tool.bin")).unwrap(),
        b"version one"
    );
    let log = srv.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!((log[0].status, log[0].body_bytes), (200, 11));
    assert_eq!(log[0].if_none_match, None);
    assert_eq!(log[1].if_none_match.as_deref(), Some("\"v1\""));
    assert_eq!((log[1].status, log[1].body_bytes), (304, 0));

    // The file changes on the server: the next allocation gets the new bytes.
    srv.put("/tool.bin", b"version two!", Some("\"v2\""), None);
    let a3 = alloc();
    assert!(
        !g.fetch(&art, &a3.alloc, &a3.task, None)
            .await
            .unwrap()
            .from_cache
    );
    assert_eq!(
        std::fs::read(a3.task.join("local/tool.bin")).unwrap(),
        b"version two!"
    );
    let log = srv.log();
    assert_eq!(log[2].if_none_match.as_deref(), Some("\"v1\""));
    assert_eq!((log[2].status, log[2].body_bytes), (200, 12));

    // Different request headers are a different cache entry (no conditional request).
    let mut with_auth = art.clone();
    with_auth
        .headers
        .insert("Authorization".into(), "Bearer other-user".into());
    let a4 = alloc();
    g.fetch(&with_auth, &a4.alloc, &a4.task, None)
        .await
        .unwrap();
    assert_eq!(srv.log()[3].if_none_match, None);
}

#[tokio::test]
async fn last_modified_revalidation() {
    let srv = Server::start();
    let lm = "Wed, 21 Oct 2026 07:28:00 GMT";
    srv.put("/data.txt", b"payload", None, Some(lm));
    let cache = tempfile::tempdir().unwrap();
    let g = Getter::new(GetterConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..GetterConfig::default()
    })
    .unwrap();
    let art = Artifact::new(format!("{}/data.txt", srv.base));
    let (a1, a2) = (alloc(), alloc());
    g.fetch(&art, &a1.alloc, &a1.task, None).await.unwrap();
    assert!(
        g.fetch(&art, &a2.alloc, &a2.task, None)
            .await
            .unwrap()
            .from_cache
    );
    assert_eq!(
        std::fs::read(a2.task.join("local/data.txt")).unwrap(),
        b"payload"
    );
    let log = srv.log();
    assert_eq!(log[1].if_modified_since.as_deref(), Some(lm));
    assert_eq!((log[1].status, log[1].body_bytes), (304, 0));
}
