//! The catalog of models the app knows by name (`models/catalog.toml`, built
//! in): where each is published, its format and files, whether it is gated,
//! its published checksum and the memory it needs.

use serde::{Deserialize, Serialize};

/// The catalog of known models (models/catalog.toml), built in.
const CATALOG: &str = include_str!("../../catalog.toml");

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct CatalogEntry {
    pub id: String,
    pub repo: String,
    pub name: String,
    pub description: String,
    pub format: String,
    #[serde(default)]
    pub files: Vec<String>,
    pub vision: bool,
    #[serde(default)]
    pub gated: bool,
    #[serde(default = "yes")]
    pub supported: bool,
    #[serde(default)]
    pub sha256: Option<String>,
    /// Memory it needs, in GB, on a CPU (f32) and a GPU (bf16).
    #[serde(default)]
    pub need_gb: Option<NeedGb>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
pub struct NeedGb {
    pub cpu: f64,
    pub gpu: f64,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct Catalog {
    model: Vec<CatalogEntry>,
}

/// The known models.
pub fn catalog() -> Vec<CatalogEntry> {
    toml::from_str::<Catalog>(CATALOG).map(|c| c.model).unwrap_or_default()
}
