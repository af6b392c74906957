//! Measurements a clinician draws on an image (a length, an angle), kept with
//! the session: the points in the image's own pixel coordinates (column, row,
//! from the top-left corner), on the image and frame they were drawn on. The
//! value in mm or degrees is computed from the points and the image's stated
//! pixel spacing wherever it is shown, so it is never out of step with them.

use rusqlite::params;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::sessions::{audit, touch};
use super::{timestamp, SessionId, Store, StoreError};

/// What is measured: a length (two points) or an angle (three: the vertex
/// in the middle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeasureKind {
    Length,
    Angle,
}

impl MeasureKind {
    fn name(self) -> &'static str {
        match self {
            MeasureKind::Length => "length",
            MeasureKind::Angle => "angle",
        }
    }

    fn points(self) -> usize {
        match self {
            MeasureKind::Length => 2,
            MeasureKind::Angle => 3,
        }
    }
}

/// A measurement to keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMeasurement {
    /// The session's image it was drawn on (its original's sha256) and its frame.
    pub image_sha256: String,
    pub frame: u32,
    pub kind: MeasureKind,
    /// (column, row) in image pixels.
    pub points: Vec<[f64; 2]>,
}

/// A kept measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    pub id: i64,
    pub created_at: String,
    #[serde(flatten)]
    pub measurement: NewMeasurement,
}

/// Whether measurement `m` can be right on an image with `tags` (its size
/// and frames, as the session keeps them): as many points as its kind needs,
/// each inside the image, on a frame the image has.
pub(super) fn check(m: &NewMeasurement, tags: &serde_json::Value) -> Result<(), String> {
    if m.points.len() != m.kind.points() {
        return Err(format!("a {} has {} points, not {}", m.kind.name(), m.kind.points(), m.points.len()));
    }
    let size = |key: &str| tags.get(key).and_then(serde_json::Value::as_f64);
    let frames = tags.get("frames").and_then(serde_json::Value::as_u64).unwrap_or(1).max(1);
    if u64::from(m.frame) >= frames {
        return Err(format!("the image has {frames} frame(s)"));
    }
    let inside = |p: &[f64; 2]| {
        p.iter().all(|v| v.is_finite())
            && size("columns").is_none_or(|w| (0.0..=w).contains(&p[0]))
            && size("rows").is_none_or(|h| (0.0..=h).contains(&p[1]))
    };
    if !m.points.iter().all(inside) {
        return Err("a point lies outside the image".into());
    }
    Ok(())
}

/// Inserts a measurement row (no audit, no checks: the caller did them).
pub(super) fn insert(tx: &rusqlite::Transaction<'_>, id: SessionId, at: &str, m: &NewMeasurement) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO measurements (session_id, image_sha256, frame, kind, points_json, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id.0, m.image_sha256, m.frame, m.kind.name(), serde_json::to_string(&m.points).unwrap_or_default(), at],
    )?;
    Ok(tx.last_insert_rowid())
}

impl Store {
    /// Keeps a measurement on one of the session's images; its points must be
    /// as many as its kind needs and inside the image (as the session's tags
    /// state its size), or nothing is kept.
    pub fn add_measurement(&mut self, id: SessionId, m: &NewMeasurement) -> Result<i64, StoreError> {
        let image = self.images(id)?.into_iter().find(|i| i.sha256 == m.image_sha256);
        let image = image.ok_or_else(|| StoreError::BadMeasurement("it is not on one of this session's images".into()))?;
        check(m, &image.tags).map_err(StoreError::BadMeasurement)?;
        let at = timestamp::now();
        let tx = self.conn.transaction()?;
        touch(&tx, id, &at)?;
        let mid = insert(&tx, id, &at, m)?;
        audit(&tx, id, &at, "edited", json!({ "what": "measurement", "added": mid }))?;
        tx.commit()?;
        Ok(mid)
    }

    /// Removes one of the session's measurements (false when it has no such one).
    pub fn delete_measurement(&mut self, id: SessionId, measurement: i64) -> Result<bool, StoreError> {
        let at = timestamp::now();
        let tx = self.conn.transaction()?;
        touch(&tx, id, &at)?;
        let gone = tx.execute("DELETE FROM measurements WHERE id = ?1 AND session_id = ?2", params![measurement, id.0])? > 0;
        if gone {
            audit(&tx, id, &at, "edited", json!({ "what": "measurement", "deleted": measurement }))?;
        }
        tx.commit()?;
        Ok(gone)
    }

    /// The session's measurements, oldest first.
    pub(super) fn measurements(&self, id: SessionId) -> Result<Vec<Measurement>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, created_at, image_sha256, frame, kind, points_json FROM measurements WHERE session_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id.0], |r| {
            let kind: String = r.get(4)?;
            let points: String = r.get(5)?;
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, u32>(3)?, kind, points))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mid, created_at, image_sha256, frame, kind, points) = row?;
            // The schema's CHECK allows only these two; a row this code did
            // not write (points that do not parse) is left out, not guessed at.
            let kind = if kind == "angle" { MeasureKind::Angle } else { MeasureKind::Length };
            let Ok(points) = serde_json::from_str::<Vec<[f64; 2]>>(&points) else { continue };
            out.push(Measurement { id: mid, created_at, measurement: NewMeasurement { image_sha256, frame, kind, points } });
        }
        Ok(out)
    }
}
