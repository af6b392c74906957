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
    let out = medgemma_desk(&[
        "sessions",
        "list",
        "--json",
        "--data-dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(stdout(&out).trim(), "[]", "{}", stderr(&out));
    assert!(
        tmp.path().join(medgemma_desk::store::FILE_NAME).is_file(),
        "the store lives in --data-dir"
    );
}

#[test]
fn list_show_search_and_delete_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let (a, b) = {
        let mut store = Store::open(tmp.path()).unwrap();
        let a = store.create_session("Chest PA, cough").unwrap();
        let b = store.create_session("Follow-up").unwrap();
        store
            .save_notes(
                b,
                &Notes {
                    indication: "Pleural effusion?".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        (a, b)
    };

    let list = json(&medgemma_desk(&[
        "sessions",
        "list",
        "--json",
        "--data-dir",
        dir,
    ]));
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [b.0, a.0], "newest first");
    assert_eq!(list[1]["title"], "Chest PA, cough");
    assert_eq!(list[0]["status"], "open");

    let text = medgemma_desk(&["sessions", "list", "--data-dir", dir]);
    assert!(stdout(&text).contains("Follow-up"), "{}", stdout(&text));

    let found = json(&medgemma_desk(&[
        "sessions",
        "search",
        "effus",
        "--json",
        "--data-dir",
        dir,
    ]));
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], b.0);
    let odd = medgemma_desk(&["sessions", "search", "\"effus* OR (", "--data-dir", dir]);
    assert!(
        odd.status.success(),
        "FTS syntax in the words is plain text: {}",
        stderr(&odd)
    );

    let shown = json(&medgemma_desk(&[
        "sessions",
        "show",
        &b.to_string(),
        "--json",
        "--data-dir",
        dir,
    ]));
    assert_eq!(shown["notes"]["indication"], "Pleural effusion?");

    let deleted = medgemma_desk(&["sessions", "delete", &b.to_string(), "--data-dir", dir]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    let list = json(&medgemma_desk(&[
        "sessions",
        "list",
        "--json",
        "--data-dir",
        dir,
    ]));
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], a.0);
    assert!(Store::open(tmp.path())
        .unwrap()
        .session(b)
        .unwrap()
        .is_none());
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
    let conn =
        rusqlite::Connection::open(tmp.path().join(medgemma_desk::store::FILE_NAME)).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let out = medgemma_desk(&[
        "sessions",
        "list",
        "--data-dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_one_line(&err);
    assert!(err.contains("newer version"), "{err}");
}

/// A store in `dir` with one session holding notes, a report and an image of
/// `image_bytes` bytes; returns the session's number.
fn session_with_image(
    dir: &std::path::Path,
    image_bytes: usize,
) -> medgemma_desk::store::SessionId {
    let mut store = Store::open(dir).unwrap();
    let id = store.create_session("CR chest").unwrap();
    let bytes: Vec<u8> = (0..image_bytes).map(|i| (i * 7919 % 251) as u8).collect();
    store
        .add_image(id, &bytes, &serde_json::json!({ "modality": "CR" }))
        .unwrap();
    store
        .save_notes(
            id,
            &Notes {
                indication: "Fever, cough".into(),
                ..Default::default()
            },
        )
        .unwrap();
    store
        .save_report(id, "IMPRESSION: right lower lobe consolidation.")
        .unwrap();
    id
}

#[test]
fn export_and_import_move_a_session_between_data_folders() {
    let from = tempfile::tempdir().unwrap();
    let to = tempfile::tempdir().unwrap();
    let id = session_with_image(from.path(), 10_000);
    let bundle = from.path().join("case.mgdesk.json");
    let bundle_arg = bundle.to_str().unwrap();
    let out = medgemma_desk(&[
        "sessions",
        "export",
        &id.to_string(),
        "-o",
        bundle_arg,
        "--data-dir",
        from.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = medgemma_desk(&[
        "sessions",
        "import",
        bundle_arg,
        "--data-dir",
        to.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("as session 1"), "{}", stdout(&out));
    let shown = json(&medgemma_desk(&[
        "sessions",
        "show",
        "1",
        "--json",
        "--data-dir",
        to.path().to_str().unwrap(),
    ]));
    assert_eq!(shown["notes"]["indication"], "Fever, cough");
    assert_eq!(
        shown["reports"][0]["text"],
        "IMPRESSION: right lower lobe consolidation."
    );
    assert_eq!(shown["images"][0]["byte_size"], 10_000);
    let found = json(&medgemma_desk(&[
        "sessions",
        "search",
        "consolidation",
        "--json",
        "--data-dir",
        to.path().to_str().unwrap(),
    ]));
    assert_eq!(
        found.as_array().unwrap().len(),
        1,
        "the imported report is searchable"
    );
}

#[test]
fn a_damaged_bundle_is_refused_in_one_line_and_changes_nothing() {
    let from = tempfile::tempdir().unwrap();
    let id = session_with_image(from.path(), 1000);
    let bundle = from.path().join("case.mgdesk.json");
    Store::open(from.path())
        .unwrap()
        .export_session(id, &bundle)
        .unwrap();
    let mut text = std::fs::read_to_string(&bundle).unwrap();
    // Flip one base64 character of the image: its hash no longer matches.
    let at = text.find("\"data\":\"").unwrap() + 10;
    let flipped = if &text[at..at + 1] == "A" { "B" } else { "A" };
    text.replace_range(at..at + 1, flipped);
    std::fs::write(&bundle, text).unwrap();
    let to = tempfile::tempdir().unwrap();
    let out = medgemma_desk(&[
        "sessions",
        "import",
        bundle.to_str().unwrap(),
        "--data-dir",
        to.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_one_line(&err);
    assert!(
        err.contains("does not match its sha256") && err.contains("nothing was imported"),
        "{err}"
    );
    let list = json(&medgemma_desk(&[
        "sessions",
        "list",
        "--json",
        "--data-dir",
        to.path().to_str().unwrap(),
    ]));
    assert_eq!(list, serde_json::json!([]));
    assert!(
        !to.path().join(medgemma_desk::store::IMAGES_DIR).exists(),
        "no image bytes were left behind"
    );
}

#[test]
fn a_store_locked_by_another_instance_says_so_and_works_after() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let id = session_with_image(tmp.path(), 100);
    let bundle = tmp.path().join("case.mgdesk.json");
    Store::open(tmp.path())
        .unwrap()
        .export_session(id, &bundle)
        .unwrap();
    // Another process holds the write lock, as a second instance mid-write would.
    let other =
        rusqlite::Connection::open(tmp.path().join(medgemma_desk::store::FILE_NAME)).unwrap();
    other
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO audit (at, event) VALUES ('x', 'created');")
        .unwrap();
    let out = medgemma_desk(&[
        "sessions",
        "import",
        bundle.to_str().unwrap(),
        "--data-dir",
        dir,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_one_line(&err);
    assert!(err.contains("busy"), "{err}");
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);
    let list = json(&medgemma_desk(&[
        "sessions",
        "list",
        "--json",
        "--data-dir",
        dir,
    ]));
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "nothing half-written while locked"
    );
    let out = medgemma_desk(&[
        "sessions",
        "import",
        bundle.to_str().unwrap(),
        "--data-dir",
        dir,
    ]);
    assert!(
        out.status.success(),
        "once the lock is gone it works: {}",
        stderr(&out)
    );
}

/// Runs `script` as root of a private mount namespace (so tests can mount a
/// small tmpfs without privileges), with the binary as $BIN.
fn in_mount_namespace(script: &str, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .args(args)
        .env("BIN", env!("CARGO_BIN_EXE_medgemma-desk"))
        // The store in the mount is encrypted (as without a keyring): a full
        // disk loses nothing there either.
        .env(medgemma_desk::store_key::PASSPHRASE_ENV, "full disk passphrase")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("unshare (util-linux) runs");
    out
}

#[test]
fn a_full_disk_is_reported_and_nothing_is_half_written() {
    let work = tempfile::tempdir().unwrap();
    let small = tempfile::tempdir().unwrap();
    let big = tempfile::tempdir().unwrap();
    let small_id = session_with_image(small.path(), 2_000);
    let big_id = session_with_image(big.path(), 3 << 20);
    let small_bundle = work.path().join("small.mgdesk.json");
    let big_bundle = work.path().join("big.mgdesk.json");
    Store::open(small.path())
        .unwrap()
        .export_session(small_id, &small_bundle)
        .unwrap();
    Store::open(big.path())
        .unwrap()
        .export_session(big_id, &big_bundle)
        .unwrap();
    let mnt = work.path().join("disk");
    std::fs::create_dir(&mnt).unwrap();
    // A 2 MiB disk: the first session fits, the second's 3 MiB image does not.
    let script = r#"set -e
        mount -t tmpfs -o size=2m tmpfs "$1"
        "$BIN" --data-dir "$1/data" sessions import "$2"
        echo "--- full"
        "$BIN" --data-dir "$1/data" sessions import "$3" 2>&1 || echo "exit $?"
        echo "--- list"
        "$BIN" --data-dir "$1/data" sessions list --json 2>&1
        echo "--- files"
        find "$1/data/images" -type f | wc -l
        mount -o remount,ro "$1"
        echo "--- readonly"
        "$BIN" --data-dir "$1/data" sessions import "$2" 2>&1 || echo "exit $?"
        echo "--- end""#;
    let out = in_mount_namespace(
        script,
        &[
            mnt.to_str().unwrap(),
            small_bundle.to_str().unwrap(),
            big_bundle.to_str().unwrap(),
        ],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let section = |name: &str| {
        text.split(&format!("--- {name}\n"))
            .nth(1)
            .unwrap_or("")
            .split("--- ")
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let full = section("full");
    assert!(
        full.contains("disk is full") && full.ends_with("exit 1"),
        "{text}"
    );
    assert_eq!(
        full.lines().count(),
        2,
        "one line and the exit status: {full}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&section("list")).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "the first session is intact, the second not half-there"
    );
    assert_eq!(section("files"), "1", "no partial image file is left");
    let readonly = section("readonly");
    assert!(readonly.contains("not writable") && readonly.contains("Read-only") && readonly.ends_with("exit 1"), "{text}");
}

#[test]
fn a_report_exports_as_markdown_and_fhir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let id = session_with_image(tmp.path(), 100);
    Store::open(tmp.path()).unwrap().sign_report(id, medgemma_desk::store::SignOff::Final).unwrap();
    let md = tmp.path().join("report.md");
    let out = medgemma_desk(&["sessions", "export", &id.to_string(), "--format", "markdown", "-o", md.to_str().unwrap(), "--data-dir", dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("**Status:** Final") && text.contains("right lower lobe consolidation"), "{text}");
    let fhir = tmp.path().join("report.json");
    let out = medgemma_desk(&["sessions", "export", &id.to_string(), "--format", "fhir", "-o", fhir.to_str().unwrap(), "--data-dir", dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bundle: serde_json::Value = serde_json::from_slice(&std::fs::read(&fhir).unwrap()).unwrap();
    assert_eq!(bundle["entry"][0]["resource"]["resourceType"], "DiagnosticReport");
    assert_eq!(bundle["entry"][0]["resource"]["status"], "final");
    assert_eq!(bundle["entry"][0]["resource"]["conclusion"], "right lower lobe consolidation.");
}
