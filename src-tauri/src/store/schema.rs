//! The store's schema as versioned migrations (`PRAGMA user_version` counts them).
//! Migrations only ever get appended; an applied one is never edited.

use rusqlite_migration::{Migrations, M};

/// Version 1: the clinical domain, the audit log and the search index.
///
/// Decisions worth knowing:
/// - `sessions.id` is AUTOINCREMENT so that a deleted session's number is never
///   given to a new one (an ID in a note or a script must not change meaning).
/// - Image bytes live in files under the data folder, named by their sha256,
///   not as blobs: the DB stays small (fast backups, fast integrity checks),
///   and the files are written once and never change.
/// - `audit` has no foreign key to `sessions` and can be neither updated nor
///   deleted from: deleting a session leaves its trail ("created", "edited",
///   "deleted") but no clinical text, because `detail` only ever holds ids,
///   field names and counts — never titles, notes or report text.
/// - `search` is one FTS5 table over session titles, notes, drafts and reports.
///   Its rowid encodes where a row came from (id * 4 + kind: 0 title, 1 notes,
///   2 draft, 3 report), so the triggers that keep it in sync find rows by key.
///   `secure-delete` makes FTS5 really remove a deleted row's terms.
const V1: &str = r#"
CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'drafted', 'preliminary', 'final'))
);
CREATE INDEX sessions_by_created ON sessions (created_at DESC, id DESC);

CREATE TABLE images (
    sha256              TEXT PRIMARY KEY CHECK (length(sha256) = 64),
    byte_size           INTEGER NOT NULL CHECK (byte_size >= 0),
    stored_path         TEXT NOT NULL,
    tags_json           TEXT NOT NULL DEFAULT '{}',
    model_input_sha256  TEXT CHECK (model_input_sha256 IS NULL OR length(model_input_sha256) = 64)
) WITHOUT ROWID;

CREATE TABLE session_images (
    session_id    INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    image_sha256  TEXT NOT NULL REFERENCES images (sha256),
    position      INTEGER NOT NULL CHECK (position >= 0),
    PRIMARY KEY (session_id, position)
) WITHOUT ROWID;
CREATE INDEX session_images_by_image ON session_images (image_sha256);

CREATE TABLE notes (
    session_id  INTEGER PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    indication  TEXT NOT NULL DEFAULT '',
    history     TEXT NOT NULL DEFAULT '',
    comparison  TEXT NOT NULL DEFAULT '',
    free_text   TEXT NOT NULL DEFAULT '',
    updated_at  TEXT NOT NULL
);

CREATE TABLE drafts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id        INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at        TEXT NOT NULL,
    model_id          TEXT NOT NULL,
    weights_sha256    TEXT NOT NULL,
    quantization      TEXT NOT NULL,
    device            TEXT NOT NULL,
    app_version       TEXT NOT NULL,
    prompt            TEXT NOT NULL,
    params_json       TEXT NOT NULL,
    seed              INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    generated_tokens  INTEGER NOT NULL,
    timings_json      TEXT NOT NULL,
    stop_reason       TEXT NOT NULL,
    text              TEXT NOT NULL
);
CREATE INDEX drafts_by_session ON drafts (session_id, id);

CREATE TABLE reports (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id   INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL CHECK (version >= 1),
    text         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('draft', 'preliminary', 'final')),
    signed_at    TEXT,
    created_at   TEXT NOT NULL,
    addendum_of  INTEGER REFERENCES reports (id) ON DELETE CASCADE,
    UNIQUE (session_id, version)
);

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  INTEGER,
    at          TEXT NOT NULL,
    event       TEXT NOT NULL
                CHECK (event IN ('created', 'edited', 'drafted', 'signed', 'exported', 'imported', 'deleted')),
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_session ON audit (session_id, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE VIRTUAL TABLE search USING fts5 (
    session_id UNINDEXED,
    body,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO search (search, rank) VALUES ('secure-delete', 1);

CREATE TRIGGER search_session_insert AFTER INSERT ON sessions BEGIN
    INSERT INTO search (rowid, session_id, body) VALUES (new.id * 4, new.id, new.title);
END;
CREATE TRIGGER search_session_update AFTER UPDATE OF title ON sessions BEGIN
    DELETE FROM search WHERE rowid = old.id * 4;
    INSERT INTO search (rowid, session_id, body) VALUES (new.id * 4, new.id, new.title);
END;
CREATE TRIGGER search_session_delete AFTER DELETE ON sessions BEGIN
    DELETE FROM search WHERE rowid = old.id * 4;
END;

CREATE TRIGGER search_notes_insert AFTER INSERT ON notes BEGIN
    INSERT INTO search (rowid, session_id, body) VALUES (new.session_id * 4 + 1, new.session_id,
        concat_ws(char(10), new.indication, new.history, new.comparison, new.free_text));
END;
CREATE TRIGGER search_notes_update AFTER UPDATE ON notes BEGIN
    DELETE FROM search WHERE rowid = old.session_id * 4 + 1;
    INSERT INTO search (rowid, session_id, body) VALUES (new.session_id * 4 + 1, new.session_id,
        concat_ws(char(10), new.indication, new.history, new.comparison, new.free_text));
END;
CREATE TRIGGER search_notes_delete AFTER DELETE ON notes BEGIN
    DELETE FROM search WHERE rowid = old.session_id * 4 + 1;
END;

CREATE TRIGGER search_draft_insert AFTER INSERT ON drafts BEGIN
    INSERT INTO search (rowid, session_id, body) VALUES (new.id * 4 + 2, new.session_id, new.text);
END;
CREATE TRIGGER search_draft_update AFTER UPDATE OF text ON drafts BEGIN
    DELETE FROM search WHERE rowid = old.id * 4 + 2;
    INSERT INTO search (rowid, session_id, body) VALUES (new.id * 4 + 2, new.session_id, new.text);
END;
CREATE TRIGGER search_draft_delete AFTER DELETE ON drafts BEGIN
    DELETE FROM search WHERE rowid = old.id * 4 + 2;
END;

CREATE TRIGGER search_report_insert AFTER INSERT ON reports BEGIN
    INSERT INTO search (rowid, session_id, body) VALUES (new.id * 4 + 3, new.session_id, new.text);
END;
CREATE TRIGGER search_report_update AFTER UPDATE OF text ON reports BEGIN
    DELETE FROM search WHERE rowid = old.id * 4 + 3;
    INSERT INTO search (rowid, session_id, body) VALUES (new.id * 4 + 3, new.session_id, new.text);
END;
CREATE TRIGGER search_report_delete AFTER DELETE ON reports BEGIN
    DELETE FROM search WHERE rowid = old.id * 4 + 3;
END;
"#;

/// Version 2: what a draft was asked for and how it ended. `template` is the
/// template's id, `question` the clinician's follow-up (NULL for a first
/// draft), `error` why a generation stopped early (NULL when it did not): a
/// partial draft is kept and marked, never dropped.
const V2: &str = r#"
ALTER TABLE drafts ADD COLUMN template TEXT NOT NULL DEFAULT '';
ALTER TABLE drafts ADD COLUMN question TEXT;
ALTER TABLE drafts ADD COLUMN error TEXT;
"#;

/// Version 3: the AI draft a report version was started from, so review
/// compares the report with the draft it came from.
const V3: &str = r#"
ALTER TABLE reports ADD COLUMN from_draft INTEGER REFERENCES drafts (id) ON DELETE SET NULL;
"#;

/// Version 4: `session_images` with its key columns declared first. SQLite
/// up to at least 3.40 (Debian 12's) misreads a WITHOUT ROWID table whose
/// primary-key columns are not its first columns in `PRAGMA integrity_check`
/// (it reported "NULL value in session_images.image_sha256" for every row,
/// though none is NULL); declared in storage order, every SQLite reads it
/// as sound. The rows are copied as they are; nothing references the table.
const V4: &str = r#"
CREATE TABLE session_images_v4 (
    session_id    INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL CHECK (position >= 0),
    image_sha256  TEXT NOT NULL REFERENCES images (sha256),
    PRIMARY KEY (session_id, position)
) WITHOUT ROWID;
INSERT INTO session_images_v4 (session_id, position, image_sha256)
    SELECT session_id, position, image_sha256 FROM session_images;
DROP TABLE session_images;
ALTER TABLE session_images_v4 RENAME TO session_images;
CREATE INDEX session_images_by_image ON session_images (image_sha256);
"#;

/// Version 5: what a draft needs to be made again and checked: the prompt's
/// and the answer's token ids (JSON arrays), the hash of the exact image the
/// model saw (per draft; the image row's is the latest only), MedGemma 1.5's
/// thinking, and for a re-run the draft it repeated with the verdict.
const V5: &str = r#"
ALTER TABLE drafts ADD COLUMN prompt_ids_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE drafts ADD COLUMN token_ids_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE drafts ADD COLUMN model_input_sha256 TEXT
    CHECK (model_input_sha256 IS NULL OR length(model_input_sha256) = 64);
ALTER TABLE drafts ADD COLUMN thinking TEXT;
ALTER TABLE drafts ADD COLUMN rerun_of INTEGER REFERENCES drafts (id) ON DELETE SET NULL;
ALTER TABLE drafts ADD COLUMN rerun_verdict TEXT;
"#;

/// Version 6: each signed report version keeps the origin of each of its
/// sentences (AI, edited, clinician: a JSON array), computed once at
/// sign-off, so later edits (a new version, an addendum) cannot change what
/// the signed one says about itself.
const V6: &str = r#"
ALTER TABLE reports ADD COLUMN origins_json TEXT;
"#;

/// Version 7: drafts found by the image their model saw (the image is kept
/// once for every draft that saw it; deleting a session removes only those
/// no other session's draft names).
const V7: &str = r#"
CREATE INDEX drafts_by_model_input ON drafts (model_input_sha256) WHERE model_input_sha256 IS NOT NULL;
"#;

/// Version 8: which of the session's images, and which frame, each draft's
/// model saw (a JSON array of `{image_sha256, position, frame}`; empty for a
/// draft without an image or kept before this, which saw the first image's
/// first frame).
const V8: &str = r#"
ALTER TABLE drafts ADD COLUMN views_json TEXT NOT NULL DEFAULT '[]';
"#;

/// Version 9: measurements drawn on a session's images (a length, an angle),
/// in image pixel coordinates on the image and frame they were drawn on; the
/// value is computed from them and the image's pixel spacing when shown.
const V9: &str = r#"
CREATE TABLE measurements (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id    INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    image_sha256  TEXT NOT NULL CHECK (length(image_sha256) = 64),
    frame         INTEGER NOT NULL CHECK (frame >= 0),
    kind          TEXT NOT NULL CHECK (kind IN ('length', 'angle')),
    points_json   TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX measurements_by_session ON measurements (session_id, id);
"#;

/// Version 10: the patient a session is of, as a hash of the Patient ID
/// (keyed by the store's secret in an encrypted store), never the ID itself:
/// how a session's priors are found. NULL where the image named no patient,
/// and for sessions made before this version.
const V10: &str = r#"
ALTER TABLE sessions ADD COLUMN patient_key TEXT CHECK (patient_key IS NULL OR length(patient_key) = 64);
CREATE INDEX sessions_by_patient ON sessions (patient_key, created_at) WHERE patient_key IS NOT NULL;
"#;

/// Every migration, oldest first. Append; never edit or reorder.
const ALL: &[M<'static>] = &[M::up(V1), M::up(V2), M::up(V3), M::up(V4), M::up(V5), M::up(V6), M::up(V7), M::up(V8), M::up(V9), M::up(V10)];

/// The schema version this build writes (the number of migrations).
pub const LATEST: i64 = ALL.len() as i64;

pub fn migrations() -> Migrations<'static> {
    Migrations::from_slice(ALL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().expect("the migrations apply to an empty database");
    }

    #[test]
    fn migrates_up_from_empty() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, LATEST);
        for table in ["sessions", "images", "session_images", "notes", "drafts", "reports", "audit", "search"] {
            let n: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_schema WHERE name = ?1", [table], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 1, "table {table} exists");
        }
    }
}
