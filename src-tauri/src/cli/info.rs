//! `medgemma-desk info FILE`: what a reader needs to know about an image —
//! key tags, every window, frames, transfer syntax. Patient tags only with --phi.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use crate::imaging;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A DICOM, PNG or JPEG file, or a folder of DICOM files.
    file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Include patient-identifying tags (name, ID, birth date…).
    #[arg(long)]
    phi: bool,
}

pub fn run(args: InfoArgs) -> Result<(), String> {
    let study = imaging::open(&args.file).map_err(|e| e.to_string())?;
    let images: Vec<serde_json::Value> = study
        .images
        .iter()
        .map(|img| {
            let mut v = json!({
                "file": img.source.display().to_string(),
                "tags": img.tags,
                "photometric": img.tags.photometric_interpretation,
                "frames": img.frames.len(),
                "modality_lut": img.modality_lut,
                "windows": img.windows,
                "voi_luts": img.voi_tables.len(),
                "default_voi": img.default_voi(0),
            });
            if args.phi {
                v["patient"] = json!(img.patient);
            }
            v
        })
        .collect();
    if args.json {
        println!("{}", json!({ "source": study.source.display().to_string(), "images": images }));
        return Ok(());
    }
    for (img, v) in study.images.iter().zip(&images) {
        let t = &img.tags;
        println!("{}", img.source.display());
        let show = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                println!("  {k:<18} {v}");
            }
        };
        show("Modality", t.modality.clone());
        show("View position", t.view_position.clone());
        show("Body part", t.body_part.clone());
        show("Study date", t.study_date.clone());
        show("Size", Some(format!("{} × {} pixels, {} frame(s)", t.columns, t.rows, img.frames.len())));
        show(
            "Pixel spacing",
            t.pixel_spacing_mm.map(|(r, c)| format!("{r} × {c} mm ({})", t.pixel_spacing_attribute.unwrap_or("stated"))),
        );
        show("Photometric", Some(t.photometric_interpretation.clone()));
        show("Bits", Some(format!("{} stored of {}{}", t.bits_stored, t.bits_allocated, if t.signed { ", signed" } else { "" })));
        show("Transfer syntax", t.transfer_syntax_name.clone().or(t.transfer_syntax.clone()));
        for (i, w) in img.windows.iter().enumerate() {
            show(
                &format!("Window {}", i + 1),
                Some(format!("C {} W {} {:?}{}", w.center, w.width, w.function, w.explanation.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())),
            );
        }
        show("Default display", Some(v["default_voi"]["kind"].as_str().unwrap_or("").replace('_', " ")));
        if args.phi {
            let p = &img.patient;
            show("Patient name", p.patient_name.clone());
            show("Patient ID", p.patient_id.clone());
            show("Birth date", p.patient_birth_date.clone());
            show("Sex", p.patient_sex.clone());
            show("Accession", p.accession_number.clone());
        }
    }
    Ok(())
}
