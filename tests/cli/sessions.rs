//! `medgemma-desk sessions …` as a user runs it, on stores made through the
//! library (the same code the window uses).

use medgemma_desk::store::{Notes, Store};

use crate::{assert_one_line, medgemma_desk, stderr, stdout};

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_str(stdout(out).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

#[test]
fn list_of_an_empty_store_is_an_empty_array() {
    let tmp = tempfile::tempdir().unwrap();
    let out = medgemma_desk(&["sessions", "list", "--json", "--data-dir", tmp.path().to_str().unwrap()]);
    assert_eq!(stdout(&out).trim(), "[]", "{}", stderr(&out));
    assert!(tmp.path().join(medgemma_desk::store::FILE_NAME).is_file(), "the store lives in --data-dir");
}

#[test]
fn list_show_search_and_delete_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let (a, b) = {
        let mut store = Store::open(tmp.path()).unwrap();
        let a = store.create_session("Chest PA, cough").unwrap();
        let b = store.create_session("Follow-up").unwrap();
        store.save_notes(b, &Notes { indication: "Pleural effusion?".into(), ..Default::default() }).unwrap();
        (a, b)
    };

    let list = json(&medgemma_desk(&["sessions", "list", "--json", "--data-dir", dir]));
    let ids: Vec<i64> = list.as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [b.0, a.0], "newest first");
    assert_eq!(list[1]["title"], "Chest PA, cough");
    assert_eq!(list[0]["status"], "open");

    let text = medgemma_desk(&["sessions", "list", "--data-dir", dir]);
    assert!(stdout(&text).contains("Follow-up"), "{}", stdout(&text));

    let found = json(&medgemma_desk(&["sessions", "search", "effus", "--json", "--data-dir", dir]));
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], b.0);
    let odd = medgemma_desk(&["sessions", "search", "\"effus* OR (", "--data-dir", dir]);
    assert!(odd.status.success(), "FTS syntax in the words is plain text: {}", stderr(&odd));

    let shown = json(&medgemma_desk(&["sessions", "show", &b.to_string(), "--json", "--data-dir", dir]));
    assert_eq!(shown["notes"]["indication"], "Pleural effusion?");

    let deleted = medgemma_desk(&["sessions", "delete", &b.to_string(), "--data-dir", dir]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    let list = json(&medgemma_desk(&["sessions", "list", "--json", "--data-dir", dir]));
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], a.0);
    assert!(Store::open(tmp.path()).unwrap().session(b).unwrap().is_none());
}

#[test]
fn an_unknown_session_exits_1_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    for args in [["sessions", "show", "42"], ["sessions", "delete", "42"]] {
        let mut full = args.to_vec();
        full.extend(["--data-dir", dir]);
        let out = medgemma_desk(&full);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert_one_line(&err);
        assert!(err.contains("no session 42"), "{err}");
    }
}

#[test]
fn a_store_from_a_newer_version_exits_1_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Store::open(tmp.path()).unwrap());
    let conn = rusqlite::Connection::open(tmp.path().join(medgemma_desk::store::FILE_NAME)).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let out = medgemma_desk(&["sessions", "list", "--data-dir", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_one_line(&err);
    assert!(err.contains("newer version"), "{err}");
}
