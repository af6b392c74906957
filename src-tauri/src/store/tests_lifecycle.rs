//! Unit tests of images, reports and sign-off, bundles, backups and recovery.

use serde_json::{json, Value};

use super::tests::sample_draft;
use super::*;
use crate::digest::sha256_hex;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn count(store: &Store, sql: &str) -> i64 {
    store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A session with everything a session can hold: two images, notes, two
/// drafts, a signed final report and an addendum.
fn full_session(store: &mut Store) -> SessionId {
    let id = store.create_session("CR chest PA — é 中").unwrap();
    store
        .add_image(id, b"first image bytes", &json!({ "modality": "CR" }))
        .unwrap();
    store
        .add_image(id, &[0u8, 1, 2, 255, 254], &json!({ "modality": "DX" }))
        .unwrap();
    let notes = Notes {
        indication: "cough".into(),
        history: "smoker".into(),
        comparison: "2025-01-01".into(),
        free_text: "\"quotes\" \u{1F600}".into(),
    };
    store.save_notes(id, &notes).unwrap();
    store
        .add_draft(id, &sample_draft("FINDINGS: clear lungs."))
        .unwrap();
    store
        .add_draft(id, &sample_draft("FINDINGS: small effusion."))
        .unwrap();
    store
        .save_report(id, "FINDINGS: small left effusion.\nIMPRESSION: effusion.")
        .unwrap();
    store.sign_report(id, SignOff::Final).unwrap();
    store
        .save_report(id, "Addendum: compared with prior, unchanged.")
        .unwrap();
    id
}

#[test]
fn images_are_kept_once_by_content_and_removed_with_their_last_session() {
    let (dir, mut store) = store();
    let a = store.create_session("a").unwrap();
    let b = store.create_session("b").unwrap();
    let sha = store.add_image(a, b"same bytes", &json!({})).unwrap();
    assert_eq!(sha, sha256_hex(b"same bytes"));
    assert_eq!(store.add_image(b, b"same bytes", &json!({})).unwrap(), sha);
    let path = store.image_path(&sha).unwrap().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"same bytes");
    assert!(path.starts_with(dir.path().join(IMAGES_DIR)));
    assert_eq!(count(&store, "SELECT count(*) FROM images"), 1);
    store.delete_session(a).unwrap();
    assert!(path.exists(), "still used by b");
    store.delete_session(b).unwrap();
    assert!(!path.exists(), "the last session that used it is gone");
    assert_eq!(count(&store, "SELECT count(*) FROM images"), 0);
}

#[cfg(unix)]
#[test]
fn image_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, mut store) = store();
    let a = store.create_session("a").unwrap();
    let sha = store.add_image(a, b"x", &json!({})).unwrap();
    let file = store.image_path(&sha).unwrap().unwrap();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let folder = dir.path().join(IMAGES_DIR);
    assert_eq!(
        std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn report_versions_sign_off_and_addenda() {
    let (_dir, mut store) = store();
    let id = store.create_session("x").unwrap();
    assert!(matches!(
        store.sign_report(id, SignOff::Final),
        Err(SignError::NothingToSign)
    ));
    let v1 = store.save_report(id, "FINDINGS: normal.").unwrap();
    assert_eq!((v1.version, v1.status.as_str()), (1, "draft"));
    let v1b = store.save_report(id, "FINDINGS: normal heart.").unwrap();
    assert_eq!(
        v1b.id, v1.id,
        "autosave updates the working version in place"
    );
    let p = store.sign_report(id, SignOff::Preliminary).unwrap();
    assert_eq!(p.status, "preliminary");
    assert!(p.signed_at.is_some());
    assert_eq!(
        store.session(id).unwrap().unwrap().summary.status,
        SessionStatus::Preliminary
    );
    let v2 = store
        .save_report(id, "FINDINGS: normal heart and lungs.")
        .unwrap();
    assert_eq!(
        (v2.version, v2.status.as_str(), v2.addendum_of),
        (2, "draft", None),
        "an edit after preliminary is a new version"
    );
    let fin = store.sign_report(id, SignOff::Final).unwrap();
    assert_eq!(fin.status, "final");
    assert!(matches!(
        store.sign_report(id, SignOff::Final),
        Err(SignError::AlreadyFinal)
    ));
    let add = store
        .save_report(id, "Addendum: rib fracture noted.")
        .unwrap();
    assert_eq!(
        (add.version, add.addendum_of),
        (3, Some(fin.id)),
        "an edit after final is an addendum"
    );
    store.sign_report(id, SignOff::Final).unwrap();
    let detail = store.session(id).unwrap().unwrap();
    assert_eq!(detail.summary.status, SessionStatus::Final);
    let texts: Vec<_> = detail
        .reports
        .iter()
        .map(|r| (r.text.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            ("FINDINGS: normal heart.", "preliminary"),
            ("FINDINGS: normal heart and lungs.", "final"),
            ("Addendum: rib fracture noted.", "final"),
        ],
        "signed text never changes"
    );
    assert_eq!(
        store.search("fracture").unwrap().len(),
        1,
        "reports are searchable"
    );
}

#[test]
fn an_empty_report_cannot_be_signed() {
    let (_dir, mut store) = store();
    let id = store.create_session("x").unwrap();
    store.save_report(id, "  \n").unwrap();
    assert!(matches!(
        store.sign_report(id, SignOff::Final),
        Err(SignError::Empty)
    ));
}

#[test]
fn export_then_import_restores_the_session_exactly() {
    let (_dir, mut store) = store();
    let id = full_session(&mut store);
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("case.mgdesk.json");
    store.export_session(id, &file).unwrap();
    let (_dir2, mut other) = self::store();
    let new_id = other.import_session(&file).unwrap();
    let a = store.session(id).unwrap().unwrap();
    let b = other.session(new_id).unwrap().unwrap();
    assert_eq!(a.summary.title, b.summary.title);
    assert_eq!(a.summary.created_at, b.summary.created_at);
    assert_eq!(a.summary.status, b.summary.status);
    assert_eq!(a.notes, b.notes);
    assert_eq!(
        a.drafts
            .iter()
            .map(|d| (&d.created_at, &d.draft))
            .collect::<Vec<_>>(),
        b.drafts
            .iter()
            .map(|d| (&d.created_at, &d.draft))
            .collect::<Vec<_>>()
    );
    let strip = |r: &Report| {
        (
            r.version,
            r.text.clone(),
            r.status.clone(),
            r.signed_at.clone(),
            r.created_at.clone(),
            r.addendum_of.is_some(),
        )
    };
    assert_eq!(
        a.reports.iter().map(strip).collect::<Vec<_>>(),
        b.reports.iter().map(strip).collect::<Vec<_>>()
    );
    assert_eq!(
        b.reports[1].addendum_of,
        Some(b.reports[0].id),
        "the addendum points to the imported final report"
    );
    let strip_img = |i: &ImageRef| (i.sha256.clone(), i.position, i.byte_size, i.tags.clone());
    assert_eq!(
        a.images.iter().map(strip_img).collect::<Vec<_>>(),
        b.images.iter().map(strip_img).collect::<Vec<_>>()
    );
    for image in &b.images {
        let bytes = std::fs::read(other.image_path(&image.sha256).unwrap().unwrap()).unwrap();
        assert_eq!(sha256_hex(&bytes), image.sha256);
    }
    assert_eq!(other.integrity_check(), Ok(()));
}

/// Everything the store holds, to prove a refused import changed nothing.
fn snapshot(store: &Store, dir: &std::path::Path) -> (Vec<i64>, Vec<std::path::PathBuf>) {
    let mut counts = Vec::new();
    for table in [
        "sessions",
        "images",
        "session_images",
        "notes",
        "drafts",
        "reports",
        "audit",
        "search",
    ] {
        counts.push(count(store, &format!("SELECT count(*) FROM {table}")));
    }
    let mut files: Vec<_> = walk(&dir.join(IMAGES_DIR));
    files.extend(walk(&dir.join(MODEL_INPUTS_DIR)));
    files.sort();
    (counts, files)
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                vec![e.path()]
            }
        })
        .collect()
}

#[test]
fn corrupt_or_hostile_bundles_are_refused_and_change_nothing() {
    let (_dir, mut store) = store();
    let id = full_session(&mut store);
    let out = tempfile::tempdir().unwrap();
    let good = out.path().join("good.mgdesk.json");
    store.export_session(id, &good).unwrap();
    let bundle: Value = serde_json::from_slice(&std::fs::read(&good).unwrap()).unwrap();

    let (target_dir, mut target) = self::store();
    target.import_session(&good).unwrap();
    let before = snapshot(&target, target_dir.path());

    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut b = bundle.clone();
        f(&mut b);
        serde_json::to_vec(&b).unwrap()
    };
    let other_bytes =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"other bytes");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not json", b"{ \"format\": ".to_vec(), "not valid JSON"),
        (
            "truncated",
            std::fs::read(&good).unwrap()[..200].to_vec(),
            "not valid JSON",
        ),
        (
            "other json",
            b"[1, 2, 3]".to_vec(),
            "no MedGemma Desk session header",
        ),
        (
            "newer",
            mutate(&|b| b["format_version"] = json!(99)),
            "newer version",
        ),
        (
            "unknown field",
            mutate(&|b| b["session"]["patient_name"] = json!("x")),
            "unknown field",
        ),
        (
            "path in hash",
            mutate(&|b| b["images"][0]["sha256"] = json!("../../../../etc/passwd")),
            "malformed hash",
        ),
        (
            "uppercase hash",
            mutate(&|b| {
                b["images"][0]["sha256"] =
                    json!(b["images"][0]["sha256"].as_str().unwrap().to_uppercase())
            }),
            "malformed hash",
        ),
        (
            "altered image",
            mutate(&|b| b["images"][1]["data"] = json!(other_bytes)),
            "does not match its sha256",
        ),
        (
            "bad base64",
            mutate(&|b| b["images"][0]["data"] = json!("@@@")),
            "not valid base64",
        ),
        (
            "bad status",
            mutate(&|b| b["session"]["status"] = json!("deleted")),
            "status",
        ),
        (
            "bad time",
            mutate(&|b| b["session"]["created_at"] = json!("yesterday")),
            "not a time",
        ),
        (
            "signed without time",
            mutate(&|b| b["reports"][0]["signed_at"] = json!(null)),
            "impossible status",
        ),
        (
            "version gap",
            mutate(&|b| b["reports"][1]["version"] = json!(7)),
            "versions",
        ),
        (
            "addendum to draft",
            mutate(&|b| b["reports"][1]["addendum_of_version"] = json!(2)),
            "not final",
        ),
        (
            "huge title",
            mutate(&|b| b["session"]["title"] = json!("x".repeat(5000))),
            "longer than",
        ),
        (
            "wrong type",
            mutate(&|b| b["drafts"][0]["seed"] = json!("seven")),
            "invalid type",
        ),
    ];
    for (name, bytes, expected) in cases {
        let file = out
            .path()
            .join(format!("{}.mgdesk.json", name.replace(' ', "-")));
        std::fs::write(&file, bytes).unwrap();
        let err = target.import_session(&file).expect_err(name);
        assert!(err.to_string().contains(expected), "{name}: {err}");
        assert_eq!(
            snapshot(&target, target_dir.path()),
            before,
            "{name}: nothing changed"
        );
    }
    assert_eq!(target.integrity_check(), Ok(()));
}

#[test]
fn daily_backup_is_made_once_and_old_ones_are_pruned() {
    let (dir, mut store) = store();
    store.create_session("x").unwrap();
    let backups_dir = dir.path().join(BACKUPS_DIR);
    std::fs::create_dir_all(&backups_dir).unwrap();
    for day in 1..=9 {
        std::fs::write(
            backups_dir.join(format!("medgemma-desk-2020-01-0{day}.sqlite3")),
            b"old",
        )
        .unwrap();
    }
    let made = store.backup_if_due().unwrap().expect("today's backup");
    assert!(store.backup_if_due().unwrap().is_none(), "once a day");
    let kept = backups(dir.path());
    assert_eq!(kept.len(), KEEP_BACKUPS);
    assert_eq!(kept[0], made, "newest first");
    let copy = rusqlite::Connection::open(&made).unwrap();
    let n: i64 = copy
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "the backup holds the sessions");
}

/// Damages pages after the header: SQLite opens the file but its check fails.
fn damage(path: &std::path::Path) {
    use std::io::{Seek, SeekFrom, Write};
    let len = std::fs::metadata(path).unwrap().len();
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut offset = 4096;
    while offset + 512 < len {
        f.seek(SeekFrom::Start(offset + 100)).unwrap();
        f.write_all(&[0xA5; 300]).unwrap();
        offset += 4096;
    }
}

#[test]
fn a_damaged_store_is_moved_aside_and_the_newest_backup_restored() {
    let dir = tempfile::tempdir().unwrap();
    let kept;
    {
        let mut store = Store::open(dir.path()).unwrap();
        for i in 0..40 {
            store.create_session(&format!("before backup {i}")).unwrap();
        }
        kept = store.list_sessions().unwrap();
        store.backup_if_due().unwrap().unwrap();
        store.create_session("after backup").unwrap();
        // Fold the WAL into the file so the damage hits committed pages.
        store
            .conn
            .pragma_update(None, "wal_checkpoint", "TRUNCATE")
            .unwrap();
    }
    damage(&dir.path().join(FILE_NAME));
    let (store, recovery) = Store::open_or_recover(dir.path()).unwrap();
    let recovery = recovery.expect("the damage is found");
    assert!(recovery.restored_from.is_some());
    assert!(recovery.moved_to.exists(), "the damaged file is kept");
    assert!(
        recovery.message().contains("backup"),
        "{}",
        recovery.message()
    );
    assert_eq!(
        store.list_sessions().unwrap(),
        kept,
        "the backup's sessions are back"
    );
    assert_eq!(store.integrity_check(), Ok(()));
    drop(store);
    let (_store, again) = Store::open_or_recover(dir.path()).unwrap();
    assert!(again.is_none(), "the restored store is healthy");
}

#[test]
fn a_damaged_store_without_backup_starts_empty_and_keeps_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), vec![0x5a; 8192]).unwrap();
    let (store, recovery) = Store::open_or_recover(dir.path()).unwrap();
    let recovery = recovery.unwrap();
    assert!(recovery.restored_from.is_none());
    assert_eq!(std::fs::read(&recovery.moved_to).unwrap(), vec![0x5a; 8192]);
    assert!(recovery.message().contains("no backup"));
    assert!(store.list_sessions().unwrap().is_empty());
}

/// What an administrator would run: the system's own SQLite (python3's
/// sqlite3 module; Debian 12's is 3.40.1, the oldest SQLite we claim to
/// support) checks a store with a full session as sound. Before schema 4 it
/// reported "NULL value in session_images.image_sha256" for every row.
#[test]
fn the_systems_own_sqlite_finds_the_store_sound() {
    let (dir, mut store) = store();
    full_session(&mut store);
    drop(store);
    let check = "import sqlite3, sys\n\
                 c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
                 print(sqlite3.sqlite_version)\n\
                 print(';'.join(r[0] for r in c.execute('PRAGMA integrity_check')))";
    let out = std::process::Command::new("python3")
        .args(["-c", check])
        .arg(dir.path().join(FILE_NAME))
        .output()
        .expect("python3 runs (make test installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default();
    assert_eq!(lines.next(), Some("ok"), "SQLite {version}'s integrity check of the store");
}

/// A store written before schema 4 keeps its images, in order, and is sound.
#[test]
fn schema_4_keeps_every_session_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        schema::migrations().to_version(&mut conn, 3).unwrap();
        conn.execute_batch(
            "INSERT INTO sessions (title, created_at, updated_at) VALUES ('old', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
             INSERT INTO images (sha256, byte_size, stored_path) VALUES (printf('%064d', 1), 1, 'a'), (printf('%064d', 2), 1, 'b');
             INSERT INTO session_images (session_id, image_sha256, position) VALUES (1, printf('%064d', 2), 0), (1, printf('%064d', 1), 1);",
        )
        .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let rows: Vec<(i64, i64, String)> = store
        .conn
        .prepare("SELECT session_id, position, image_sha256 FROM session_images ORDER BY position")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, [(1, 0, format!("{:064}", 2)), (1, 1, format!("{:064}", 1))]);
    assert_eq!(store.integrity_check(), Ok(()));
}

/// What a re-run needs (token ids, the model-input hash, the thinking, the
/// image and frame its model saw) and the re-run's link to its draft are
/// kept, found by draft id, and carried by a bundle into a store whose row
/// ids differ; a bundle whose draft names an image it does not hold there is
/// refused.
#[test]
fn a_drafts_record_and_its_re_run_survive_the_store_and_a_bundle() {
    let (_dir, mut store) = store();
    let id = store.create_session("re-run").unwrap();
    store.add_image(id, b"the PA view", &json!({})).unwrap();
    let lateral = store.add_image(id, b"the cine loop", &json!({ "frames": 30 })).unwrap();
    let recorded = NewDraft {
        views: vec![DraftView { image_sha256: lateral.clone(), position: 1, frame: 17 }],
        prompt_ids: vec![2, 105, 9],
        token_ids: vec![7, 8],
        model_input_sha256: Some("c".repeat(64)),
        thinking: Some("Look at the apex first.".into()),
        ..sample_draft("FINDINGS: clear.")
    };
    let original = store.add_draft(id, &recorded).unwrap();
    let rerun = NewDraft {
        rerun_of: Some(original.0),
        rerun_verdict: Some("reproduced exactly (2 tokens)".into()),
        ..recorded.clone()
    };
    store.add_draft(id, &rerun).unwrap();
    let drafts = store.session(id).unwrap().unwrap().drafts;
    assert_eq!((&drafts[0].draft, &drafts[1].draft), (&recorded, &rerun));
    let (found_session, found) = store.find_draft(original).unwrap().expect("found by id");
    assert_eq!((found_session, found.draft), (id, recorded.clone()));
    assert!(store.find_draft(DraftId(999)).unwrap().is_none());

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("case.mgdesk.json");
    store.export_session(id, &file).unwrap();
    let (_dir2, mut other) = self::store();
    let taken = other.create_session("already here").unwrap();
    for _ in 0..3 {
        other.add_draft(taken, &sample_draft("other")).unwrap();
    }
    let new_id = other.import_session(&file).unwrap();
    let imported = other.session(new_id).unwrap().unwrap().drafts;
    assert_eq!(imported[0].draft, recorded);
    assert_ne!(imported[0].id, original, "the rows were numbered anew");
    assert_eq!(imported[1].draft.rerun_of, Some(imported[0].id.0), "the re-run points to the imported draft");
    assert_eq!(imported[1].draft.rerun_verdict, rerun.rerun_verdict);

    // A draft that names the other image at that place is refused whole.
    let mut bundle: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    bundle["drafts"][0]["views"][0]["position"] = json!(0);
    let altered = out.path().join("altered.mgdesk.json");
    std::fs::write(&altered, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let before = other.list_sessions().unwrap().len();
    let err = other.import_session(&altered).unwrap_err();
    assert!(err.to_string().contains("names an image the bundle does not hold at that place"), "{err}");
    assert_eq!(other.list_sessions().unwrap().len(), before);
}

/// What the model saw is kept once per image whatever number of drafts saw
/// it, read back only as the pixels its hash names, carried by a bundle
/// (checked like the originals), and removed with the last session whose
/// drafts name it.
#[test]
fn the_image_the_model_saw_is_kept_travels_in_a_bundle_and_goes_with_its_last_session() {
    let (dir, mut store) = store();
    let seen = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8 * 30, y as u8 * 30, 99]));
    let sha = store.keep_model_input(&seen).unwrap();
    assert_eq!(sha, crate::model_input_png::pixels_sha256(&seen));
    assert_eq!(store.keep_model_input(&seen).unwrap(), sha, "kept once");
    let path = store.model_input_path(&sha).unwrap();
    assert!(path.starts_with(dir.path().join(MODEL_INPUTS_DIR)) && path.is_file());
    let draft = NewDraft { model_input_sha256: Some(sha.clone()), prompt_ids: vec![2, 3], ..sample_draft("FINDINGS: clear.") };
    let a = store.create_session("a").unwrap();
    let b = store.create_session("b").unwrap();
    store.add_draft(a, &draft).unwrap();
    store.add_draft(b, &draft).unwrap();
    assert_eq!(store.model_input(&sha).unwrap(), Some(seen.clone()));
    assert_eq!(store.model_input(&"0".repeat(64)).unwrap(), None, "none kept under another hash");

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("case.mgdesk.json");
    store.export_session(a, &file).unwrap();
    let bundle: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(bundle["format_version"], json!(bundle::FORMAT_VERSION));
    assert_eq!(bundle["model_inputs"][0]["sha256"], json!(sha));
    let (other_dir, mut other) = self::store();
    let imported = other.import_session(&file).unwrap();
    assert_eq!(other.model_input(&sha).unwrap(), Some(seen.clone()), "the importing store has it too");
    other.delete_session(imported).unwrap();
    assert!(walk(&other_dir.path().join(MODEL_INPUTS_DIR)).is_empty());

    // Altered, or named by no draft: refused, nothing kept.
    let png_of = |img: &image::RgbImage| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, crate::model_input_png::encode(img).unwrap());
    let other_pixels = png_of(&image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3])));
    for (name, change, expected) in [
        ("altered", json!({ "sha256": sha, "data": other_pixels }), "damaged or was altered"),
        ("stray", json!({ "sha256": "e".repeat(64), "data": png_of(&seen) }), "not named by any draft"),
    ] {
        let mut b = bundle.clone();
        b["model_inputs"][0] = change;
        let f = out.path().join(format!("{name}.mgdesk.json"));
        std::fs::write(&f, serde_json::to_vec(&b).unwrap()).unwrap();
        let err = other.import_session(&f).expect_err(name);
        assert!(err.to_string().contains(expected), "{name}: {err}");
        assert!(walk(&other_dir.path().join(MODEL_INPUTS_DIR)).is_empty(), "{name}: nothing kept");
    }
    // A version 1 bundle (before model inputs travelled) is still read.
    let mut old = bundle.clone();
    old["format_version"] = json!(1);
    old.as_object_mut().unwrap().remove("model_inputs");
    let f = out.path().join("old.mgdesk.json");
    std::fs::write(&f, serde_json::to_vec(&old).unwrap()).unwrap();
    other.import_session(&f).unwrap();

    // Other pixels on disk under its name: said, naming the file.
    std::fs::write(&path, crate::model_input_png::encode(&image::RgbImage::from_pixel(8, 8, image::Rgb([0, 0, 0]))).unwrap()).unwrap();
    let err = store.model_input(&sha).unwrap_err();
    assert!(matches!(err, StoreError::DamagedFile { .. }) && err.to_string().contains(&sha), "{err}");

    store.delete_session(a).unwrap();
    assert!(path.exists(), "still named by b's draft");
    store.delete_session(b).unwrap();
    assert!(!path.exists(), "the last session whose drafts named it is gone");
}

/// Each sentence's origin is computed once, at sign-off, and kept with the
/// signed version: an addendum written afterwards is attributed on its own
/// and changes nothing of the version before; a bundle carries both.
#[test]
fn the_origin_of_each_sentence_is_frozen_at_sign_off() {
    use crate::attribution::Origin;
    let (_dir, mut store) = store();
    let id = store.create_session("CR chest").unwrap();
    let draft = store.add_draft(id, &sample_draft("The lungs are clear. No pleural effusion is seen. The cardiomediastinal silhouette is within normal limits.")).unwrap();
    store
        .save_report_from_draft(id, "The lungs are clear. A small left pleural effusion is seen. Old rib fracture.", draft)
        .unwrap();
    assert_eq!(store.session(id).unwrap().unwrap().reports[0].origins, None, "nothing is frozen before sign-off");
    let signed = store.sign_report(id, SignOff::Final).unwrap();
    let origins = |r: &Report| r.origins.clone().unwrap().into_iter().map(|s| (s.text, s.origin)).collect::<Vec<_>>();
    let frozen = vec![
        ("The lungs are clear.".to_string(), Origin::Ai),
        ("A small left pleural effusion is seen.".to_string(), Origin::Edited),
        ("Old rib fracture.".to_string(), Origin::Clinician),
    ];
    assert_eq!(origins(&signed), frozen);
    // An addendum: the clinician's own, attributed when it is signed; version 1 unchanged.
    store.save_report(id, "Compared with the prior film, unchanged.").unwrap();
    store.sign_report(id, SignOff::Final).unwrap();
    let reports = store.session(id).unwrap().unwrap().reports;
    assert_eq!(origins(&reports[0]), frozen);
    assert_eq!(origins(&reports[1]), [("Compared with the prior film, unchanged.".to_string(), Origin::Clinician)]);

    // The Markdown export says it; a bundle carries it to another store.
    let md = crate::export::markdown(&store.session(id).unwrap().unwrap());
    assert!(md.contains("- A small left pleural effusion is seen. — *AI draft, edited by the clinician*"), "{md}");
    assert!(md.contains("- Compared with the prior film, unchanged. — *the clinician*"), "{md}");
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("case.mgdesk.json");
    store.export_session(id, &file).unwrap();
    let (_dir2, mut other) = self::store();
    let new_id = other.import_session(&file).unwrap();
    let imported = other.session(new_id).unwrap().unwrap().reports;
    assert_eq!((origins(&imported[0]), origins(&imported[1])), (origins(&reports[0]), origins(&reports[1])));
    // And the link to the draft the report started from, to the imported draft.
    let imported_draft = other.session(new_id).unwrap().unwrap().drafts[0].id.0;
    assert_eq!(imported[0].from_draft, Some(imported_draft));
}

/// Measurements are kept on the image and frame they were drawn on, in image
/// pixels, listed with the session, refused when they cannot be right (too
/// few points, outside the image, another session's image, a frame the image
/// lacks), removed one by one, and go with their session.
#[test]
fn measurements_are_kept_checked_and_removed() {
    let (_dir, mut store) = store();
    let id = store.create_session("measured").unwrap();
    let sha = store.add_image(id, b"cine", &json!({ "rows": 100, "columns": 200, "frames": 3 })).unwrap();
    let length = NewMeasurement { image_sha256: sha.clone(), frame: 2, kind: MeasureKind::Length, points: vec![[10.0, 20.0], [110.5, 20.0]] };
    let angle = NewMeasurement { kind: MeasureKind::Angle, points: vec![[0.0, 0.0], [50.0, 50.0], [200.0, 100.0]], frame: 0, ..length.clone() };
    let a = store.add_measurement(id, &length).unwrap();
    let b = store.add_measurement(id, &angle).unwrap();
    let kept = store.session(id).unwrap().unwrap().measurements;
    assert_eq!(kept.iter().map(|m| (m.id, m.measurement.clone())).collect::<Vec<_>>(), [(a, length.clone()), (b, angle.clone())]);

    let other = store.create_session("other").unwrap();
    let elsewhere = store.add_image(other, b"another image", &json!({})).unwrap();
    for (bad, says) in [
        (NewMeasurement { points: vec![[1.0, 1.0]], ..length.clone() }, "a length has 2 points, not 1"),
        (NewMeasurement { points: vec![[1.0, 1.0], [200.5, 1.0]], ..length.clone() }, "outside the image"),
        (NewMeasurement { points: vec![[1.0, f64::NAN], [2.0, 1.0]], ..length.clone() }, "outside the image"),
        (NewMeasurement { image_sha256: elsewhere, ..length.clone() }, "not on one of this session's images"),
        (NewMeasurement { frame: 3, ..length.clone() }, "3 frame(s)"),
    ] {
        let err = store.add_measurement(id, &bad).unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
    assert_eq!(store.session(id).unwrap().unwrap().measurements.len(), 2, "nothing more was kept");

    // A bundle carries them to another store; one that cannot be right is refused whole.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("measured.mgdesk.json");
    store.export_session(id, &file).unwrap();
    let (_dir2, mut other_store) = self::store();
    let imported = other_store.import_session(&file).unwrap();
    let carried: Vec<NewMeasurement> = other_store.session(imported).unwrap().unwrap().measurements.into_iter().map(|m| m.measurement).collect();
    assert_eq!(carried, [length.clone(), angle.clone()]);
    let mut bundle: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    bundle["measurements"][1]["points"][2] = json!([201.0, 5.0]);
    let altered = out.path().join("altered.mgdesk.json");
    std::fs::write(&altered, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let err = other_store.import_session(&altered).unwrap_err();
    assert!(err.to_string().contains("measurement 2 cannot be right: a point lies outside the image"), "{err}");
    assert_eq!(other_store.list_sessions().unwrap().len(), 1, "nothing more was kept");

    assert!(store.delete_measurement(id, a).unwrap());
    assert!(!store.delete_measurement(other, b).unwrap(), "not another session's");
    assert_eq!(store.session(id).unwrap().unwrap().measurements.iter().map(|m| m.id).collect::<Vec<_>>(), [b]);
    store.delete_session(id).unwrap();
    let left: i64 = store.conn.query_row("SELECT count(*) FROM measurements", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 0, "they go with their session");
    assert_eq!(store.integrity_check(), Ok(()));
}

/// A session's priors are the other sessions of the same Patient ID, newest
/// first, with their newest signed report; the store keeps a hash of the ID,
/// never the ID (keyed by the store's secret when encrypted, so two stores
/// name the same patient differently).
#[test]
fn priors_are_found_by_a_hash_of_the_patient_id_never_the_id() {
    let (dir, mut store) = store();
    let older = store.create_session("CR CHEST PA · 2024-03-01").unwrap();
    store.set_patient(older, " MRN-0042 ").unwrap();
    store.save_report(older, "IMPRESSION: No acute abnormality.").unwrap();
    store.sign_report(older, SignOff::Final).unwrap();
    let unsigned = store.create_session("CR CHEST LAT · 2024-05-01").unwrap();
    store.set_patient(unsigned, "MRN-0042").unwrap();
    let someone_else = store.create_session("CR CHEST PA · 2024-04-01").unwrap();
    store.set_patient(someone_else, "MRN-0043").unwrap();
    let nobody = store.create_session("PNG").unwrap();
    let today = store.create_session("CR CHEST PA · 2025-01-01").unwrap();
    store.set_patient(today, "MRN-0042").unwrap();

    let priors = store.priors(today).unwrap();
    assert_eq!(priors.iter().map(|p| p.id).collect::<Vec<_>>(), [unsigned, older], "the same patient only, newest first");
    assert_eq!(priors[1].report.as_deref(), Some("IMPRESSION: No acute abnormality."));
    assert!(priors[1].signed_at.is_some());
    assert_eq!(priors[0].report, None, "an unsigned session offers no report");
    assert!(store.priors(nobody).unwrap().is_empty());
    assert!(store.priors(someone_else).unwrap().is_empty());
    assert!(matches!(store.priors(SessionId(999)), Err(StoreError::NoSuchSession(_))));
    drop(store);
    let bytes = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
    assert!(!bytes.windows(8).any(|w| w == b"MRN-0042"), "the ID itself is not kept");

    // Encrypted stores key the hash: another key, another name for the same patient.
    let names: Vec<String> = (0..2)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let key = at_rest::StoreKey::generate().unwrap();
            let mut s = Store::open_with(dir.path(), Some(&key)).unwrap();
            let id = s.create_session("x").unwrap();
            s.set_patient(id, "MRN-0042").unwrap();
            s.conn.query_row("SELECT patient_key FROM sessions WHERE id = ?1", [id.0], |r| r.get(0)).unwrap()
        })
        .collect();
    assert_ne!(names[0], names[1]);
    assert_eq!(names[0].len(), 64);
}
