//! A patient's earlier sessions (priors), found by a hash of the Patient ID
//! the session's image states: keyed by the store's secret in an encrypted
//! store, so neither the ID nor a guessable hash of it is kept; a plain
//! store, which keeps the original files in the clear anyway, hashes it
//! with a fixed prefix.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::sessions::{report_row, REPORT_COLUMNS};
use super::{SessionId, SessionStatus, Store, StoreError};
use crate::digest::sha256_hex;

/// Another session of the same patient, with its newest signed report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prior {
    pub id: SessionId,
    pub title: String,
    pub created_at: String,
    pub status: SessionStatus,
    /// The newest signed (preliminary or final) report's text and when it was signed.
    pub report: Option<String>,
    pub signed_at: Option<String>,
}

impl Store {
    /// The name Patient ID `patient_id` is found under in this store (None
    /// for an empty ID: no patient to match).
    fn patient_key(&self, patient_id: &str) -> Option<String> {
        let id = patient_id.trim();
        if id.is_empty() {
            return None;
        }
        Some(match &self.key {
            Some(key) => key.patient_key(id),
            None => sha256_hex(format!("medgemma-desk patient v1\0{id}").as_bytes()),
        })
    }

    /// Records which patient session `id` is of (from its image's Patient ID).
    pub fn set_patient(&mut self, id: SessionId, patient_id: &str) -> Result<(), StoreError> {
        let key = self.patient_key(patient_id);
        match self.conn.execute("UPDATE sessions SET patient_key = ?2 WHERE id = ?1", params![id.0, key])? {
            0 => Err(StoreError::NoSuchSession(id)),
            _ => Ok(()),
        }
    }

    /// The other sessions of session `id`'s patient, newest first, each with
    /// its newest signed report (none for a session of no known patient).
    pub fn priors(&self, id: SessionId) -> Result<Vec<Prior>, StoreError> {
        let key: Option<String> = self
            .conn
            .query_row("SELECT patient_key FROM sessions WHERE id = ?1", [id.0], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NoSuchSession(id))?;
        let Some(key) = key else { return Ok(Vec::new()) };
        let mut stmt = self.conn.prepare(
            "SELECT id, title, created_at, status FROM sessions
             WHERE patient_key = ?1 AND id <> ?2 ORDER BY created_at DESC, id DESC LIMIT 50",
        )?;
        let rows = stmt.query_map(params![key, id.0], |r| {
            Ok((SessionId(r.get(0)?), r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (prior, title, created_at, status) = row?;
            let sql = format!(
                "SELECT {REPORT_COLUMNS} FROM reports WHERE session_id = ?1 AND status IN ('preliminary', 'final')
                 AND addendum_of IS NULL ORDER BY version DESC LIMIT 1"
            );
            let signed = self.conn.query_row(&sql, [prior.0], report_row).optional()?;
            out.push(Prior {
                id: prior,
                title,
                created_at,
                status: SessionStatus::parse(&status),
                signed_at: signed.as_ref().and_then(|r| r.signed_at.clone()),
                report: signed.map(|r| r.text),
            });
        }
        Ok(out)
    }
}
