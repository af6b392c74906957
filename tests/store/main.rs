//! Durability proof of the sessions store: a child process writes in a loop and
//! is killed with SIGKILL at random moments; every write it reported is still there.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use medgemma_desk::store::at_rest::StoreKey;
use medgemma_desk::store::{NewDraft, Notes, SessionId, Store};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Set (to the data folder) only in the child process.
const CHILD_ENV: &str = "MEDGEMMA_STORE_CHILD";
/// The child's store key (64 hex digits) when the store is encrypted.
const CHILD_KEY_ENV: &str = "MEDGEMMA_STORE_CHILD_KEY";

fn key_from_hex(hex: &str) -> StoreKey {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    StoreKey::from_bytes(bytes)
}
const KILLS: usize = 120;

fn seed() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
}

fn draft(text: String) -> NewDraft {
    NewDraft {
        model_id: "google/medgemma-4b-it".into(),
        weights_sha256: "0".repeat(64),
        quantization: "bf16".into(),
        device: "cpu".into(),
        app_version: medgemma_desk::version::APP_VERSION.into(),
        prompt: "Describe this chest X-ray.".into(),
        params: serde_json::json!({ "temperature": 0.0 }),
        seed: 7,
        prompt_tokens: 10,
        generated_tokens: 5,
        timings: serde_json::json!({ "decode_ms": 1.0 }),
        stop_reason: "end_of_turn".into(),
        text,
        template: "chest-xray-report".into(),
        question: None,
        error: None,
        ..Default::default()
    }
}

/// The child: writes sessions, note edits, drafts and deletions forever and
/// prints one line per committed write, after the commit returned.
#[test]
#[ignore = "the writer half of killed_writers_lose_nothing; it runs only as that test's child"]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let key = std::env::var(CHILD_KEY_ENV).ok().map(|h| key_from_hex(&h));
    let mut store = Store::open_with(Path::new(&dir), key.as_ref()).expect("the child opens the store");
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        // Unbuffered: a line is in the pipe before the next write starts.
        let _ = out.write_all(format!("{line}\n").as_bytes()).and_then(|_| out.flush());
    };
    say("ready".into());
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let mut mine: Vec<SessionId> = Vec::new();
    loop {
        let id = store.create_session(&format!("session {}", rng.random::<u32>())).expect("create");
        say(format!("S {id}"));
        mine.push(id);
        for k in 0..rng.random_range(1..4u32) {
            let notes = Notes { indication: format!("indication {id}"), free_text: format!("edit {k}"), ..Default::default() };
            store.save_notes(id, &notes).expect("save notes");
            say(format!("N {id} {k}"));
        }
        if rng.random_bool(0.3) {
            let bytes: Vec<u8> = (0..rng.random_range(1..20_000)).map(|_| rng.random()).collect();
            let sha = store.add_image(id, &bytes, &serde_json::json!({ "modality": "CR" })).expect("image");
            say(format!("I {id} {sha}"));
        }
        for k in 0..rng.random_range(0..3u32) {
            store.save_report(id, &format!("report {k}")).expect("report");
            say(format!("R {id} {k}"));
        }
        if rng.random_bool(0.5) {
            let text = format!("draft {} for {id}", rng.random::<u32>());
            let draft_id = store.add_draft(id, &draft(text.clone())).expect("draft");
            say(format!("D {id} {draft_id} {text}"));
        }
        if mine.len() > 3 && rng.random_bool(0.15) {
            let gone = mine.swap_remove(rng.random_range(0..mine.len() - 1));
            store.delete_session(gone).expect("delete");
            say(format!("X {gone}"));
        }
    }
}

/// What the child reported as committed.
#[derive(Default)]
struct Reported {
    sessions: BTreeSet<i64>,
    deleted: BTreeSet<i64>,
    /// The highest note edit per session.
    notes: BTreeMap<i64, u32>,
    /// Draft id → (session, text).
    drafts: BTreeMap<i64, (i64, String)>,
    /// The highest report edit per session.
    reports: BTreeMap<i64, u32>,
    /// Images (sha256) per session.
    images: BTreeMap<i64, Vec<String>>,
    writes: usize,
}

impl Reported {
    fn take(&mut self, line: &str) {
        let parts: Vec<&str> = line.splitn(4, ' ').collect();
        let num = |i: usize| parts.get(i).and_then(|s| s.parse::<i64>().ok()).expect(line);
        match parts[0] {
            "S" => {
                self.sessions.insert(num(1));
            }
            "N" => {
                let k = num(2) as u32;
                let e = self.notes.entry(num(1)).or_insert(k);
                *e = (*e).max(k);
            }
            "D" => {
                self.drafts.insert(num(2), (num(1), parts.get(3).expect(line).to_string()));
            }
            "R" => {
                let k = num(2) as u32;
                let e = self.reports.entry(num(1)).or_insert(k);
                *e = (*e).max(k);
            }
            "I" => {
                self.images.entry(num(1)).or_default().push(parts.get(2).expect(line).to_string());
            }
            "X" => {
                self.sessions.remove(&num(1));
                self.deleted.insert(num(1));
            }
            _ => return, // "ready" and the test harness's own lines
        }
        self.writes += 1;
    }

    /// Checks the store against every reported write; the number of checks.
    fn verify(&mut self, dir: &Path, key: Option<&StoreKey>) -> usize {
        let store = Store::open_with(dir, key).unwrap_or_else(|e| panic!("the store opens after a kill: {e}"));
        assert_eq!(store.integrity_check(), Ok(()), "PRAGMA integrity_check after a kill");
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        if let Some(key) = key {
            medgemma_desk::store::at_rest::key_connection(&conn, key).unwrap();
        }
        conn.execute("INSERT INTO search (search) VALUES ('integrity-check')", []).expect("the search index is intact");
        let mut checked = 0;
        let mut drafts_seen = BTreeMap::new();
        // The child may have committed a deletion it was killed before reporting;
        // the audit log (same transaction) says so. Anything else missing is lost.
        let deleted_unreported: Vec<i64> = self
            .sessions
            .iter()
            .copied()
            .filter(|&id| {
                let deleted: i64 = conn
                    .query_row("SELECT count(*) FROM audit WHERE session_id = ?1 AND event = 'deleted'", [id], |r| r.get(0))
                    .unwrap();
                deleted > 0
            })
            .collect();
        assert!(deleted_unreported.len() <= 1, "only the write in flight can be unreported: {deleted_unreported:?}");
        for id in deleted_unreported {
            self.sessions.remove(&id);
            self.deleted.insert(id);
        }
        for &id in &self.sessions {
            let detail = store.session(SessionId(id)).unwrap().unwrap_or_else(|| panic!("reported session {id} is lost"));
            if let Some(&k) = self.notes.get(&id) {
                let edit: u32 = detail.notes.free_text.trim_start_matches("edit ").parse().unwrap_or_else(|_| {
                    panic!("session {id}: reported note edit {k} is lost (notes: {:?})", detail.notes)
                });
                assert!(edit >= k, "session {id}: note edit {k} was reported, the store has {edit}");
            }
            if let Some(&k) = self.reports.get(&id) {
                let text = detail.reports.last().map(|r| r.text.clone()).unwrap_or_default();
                let edit: u32 = text.trim_start_matches("report ").parse().unwrap_or_else(|_| {
                    panic!("session {id}: reported report edit {k} is lost (reports: {:?})", detail.reports)
                });
                assert!(edit >= k, "session {id}: report edit {k} was reported, the store has {edit}");
            }
            for sha in self.images.get(&id).into_iter().flatten() {
                assert!(detail.images.iter().any(|i| &i.sha256 == sha), "session {id}: reported image {sha} is lost");
                // Read through the store: opened with the key, checked against the hash.
                let bytes = store.image_bytes(sha).unwrap_or_else(|e| panic!("image {sha}: {e}")).expect("the image row");
                assert_eq!(&medgemma_desk::digest::sha256_hex(&bytes), sha, "image bytes intact");
                checked += 1;
            }
            for d in detail.drafts {
                drafts_seen.insert(d.id.0, (id, d.draft.text));
            }
            checked += 1;
        }
        for (draft_id, (session, text)) in &self.drafts {
            if self.sessions.contains(session) {
                assert_eq!(drafts_seen.get(draft_id), Some(&(*session, text.clone())), "reported draft {draft_id} is lost");
                checked += 1;
            }
        }
        for &id in &self.deleted {
            assert!(store.session(SessionId(id)).unwrap().is_none(), "deleted session {id} came back");
            checked += 1;
        }
        checked
    }
}

#[test]
fn killed_writers_lose_nothing() {
    killed_writers(None);
}

/// The same on a SQLCipher store with sealed image files.
#[test]
fn killed_writers_lose_nothing_in_an_encrypted_store() {
    killed_writers(Some("5e".repeat(32)));
}

fn killed_writers(key_hex: Option<String>) {
    let key = key_hex.as_deref().map(key_from_hex);
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let seed = seed();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut reported = Reported::default();
    let (start, mut checks, mut early_kills) = (Instant::now(), 0, 0);
    for round in 0..KILLS {
        let mut child = Command::new(&exe);
        child.args(["child_writer", "--exact", "--ignored", "--nocapture", "--test-threads=1"]).env(CHILD_ENV, tmp.path());
        if let Some(hex) = &key_hex {
            child.env(CHILD_KEY_ENV, hex);
        }
        let mut child = child
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the child starts");
        let pipe = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut pipe = BufReader::new(pipe);
            let mut line = String::new();
            // A line cut by the kill has no newline: it was never fully reported.
            while pipe.read_line(&mut line).unwrap_or(0) > 0 && line.ends_with('\n') {
                if tx.send(line.trim_end().to_string()).is_err() {
                    break;
                }
                line.clear();
            }
        });
        // One round in ten kills while the child may still be opening the store
        // (WAL recovery, schema check); the others while it writes.
        let mut lines = Vec::new();
        if round % 10 == 9 {
            std::thread::sleep(Duration::from_micros(rng.random_range(0..5_000)));
            early_kills += 1;
        } else {
            loop {
                let line = rx.recv_timeout(Duration::from_secs(20)).expect("the child reports ready");
                // libtest may print "test child_writer ... " before it on the same line.
                let ready = line.ends_with("ready");
                lines.push(line);
                if ready {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(5..50)));
        }
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        for line in &lines {
            reported.take(line);
        }
        checks += reported.verify(tmp.path(), key.as_ref());
    }
    let elapsed = start.elapsed();
    eprintln!(
        "store durability ({}): {KILLS} SIGKILLs ({early_kills} during open), {} committed writes reported, \
         {} sessions alive, {checks} checks passed, {:.1} s, seed {seed}",
        if key.is_some() { "encrypted" } else { "plain" },
        reported.writes,
        reported.sessions.len(),
        elapsed.as_secs_f64()
    );
    assert!(reported.writes > KILLS, "the child wrote between kills");
}
