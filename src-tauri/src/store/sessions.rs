//! Sessions and what belongs to them (notes, drafts, reports, images): the
//! typed reads and writes. Every write is one transaction with its audit row.

use std::fmt;

use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{timestamp, Store, StoreError};

/// A session's number, as lists and the command line show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SessionId(pub i64);

/// A draft's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DraftId(pub i64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for DraftId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a session is in its life: no draft yet, drafted, reported, signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Open,
    Drafted,
    Preliminary,
    Final,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Open => "open",
            SessionStatus::Drafted => "drafted",
            SessionStatus::Preliminary => "preliminary",
            SessionStatus::Final => "final",
        }
    }

    pub(super) fn parse(s: &str) -> Self {
        match s {
            "drafted" => SessionStatus::Drafted,
            "preliminary" => SessionStatus::Preliminary,
            "final" => SessionStatus::Final,
            _ => SessionStatus::Open,
        }
    }
}

/// A line of the session list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    pub id: SessionId,
    pub title: String,
    pub created_at: String,
    pub updated_at: String,
    pub status: SessionStatus,
}

/// A page of the session list and how many sessions match in all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionPage {
    pub sessions: Vec<SessionSummary>,
    pub total: u64,
}

/// The clinician's case notes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notes {
    pub indication: String,
    pub history: String,
    pub comparison: String,
    pub free_text: String,
}

/// A generation to keep, with everything needed to say how it was made and
/// to make it again (the exact prompt ids, settings and seed, the hash of the
/// image the model saw, the weights' hash).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewDraft {
    pub model_id: String,
    pub weights_sha256: String,
    pub quantization: String,
    pub device: String,
    pub app_version: String,
    /// The full prompt text, after the chat template.
    pub prompt: String,
    /// Every sampling parameter (temperature, top-k, top-p, max tokens, …).
    pub params: Value,
    pub seed: u64,
    pub prompt_tokens: u32,
    pub generated_tokens: u32,
    pub timings: Value,
    pub stop_reason: String,
    pub text: String,
    /// The template's id.
    #[serde(default)]
    pub template: String,
    /// The clinician's follow-up question, for an answer to one.
    #[serde(default)]
    pub question: Option<String>,
    /// Why the generation stopped early (the text is what came before).
    #[serde(default)]
    pub error: Option<String>,
    /// The prompt's token ids, exactly as the model read them (empty for
    /// drafts made before they were kept).
    #[serde(default)]
    pub prompt_ids: Vec<u32>,
    /// The generated token ids; `text` is their decoding.
    #[serde(default)]
    pub token_ids: Vec<u32>,
    /// sha256 of the exact image the model saw (its size and RGB bytes).
    #[serde(default)]
    pub model_input_sha256: Option<String>,
    /// MedGemma 1.5's thinking, kept apart from the text.
    #[serde(default)]
    pub thinking: Option<String>,
    /// For a re-run: the draft it made again, and the verdict
    /// ("reproduced exactly", "differs from token N …").
    #[serde(default)]
    pub rerun_of: Option<i64>,
    #[serde(default)]
    pub rerun_verdict: Option<String>,
    /// Which of the session's images, and which frame, the model saw (empty:
    /// no image, or a draft kept before this was recorded, which saw the
    /// first image's first frame).
    #[serde(default)]
    pub views: Vec<DraftView>,
}

/// An image of the session and the frame of it that a draft's model saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftView {
    /// The original image's sha256 (as the session keeps it).
    pub image_sha256: String,
    /// Its place among the session's images, from 0.
    pub position: u32,
    /// The frame of a multi-frame image, from 0.
    pub frame: u32,
}

/// A stored draft.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Draft {
    pub id: DraftId,
    pub created_at: String,
    #[serde(flatten)]
    pub draft: NewDraft,
}

/// A version of the clinician's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub id: i64,
    pub version: i64,
    pub text: String,
    pub status: String,
    pub signed_at: Option<String>,
    pub created_at: String,
    pub addendum_of: Option<i64>,
    /// The AI draft this version was started from.
    pub from_draft: Option<i64>,
    /// Each sentence's origin (AI, edited, clinician), frozen when this
    /// version was signed; `None` before sign-off.
    pub origins: Option<Vec<crate::attribution::Sentence>>,
}

/// An image of a session, by content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageRef {
    pub sha256: String,
    pub position: i64,
    pub byte_size: i64,
    /// Relative to the data folder.
    pub stored_path: String,
    pub tags: Value,
    /// Stores before schema 5 kept the hash of the newest draft's model input
    /// here; each draft now keeps its own (`NewDraft::model_input_sha256`).
    pub model_input_sha256: Option<String>,
}

/// Everything kept for one session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionDetail {
    #[serde(flatten)]
    pub summary: SessionSummary,
    pub notes: Notes,
    pub images: Vec<ImageRef>,
    pub drafts: Vec<Draft>,
    pub reports: Vec<Report>,
    pub measurements: Vec<super::Measurement>,
}

const SUMMARY_COLUMNS: &str = "id, title, created_at, updated_at, status";

fn summary(row: &Row<'_>) -> rusqlite::Result<SessionSummary> {
    Ok(SessionSummary {
        id: SessionId(row.get(0)?),
        title: row.get(1)?,
        created_at: row.get(2)?,
        updated_at: row.get(3)?,
        status: SessionStatus::parse(&row.get::<_, String>(4)?),
    })
}

pub(super) fn audit(
    tx: &Transaction<'_>,
    session: SessionId,
    at: &str,
    event: &str,
    detail: Value,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit (session_id, at, event, detail) VALUES (?1, ?2, ?3, ?4)",
        params![session.0, at, event, detail.to_string()],
    )?;
    Ok(())
}

/// Marks a session changed; fails with `NoSuchSession` when it does not exist.
pub(super) fn touch(tx: &Transaction<'_>, id: SessionId, at: &str) -> Result<(), StoreError> {
    match tx.execute(
        "UPDATE sessions SET updated_at = ?2 WHERE id = ?1",
        params![id.0, at],
    )? {
        0 => Err(StoreError::NoSuchSession(id)),
        _ => Ok(()),
    }
}

/// Inserts a draft row (no audit, no status change).
pub(super) fn insert_draft(
    tx: &Transaction<'_>,
    id: SessionId,
    at: &str,
    draft: &NewDraft,
) -> rusqlite::Result<DraftId> {
    tx.execute(
        "INSERT INTO drafts (session_id, created_at, model_id, weights_sha256, quantization, device,
         app_version, prompt, params_json, seed, prompt_tokens, generated_tokens, timings_json,
         stop_reason, text, template, question, error, prompt_ids_json, token_ids_json,
         model_input_sha256, thinking, rerun_of, rerun_verdict, views_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                 ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
        params![
        id.0,
        at,
        draft.model_id,
        draft.weights_sha256,
        draft.quantization,
        draft.device,
        draft.app_version,
        draft.prompt,
        draft.params.to_string(),
        // SQLite integers are signed: the seed's 64 bits are kept as they are.
        draft.seed as i64,
        draft.prompt_tokens,
        draft.generated_tokens,
        draft.timings.to_string(),
        draft.stop_reason,
        draft.text,
        draft.template,
        draft.question,
        draft.error,
        ids_json(&draft.prompt_ids),
        ids_json(&draft.token_ids),
        draft.model_input_sha256,
        draft.thinking,
        draft.rerun_of,
        draft.rerun_verdict,
        serde_json::to_string(&draft.views).unwrap_or_else(|_| "[]".into()),
        ],
    )?;
    Ok(DraftId(tx.last_insert_rowid()))
}

fn json_column(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// Token ids as a JSON array.
fn ids_json(ids: &[u32]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

/// Token ids from a JSON array column (none when it cannot be read).
fn ids_column(text: &str) -> Vec<u32> {
    serde_json::from_str(text).unwrap_or_default()
}

impl Store {
    /// Starts a new, empty session.
    pub fn create_session(&mut self, title: &str) -> Result<SessionId, StoreError> {
        let at = timestamp::now();
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO sessions (title, created_at, updated_at) VALUES (?1, ?2, ?2)",
            params![title, at],
        )?;
        let id = SessionId(tx.last_insert_rowid());
        audit(&tx, id, &at, "created", json!({}))?;
        tx.commit()?;
        Ok(id)
    }

    /// Replaces a session's notes (the autosave of the notes pane).
    pub fn save_notes(&mut self, id: SessionId, notes: &Notes) -> Result<(), StoreError> {
        let at = timestamp::now();
        let tx = self.conn.transaction()?;
        touch(&tx, id, &at)?;
        tx.execute(
            "INSERT INTO notes (session_id, indication, history, comparison, free_text, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (session_id) DO UPDATE SET indication = excluded.indication,
                 history = excluded.history, comparison = excluded.comparison,
                 free_text = excluded.free_text, updated_at = excluded.updated_at",
            params![
                id.0,
                notes.indication,
                notes.history,
                notes.comparison,
                notes.free_text,
                at
            ],
        )?;
        audit(&tx, id, &at, "edited", json!({ "what": "notes" }))?;
        tx.commit()?;
        Ok(())
    }

    /// Keeps a generated draft with its provenance.
    pub fn add_draft(&mut self, id: SessionId, draft: &NewDraft) -> Result<DraftId, StoreError> {
        let at = timestamp::now();
        let tx = self.conn.transaction()?;
        touch(&tx, id, &at)?;
        let draft_id = insert_draft(&tx, id, &at, draft)?;
        tx.execute(
            "UPDATE sessions SET status = 'drafted' WHERE id = ?1 AND status = 'open'",
            [id.0],
        )?;
        audit(&tx, id, &at, "drafted", json!({ "draft": draft_id.0 }))?;
        tx.commit()?;
        Ok(draft_id)
    }

    /// The first `limit` sessions matching `query` (all when it has no word),
    /// newest first, and how many match in all: what the sidebar shows as the
    /// clinician types.
    pub fn find_sessions(&self, query: &str, limit: usize) -> Result<SessionPage, StoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        let (sessions, total) = match fts_query(query) {
            None => {
                let sql = format!("SELECT {SUMMARY_COLUMNS} FROM sessions ORDER BY created_at DESC, id DESC LIMIT ?1");
                let mut stmt = self.conn.prepare(&sql)?;
                let rows = stmt.query_map([limit], summary)?.collect::<Result<Vec<_>, _>>()?;
                let total: i64 = self.conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?;
                (rows, total)
            }
            Some(q) => {
                let matching = "SELECT DISTINCT session_id FROM search WHERE search MATCH ?1";
                let sql = format!(
                    "SELECT {SUMMARY_COLUMNS} FROM sessions WHERE id IN ({matching})
                     ORDER BY created_at DESC, id DESC LIMIT ?2"
                );
                let mut stmt = self.conn.prepare(&sql)?;
                let rows = stmt.query_map(params![q, limit], summary)?.collect::<Result<Vec<_>, _>>()?;
                let total: i64 = self.conn.query_row(&format!("SELECT count(*) FROM ({matching})"), [&q], |r| r.get(0))?;
                (rows, total)
            }
        };
        Ok(SessionPage { sessions, total: total as u64 })
    }

    /// Every session, newest first.
    pub fn list_sessions(&self) -> Result<Vec<SessionSummary>, StoreError> {
        let sql =
            format!("SELECT {SUMMARY_COLUMNS} FROM sessions ORDER BY created_at DESC, id DESC");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map([], summary)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Sessions whose title, notes, drafts or reports contain every word of
    /// `text` (each word also as a prefix: "pneumo" finds "pneumothorax"),
    /// newest first. Any text is safe: FTS query syntax in it is not obeyed.
    pub fn search(&self, text: &str) -> Result<Vec<SessionSummary>, StoreError> {
        let Some(query) = fts_query(text) else {
            return self.list_sessions();
        };
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM sessions
             WHERE id IN (SELECT session_id FROM search WHERE search MATCH ?1)
             ORDER BY created_at DESC, id DESC"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map([query], summary)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// One session with everything kept for it, or `None` if there is none.
    pub fn session(&self, id: SessionId) -> Result<Option<SessionDetail>, StoreError> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM sessions WHERE id = ?1");
        let Some(summary) = self.conn.query_row(&sql, [id.0], summary).optional()? else {
            return Ok(None);
        };
        let notes = self
            .conn
            .query_row(
                "SELECT indication, history, comparison, free_text FROM notes WHERE session_id = ?1",
                [id.0],
                |r| Ok(Notes { indication: r.get(0)?, history: r.get(1)?, comparison: r.get(2)?, free_text: r.get(3)? }),
            )
            .optional()?
            .unwrap_or_default();
        Ok(Some(SessionDetail {
            summary,
            notes,
            images: self.images(id)?,
            drafts: self.drafts(id)?,
            reports: self.reports(id)?,
            measurements: self.measurements(id)?,
        }))
    }

    /// Deletes a session and everything of it: notes, drafts, reports, its
    /// search entries, and the images no other session uses (rows and files).
    pub fn delete_session(&mut self, id: SessionId) -> Result<(), StoreError> {
        let at = timestamp::now();
        let tx = self.conn.transaction()?;
        let orphans: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT i.sha256, i.stored_path FROM images i JOIN session_images s ON s.image_sha256 = i.sha256
                 WHERE s.session_id = ?1 AND NOT EXISTS (SELECT 1 FROM session_images o
                     WHERE o.image_sha256 = i.sha256 AND o.session_id <> ?1)",
            )?;
            let rows = stmt.query_map([id.0], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let rows = rows.collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(|(_, path)| path).collect()
        };
        // The model-input images only this session's drafts name.
        let unseen: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT DISTINCT d.model_input_sha256 FROM drafts d
                 WHERE d.session_id = ?1 AND d.model_input_sha256 IS NOT NULL AND NOT EXISTS (
                     SELECT 1 FROM drafts o WHERE o.model_input_sha256 = d.model_input_sha256 AND o.session_id <> ?1)",
            )?;
            let rows = stmt.query_map([id.0], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        if tx.execute("DELETE FROM sessions WHERE id = ?1", [id.0])? == 0 {
            return Err(StoreError::NoSuchSession(id));
        }
        tx.execute("DELETE FROM images WHERE NOT EXISTS (SELECT 1 FROM session_images s WHERE s.image_sha256 = sha256)", [])?;
        audit(
            &tx,
            id,
            &at,
            "deleted",
            json!({ "images_removed": orphans.len() }),
        )?;
        tx.commit()?;
        let unseen = unseen.iter().filter_map(|sha| self.model_input_path(sha));
        for path in orphans.into_iter().map(|p| self.data_dir.join(p)).chain(unseen) {
            // The rows are gone; a file that cannot be removed now is only bytes
            // no session points to (a later cleanup can sweep it).
            if let Err(err) = std::fs::remove_file(&path) {
                if err.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("could not remove an image file of a deleted session: {err}");
                }
            }
        }
        Ok(())
    }

    pub(super) fn images(&self, id: SessionId) -> Result<Vec<ImageRef>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT i.sha256, s.position, i.byte_size, i.stored_path, i.tags_json, i.model_input_sha256
             FROM session_images s JOIN images i ON i.sha256 = s.image_sha256
             WHERE s.session_id = ?1 ORDER BY s.position",
        )?;
        let rows = stmt.query_map([id.0], |r| {
            Ok(ImageRef {
                sha256: r.get(0)?,
                position: r.get(1)?,
                byte_size: r.get(2)?,
                stored_path: r.get(3)?,
                tags: json_column(r.get(4)?),
                model_input_sha256: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// A draft by id, with the session it belongs to.
    pub fn find_draft(&self, id: DraftId) -> Result<Option<(SessionId, Draft)>, StoreError> {
        let session: Option<i64> =
            self.conn.query_row("SELECT session_id FROM drafts WHERE id = ?1", [id.0], |r| r.get(0)).optional()?;
        let Some(session) = session.map(SessionId) else { return Ok(None) };
        Ok(self.drafts(session)?.into_iter().find(|d| d.id == id).map(|d| (session, d)))
    }

    fn drafts(&self, id: SessionId) -> Result<Vec<Draft>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, created_at, model_id, weights_sha256, quantization, device, app_version, prompt,
                 params_json, seed, prompt_tokens, generated_tokens, timings_json, stop_reason, text,
                 template, question, error, prompt_ids_json, token_ids_json, model_input_sha256, thinking,
                 rerun_of, rerun_verdict, views_json
             FROM drafts WHERE session_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id.0], |r| {
            Ok(Draft {
                id: DraftId(r.get(0)?),
                created_at: r.get(1)?,
                draft: NewDraft {
                    model_id: r.get(2)?,
                    weights_sha256: r.get(3)?,
                    quantization: r.get(4)?,
                    device: r.get(5)?,
                    app_version: r.get(6)?,
                    prompt: r.get(7)?,
                    params: json_column(r.get(8)?),
                    seed: r.get::<_, i64>(9)? as u64,
                    prompt_tokens: r.get(10)?,
                    generated_tokens: r.get(11)?,
                    timings: json_column(r.get(12)?),
                    stop_reason: r.get(13)?,
                    text: r.get(14)?,
                    template: r.get(15)?,
                    question: r.get(16)?,
                    error: r.get(17)?,
                    prompt_ids: ids_column(&r.get::<_, String>(18)?),
                    token_ids: ids_column(&r.get::<_, String>(19)?),
                    model_input_sha256: r.get(20)?,
                    thinking: r.get(21)?,
                    rerun_of: r.get(22)?,
                    rerun_verdict: r.get(23)?,
                    // Written by this code from a typed list; anything else
                    // (a hand-edited row) reads as "not recorded".
                    views: serde_json::from_str(&r.get::<_, String>(24)?).unwrap_or_default(),
                },
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub(super) fn reports(&self, id: SessionId) -> Result<Vec<Report>, StoreError> {
        let sql = format!("SELECT {REPORT_COLUMNS} FROM reports WHERE session_id = ?1 ORDER BY version");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([id.0], report_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

/// The columns `report_row` reads, in order.
pub(super) const REPORT_COLUMNS: &str = "id, version, text, status, signed_at, created_at, addendum_of, from_draft, origins_json";

/// A `reports` row selected with `REPORT_COLUMNS`.
pub(super) fn report_row(r: &Row<'_>) -> rusqlite::Result<Report> {
    Ok(Report {
        id: r.get(0)?,
        version: r.get(1)?,
        text: r.get(2)?,
        status: r.get(3)?,
        signed_at: r.get(4)?,
        created_at: r.get(5)?,
        addendum_of: r.get(6)?,
        from_draft: r.get(7)?,
        origins: r.get::<_, Option<String>>(8)?.and_then(|j| serde_json::from_str(&j).ok()),
    })
}

/// The user's words as an FTS5 query that matches each as a prefix, all
/// required. Words are split as FTS5's unicode61 tokenizer splits them (on
/// anything not a letter or digit) and each is quoted, so quotes, `*`, `:`,
/// `-`, `NEAR`, `OR` and brackets in the input are plain text, never syntax.
/// `None` when the text has no word at all.
pub(super) fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}
