//! Unit tests of the store: schema, refusal of newer stores, search, delete,
//! the audit log, and the file's privacy.

use serde_json::json;

use super::sessions::fts_query;
use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

pub(super) fn sample_draft(text: &str) -> NewDraft {
    NewDraft {
        model_id: "google/medgemma-4b-it".into(),
        weights_sha256: "ab".repeat(32),
        quantization: "bf16".into(),
        device: "cpu".into(),
        app_version: crate::version::APP_VERSION.into(),
        prompt: "<start_of_turn>user\nDescribe this X-ray".into(),
        params: json!({ "temperature": 0.0, "top_k": 1, "max_new_tokens": 300 }),
        seed: u64::MAX - 7,
        prompt_tokens: 270,
        generated_tokens: 42,
        timings: json!({ "prefill_ms": 812.5, "decode_ms": 2100.0 }),
        stop_reason: "end_of_turn".into(),
        text: text.into(),
        template: "chest-xray-report".into(),
        question: None,
        error: None,
        ..Default::default()
    }
}

fn count(store: &Store, sql: &str) -> i64 {
    store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn open_sets_wal_foreign_keys_and_secure_delete() {
    let (_dir, store) = store();
    let mode: String = store.conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(count(&store, "PRAGMA foreign_keys"), 1);
    assert_eq!(count(&store, "PRAGMA secure_delete"), 1);
    assert_eq!(count(&store, "PRAGMA synchronous"), 1, "NORMAL");
    assert_eq!(store.integrity_check(), Ok(()));
}

#[cfg(unix)]
#[test]
fn the_file_is_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, mut store) = store();
    store.create_session("x").unwrap();
    for name in [FILE_NAME.to_string(), format!("{FILE_NAME}-wal")] {
        let mode = std::fs::metadata(dir.path().join(&name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
}

#[test]
fn reopening_keeps_everything() {
    let (dir, mut store) = store();
    let id = store.create_session("Chest PA").unwrap();
    let notes = Notes { indication: "cough".into(), history: "smoker".into(), comparison: "none".into(), free_text: "é ü 中".into() };
    store.save_notes(id, &notes).unwrap();
    let draft_id = store.add_draft(id, &sample_draft("No acute findings.")).unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let detail = store.session(id).unwrap().unwrap();
    assert_eq!(detail.summary.title, "Chest PA");
    assert_eq!(detail.summary.status, SessionStatus::Drafted);
    assert_eq!(detail.notes, notes);
    assert_eq!(detail.drafts.len(), 1);
    assert_eq!(detail.drafts[0].id, draft_id);
    assert_eq!(detail.drafts[0].draft, sample_draft("No acute findings."), "provenance round-trips exactly");
}

#[test]
fn a_newer_store_is_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let path = dir.path().join(FILE_NAME);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", schema::LATEST + 1).unwrap();
    }
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found, .. } if found == schema::LATEST + 1), "{err}");
    assert!(err.to_string().contains("newer version of MedGemma Desk"), "{err}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(v, schema::LATEST + 1, "nothing was changed");
}

#[test]
fn a_file_that_is_not_a_store_is_called_damaged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), vec![0x5a; 8192]).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
}

#[test]
fn list_is_newest_first() {
    let (_dir, mut store) = store();
    let a = store.create_session("first").unwrap();
    let b = store.create_session("second").unwrap();
    let ids: Vec<_> = store.list_sessions().unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, [b, a]);
}

#[test]
fn search_finds_notes_drafts_and_titles_by_prefix() {
    let (_dir, mut store) = store();
    let a = store.create_session("Mrs Example").unwrap();
    let b = store.create_session("other").unwrap();
    store.save_notes(a, &Notes { indication: "Suspected pneumothorax".into(), ..Default::default() }).unwrap();
    store.add_draft(b, &sample_draft("Small left pleural effusion.")).unwrap();
    let ids = |q: &str| store.search(q).unwrap().into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids("pneumo"), [a]);
    assert_eq!(ids("PLEURAL eff"), [b]);
    assert_eq!(ids("example"), [a]);
    assert_eq!(ids("pleural pneumo"), Vec::<SessionId>::new(), "every word is required");
    assert_eq!(ids("").len(), 2, "no words lists everything");
}

#[test]
fn search_tolerates_fts_syntax_in_user_text() {
    let (_dir, mut store) = store();
    let a = store.create_session("x").unwrap();
    store.save_notes(a, &Notes { free_text: "pt's \"R\" lung: NEAR-total collapse (OR not)".into(), ..Default::default() }).unwrap();
    for q in ["\"", "\"R\"", "pt's", "lung:", "NEAR-total", "(OR", "*", "a AND", "NOT", "col*", "^x", "{a b}", "'", "\u{0}"] {
        store.search(q).unwrap_or_else(|e| panic!("{q:?}: {e}"));
    }
    assert_eq!(store.search("\"R\" lung:").unwrap().len(), 1);
    assert_eq!(store.search("NEAR-total").unwrap().len(), 1);
    assert_eq!(fts_query("a\"b"), Some("\"a\"* \"b\"*".into()));
}

#[test]
fn editing_notes_replaces_their_search_entry() {
    let (_dir, mut store) = store();
    let a = store.create_session("x").unwrap();
    store.save_notes(a, &Notes { history: "asthma".into(), ..Default::default() }).unwrap();
    store.save_notes(a, &Notes { history: "diabetes".into(), ..Default::default() }).unwrap();
    assert!(store.search("asthma").unwrap().is_empty());
    assert_eq!(store.search("diabetes").unwrap().len(), 1);
}

#[test]
fn delete_removes_rows_and_search_entries() {
    let (_dir, mut store) = store();
    let keep = store.create_session("keep").unwrap();
    let gone = store.create_session("gone").unwrap();
    store.save_notes(gone, &Notes { free_text: "cardiomegaly".into(), ..Default::default() }).unwrap();
    store.add_draft(gone, &sample_draft("cardiomegaly noted")).unwrap();
    store.delete_session(gone).unwrap();
    assert!(store.session(gone).unwrap().is_none());
    assert!(store.search("cardiomegaly").unwrap().is_empty());
    for table in ["notes", "drafts", "reports", "session_images"] {
        assert_eq!(count(&store, &format!("SELECT count(*) FROM {table}")), 0, "{table}");
    }
    assert_eq!(count(&store, "SELECT count(*) FROM search"), 1, "only the kept session's title");
    assert!(store.session(keep).unwrap().is_some());
    assert!(matches!(store.delete_session(gone), Err(StoreError::NoSuchSession(id)) if id == gone));
    let new = store.create_session("new").unwrap();
    assert!(new > gone, "a deleted session's number is never reused");
}

#[test]
fn writes_to_a_missing_session_fail_cleanly() {
    let (_dir, mut store) = store();
    let missing = SessionId(99);
    assert!(matches!(store.save_notes(missing, &Notes::default()), Err(StoreError::NoSuchSession(_))));
    assert!(matches!(store.add_draft(missing, &sample_draft("x")), Err(StoreError::NoSuchSession(_))));
    assert_eq!(count(&store, "SELECT count(*) FROM audit"), 0, "nothing half-written");
}

#[test]
fn the_audit_log_is_appended_and_cannot_be_changed() {
    let (_dir, mut store) = store();
    let id = store.create_session("Mrs Example").unwrap();
    store.save_notes(id, &Notes { history: "asthma".into(), ..Default::default() }).unwrap();
    store.add_draft(id, &sample_draft("t")).unwrap();
    store.delete_session(id).unwrap();
    let mut stmt = store.conn.prepare("SELECT event FROM audit ORDER BY id").unwrap();
    let events: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(events, ["created", "edited", "drafted", "deleted"], "the trail outlives the session");
    drop(stmt);
    let update = store.conn.execute("UPDATE audit SET event = 'edited'", []).unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = store.conn.execute("DELETE FROM audit", []).unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
    let details: String = store.conn.query_row("SELECT group_concat(detail) FROM audit", [], |r| r.get(0)).unwrap();
    assert!(!details.contains("Example") && !details.contains("asthma"), "no clinical text in the audit log: {details}");
}
