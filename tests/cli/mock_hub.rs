//! A mock of the Hugging Face Hub on 127.0.0.1 serving the tiny Gemma 3
//! fixture's files as one model repo, with the ways real servers fail: a
//! gated repo, a transfer broken off, a server that stalls, a damaged file.
//! Shared by the CLI tests and the window tests.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sha2::Digest;

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

pub fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/model").canonicalize().unwrap()
}

pub fn sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Default)]
pub struct Behaviour {
    /// Only this bearer token is let in (a gated repo).
    pub token: Option<String>,
    /// Send only this many bytes of this file, once, then hang up.
    pub cut: Option<(String, usize)>,
    /// Never answer.
    pub stall: bool,
    /// Serve this file with one byte changed (etag still the true sha256).
    pub corrupt: Option<String>,
    /// Every request: (path, Range header).
    pub log: Vec<(String, String)>,
}

/// A Hub on 127.0.0.1 with the fixture's files under one repo at `COMMIT`.
pub struct MockHub {
    pub url: String,
    pub state: Arc<Mutex<Behaviour>>,
}

impl MockHub {
    /// Serves the fixture as `repo` (e.g. "google/medgemma-4b-it").
    pub fn start(repo: &str, behaviour: Behaviour) -> Self {
        let files: HashMap<String, Vec<u8>> = std::fs::read_dir(fixture())
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        let files = Arc::new(files);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(behaviour));
        let st = state.clone();
        let repo = repo.to_string();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (files, st) = (files.clone(), st.clone());
                let repo = repo.clone();
                std::thread::spawn(move || serve(conn, &repo, &files, &st));
            }
        });
        Self { url, state }
    }

    pub fn ranges_for(&self, file: &str) -> Vec<String> {
        self.state.lock().unwrap().log.iter().filter(|(p, _)| p.ends_with(&format!("/{file}"))).map(|(_, r)| r.clone()).collect()
    }
}

fn serve(mut conn: TcpStream, repo: &str, files: &HashMap<String, Vec<u8>>, st: &Mutex<Behaviour>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
    let range = headers.get("range").cloned().unwrap_or_default();
    let mut b = st.lock().unwrap();
    b.log.push((path.clone(), range.clone()));
    if b.stall {
        drop(b);
        std::thread::sleep(std::time::Duration::from_secs(600));
        return;
    }
    let reply = |conn: &mut TcpStream, status: &str| {
        let _ = write!(conn, "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    };
    if let Some(token) = &b.token {
        match headers.get("authorization") {
            None => return reply(&mut conn, "401 Unauthorized"),
            Some(h) if h != &format!("Bearer {token}") => return reply(&mut conn, "403 Forbidden"),
            _ => {}
        }
    }
    let prefix = format!("/{repo}/resolve/main/");
    let Some(file) = path.strip_prefix(&prefix).map(str::to_string) else { return reply(&mut conn, "404 Not Found") };
    let Some(bytes) = files.get(&file) else {
        let _ = write!(conn, "HTTP/1.1 404 Not Found\r\nx-error-code: EntryNotFound\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
    };
    let etag = if file.ends_with(".safetensors") { sha256(bytes) } else { sha256(bytes)[..40].to_string() };
    let mut body = bytes.clone();
    if b.corrupt.as_deref() == Some(file.as_str()) {
        let mid = body.len() / 2;
        body[mid] ^= 0xff;
    }
    let spec = range.strip_prefix("bytes=").unwrap_or("0-");
    let (a, z) = spec.split_once('-').unwrap_or(("0", ""));
    let start: usize = a.parse().unwrap_or(0);
    let end: usize = z.parse().map(|e: usize| e + 1).unwrap_or(body.len()).min(body.len());
    let part = &body[start..end];
    let cut = match &b.cut {
        Some((f, n)) if *f == file && part.len() > 1 => Some(*n),
        _ => None,
    };
    if cut.is_some() {
        b.cut = None;
    }
    drop(b);
    let _ = write!(
        conn,
        "HTTP/1.1 206 Partial Content\r\netag: \"{etag}\"\r\nx-repo-commit: {COMMIT}\r\ncontent-range: bytes {start}-{}/{}\r\ncontent-length: {}\r\naccept-ranges: bytes\r\nconnection: close\r\n\r\n",
        end.saturating_sub(1),
        body.len(),
        part.len()
    );
    match cut {
        Some(n) => {
            let _ = conn.write_all(&part[..n.min(part.len())]);
            let _ = conn.flush();
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        None => {
            let _ = conn.write_all(part);
        }
    }
}

