//! The clinician's report: versions, sign-off and addenda.
//!
//! The working text is the newest version while it is a `draft`: autosave
//! updates it in place (one version per sign-off, not one per keystroke). Once
//! a version is signed (`preliminary` or `final`) it never changes again: an
//! edit after `preliminary` starts the next version, an edit after `final`
//! starts an addendum (a new version whose `addendum_of` names the final
//! report) and the signed text stays as it was.

use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::sessions::{audit, report_row, touch, REPORT_COLUMNS};
use super::{timestamp, DraftId, Report, SessionId, Store, StoreError};

/// The statuses a report version can be signed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignOff {
    Preliminary,
    Final,
}

impl SignOff {
    pub fn as_str(self) -> &'static str {
        match self {
            SignOff::Preliminary => "preliminary",
            SignOff::Final => "final",
        }
    }
}

/// Why a sign-off was refused (besides the store failing).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("there is no report to sign yet; write or start one from a draft first")]
    NothingToSign,
    #[error("this report is already final; changes after sign-off go into an addendum")]
    AlreadyFinal,
    #[error("the report is empty; write it before signing")]
    Empty,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for SignError {
    fn from(err: rusqlite::Error) -> Self {
        SignError::Store(err.into())
    }
}


fn latest(tx: &Transaction<'_>, id: SessionId) -> rusqlite::Result<Option<Report>> {
    tx.query_row(
        &format!("SELECT {REPORT_COLUMNS} FROM reports WHERE session_id = ?1 ORDER BY version DESC LIMIT 1"),
        [id.0],
        report_row,
    )
    .optional()
}

/// The final report an addendum after `signed` belongs to.
fn final_root(signed: &Report) -> i64 {
    signed.addendum_of.unwrap_or(signed.id)
}

impl Store {
    /// Saves the clinician's working text (the autosave of the report editor)
    /// and returns the version it went into. After sign-off this starts a new
    /// version (after `preliminary`) or an addendum (after `final`).
    pub fn save_report(&mut self, id: SessionId, text: &str) -> Result<Report, StoreError> {
        let at = timestamp::now();
        let tx = self.conn.transaction()?;
        touch(&tx, id, &at)?;
        let current = latest(&tx, id)?;
        let (version, addendum_of) = match &current {
            Some(r) if r.status == "draft" => {
                if r.text != text {
                    tx.execute(
                        "UPDATE reports SET text = ?2 WHERE id = ?1",
                        params![r.id, text],
                    )?;
                    audit(
                        &tx,
                        id,
                        &at,
                        "edited",
                        json!({ "what": "report", "version": r.version }),
                    )?;
                }
                (r.version, r.addendum_of)
            }
            Some(r) => {
                let addendum_of =
                    (r.status == "final" || r.addendum_of.is_some()).then(|| final_root(r));
                (r.version + 1, addendum_of)
            }
            None => (1, None),
        };
        if current.as_ref().is_none_or(|r| r.status != "draft") {
            tx.execute(
                "INSERT INTO reports (session_id, version, text, status, created_at, addendum_of)
                 VALUES (?1, ?2, ?3, 'draft', ?4, ?5)",
                params![id.0, version, text, at, addendum_of],
            )?;
            audit(
                &tx,
                id,
                &at,
                "edited",
                json!({ "what": "report", "version": version, "addendum": addendum_of.is_some() }),
            )?;
        }
        let saved = latest(&tx, id)?.ok_or(StoreError::NoSuchSession(id))?;
        tx.commit()?;
        Ok(saved)
    }

    /// `save_report`, recording that the text was started from AI draft `draft`.
    pub fn save_report_from_draft(&mut self, id: SessionId, text: &str, draft: DraftId) -> Result<Report, StoreError> {
        let saved = self.save_report(id, text)?;
        if saved.status == "draft" {
            self.conn.execute(
                "UPDATE reports SET from_draft = ?2 WHERE id = ?1 AND EXISTS (SELECT 1 FROM drafts WHERE id = ?2 AND session_id = ?3)",
                params![saved.id, draft.0, id.0],
            )?;
        }
        Ok(Report { from_draft: Some(draft.0), ..saved })
    }

    /// Signs the newest report version as `preliminary` or `final`. A signed
    /// version never changes again.
    pub fn sign_report(&mut self, id: SessionId, status: SignOff) -> Result<Report, SignError> {
        let at = timestamp::now();
        let tx = self.conn.transaction()?;
        touch(&tx, id, &at)?;
        let current = latest(&tx, id)?.ok_or(SignError::NothingToSign)?;
        match current.status.as_str() {
            "final" => return Err(SignError::AlreadyFinal),
            "preliminary" if status == SignOff::Preliminary => {
                return Err(SignError::NothingToSign)
            }
            _ => {}
        }
        if current.text.trim().is_empty() {
            return Err(SignError::Empty);
        }
        // The origin of each sentence, frozen with the signed version: against
        // the AI draft it was started from, else every sentence is the clinician's.
        let draft: Option<String> = match current.from_draft {
            Some(d) => tx
                .query_row("SELECT text FROM drafts WHERE id = ?1 AND session_id = ?2", params![d, id.0], |r| r.get(0))
                .optional()?,
            None => None,
        };
        let origins = crate::attribution::attribute(draft.as_deref().unwrap_or(""), &current.text);
        tx.execute(
            "UPDATE reports SET status = ?2, signed_at = ?3, origins_json = ?4 WHERE id = ?1",
            params![current.id, status.as_str(), at, serde_json::to_string(&origins).unwrap_or_else(|_| "[]".into())],
        )?;
        // An addendum leaves the session final; otherwise the session takes the report's status.
        if current.addendum_of.is_none() {
            tx.execute(
                "UPDATE sessions SET status = ?2 WHERE id = ?1",
                params![id.0, status.as_str()],
            )?;
        }
        audit(
            &tx,
            id,
            &at,
            "signed",
            json!({ "version": current.version, "status": status.as_str(), "addendum": current.addendum_of.is_some() }),
        )?;
        let signed = latest(&tx, id)?.ok_or(SignError::NothingToSign)?;
        tx.commit()?;
        Ok(signed)
    }

    /// Notes in the audit log that the report left the app (`format`: markdown, fhir, pdf, bundle).
    pub fn record_export(&mut self, id: SessionId, format: &str) -> Result<(), StoreError> {
        let at = timestamp::now();
        let tx = self.conn.transaction()?;
        touch(&tx, id, &at)?;
        audit(&tx, id, &at, "exported", json!({ "format": format }))?;
        tx.commit()?;
        Ok(())
    }

    /// Renames a session.
    pub fn set_title(&mut self, id: SessionId, title: &str) -> Result<(), StoreError> {
        let at = timestamp::now();
        let tx = self.conn.transaction()?;
        touch(&tx, id, &at)?;
        tx.execute(
            "UPDATE sessions SET title = ?2 WHERE id = ?1",
            params![id.0, title],
        )?;
        audit(&tx, id, &at, "edited", json!({ "what": "title" }))?;
        tx.commit()?;
        Ok(())
    }
}
