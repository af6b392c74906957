//! The report as a PDF the app writes itself (krilla; no print dialog): an A4
//! document with the patient, the status, a thumbnail of the image, the case
//! notes, the report and its addenda, the AI-draft statement, the record
//! (model, weights hash, device, seed) and each sentence's origin as frozen at
//! sign-off. The text is real text in an embedded font (DejaVu Sans, subset by
//! krilla), so it can be searched, copied and read by `pdftotext`.
//!
//! Line breaking is done here: krilla places a line of text where it is told,
//! and a typesetting engine (Typst) would be a second compiler in the app for
//! one page of prose. Words are measured with the font's own advance widths.

use std::sync::Arc;

use krilla::geom::{PathBuilder, Point, Size, Transform};
use krilla::image::Image as PdfImage;
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::paint::Stroke;
use krilla::text::{Font, TextDirection};
use krilla::Document;
use skrifa::instance::{LocationRef, Size as FontSize};
use skrifa::MetadataProvider;

use super::{addendum_heading, case_notes, origin_words, patient_words, record_words, report_parts, signed_versions, status_line, ExportError};
use crate::imaging::Image;
use crate::store::SessionDetail;

static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

const PAGE_W: f32 = 595.0; // A4 in points
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 56.0;
const BODY: f32 = 10.5;
/// The thumbnail's longest side, in points and in pixels (about 150 dpi).
const THUMB_PT: f32 = 190.0;
const THUMB_PX: u32 = 400;

/// One thing on the page, in reading order.
enum Block {
    Line { text: String, size: f32, indent: f32, space_before: f32 },
    Rule { space_before: f32 },
    Picture { png: Vec<u8>, width: f32, height: f32, caption: String },
}

/// Text measured with the embedded font's advance widths.
struct Measure<'a> {
    font: skrifa::FontRef<'a>,
}

impl Measure<'_> {
    fn width(&self, text: &str, size: f32) -> f32 {
        let charmap = self.font.charmap();
        let metrics = self.font.glyph_metrics(FontSize::new(size), LocationRef::default());
        text.chars().map(|c| charmap.map(c).and_then(|g| metrics.advance_width(g)).unwrap_or(size * 0.6)).sum()
    }

    /// `text` broken into lines no wider than `width` (a word longer than a
    /// line is cut where it must be).
    fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.lines() {
            let mut line = String::new();
            for word in paragraph.split_whitespace() {
                let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
                if self.width(&candidate, size) <= width {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                let mut rest = word.to_string();
                while self.width(&rest, size) > width && rest.chars().count() > 1 {
                    let mut cut = rest.chars().count() - 1;
                    while cut > 1 && self.width(&rest.chars().take(cut).collect::<String>(), size) > width {
                        cut -= 1;
                    }
                    lines.push(rest.chars().take(cut).collect());
                    rest = rest.chars().skip(cut).collect();
                }
                line = rest;
            }
            lines.push(line);
        }
        lines
    }
}

struct Layout<'a> {
    measure: Measure<'a>,
    blocks: Vec<Block>,
}

impl Layout<'_> {
    fn text(&mut self, text: &str, size: f32, indent: f32, space_before: f32) {
        let width = PAGE_W - 2.0 * MARGIN - indent;
        for (i, line) in self.measure.wrap(text, size, width).into_iter().enumerate() {
            self.blocks.push(Block::Line { text: line, size, indent, space_before: if i == 0 { space_before } else { 0.0 } });
        }
    }

    fn heading(&mut self, text: &str) {
        self.text(text, 13.0, 0.0, 12.0);
    }

    fn body(&mut self, text: &str) {
        self.text(text, BODY, 0.0, 3.0);
    }

    /// A list item: a bullet, then the text indented under itself.
    fn item(&mut self, text: &str) {
        let width = PAGE_W - 2.0 * MARGIN - 12.0;
        for (i, line) in self.measure.wrap(text, BODY, width).into_iter().enumerate() {
            let text = if i == 0 { format!("•  {line}") } else { line };
            let indent = if i == 0 { 0.0 } else { 12.0 };
            self.blocks.push(Block::Line { text, size: BODY, indent, space_before: if i == 0 { 2.0 } else { 0.0 } });
        }
    }
}

/// The first frame at the default window, scaled down, as PNG (krilla keeps
/// a grey PNG grey and without alpha; its raw-pixel input is RGBA only).
fn thumbnail(image: &Image) -> Option<(Vec<u8>, u32, u32)> {
    if image.frames.is_empty() {
        return None;
    }
    let (r, _) = image.render(0, None);
    let shown = match r.channels {
        1 => image::DynamicImage::ImageLuma8(image::GrayImage::from_raw(r.width, r.height, r.pixels)?),
        3 => image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(r.width, r.height, r.pixels)?),
        _ => return None,
    };
    let small = shown.thumbnail(THUMB_PX, THUMB_PX);
    let (w, h) = (small.width(), small.height());
    let mut png = Vec::new();
    small.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).ok()?;
    Some((png, w, h))
}

/// Lays the report out as blocks, in reading order.
fn layout(s: &SessionDetail, image: Option<&Image>, font: skrifa::FontRef<'_>) -> Vec<Block> {
    let mut l = Layout { measure: Measure { font }, blocks: Vec::new() };
    let (main, addenda) = report_parts(s);
    l.text("Radiology report", 18.0, 0.0, 0.0);
    l.text(&s.summary.title, 12.0, 0.0, 4.0);
    let patient = patient_words(image.map(|i| &i.patient)).unwrap_or_else(|| "Patient not identified in the image: identify the patient before filing.".into());
    l.body(&format!("Patient: {patient}"));
    l.body(&format!("Status: {}", status_line(main)));
    l.blocks.push(Block::Rule { space_before: 6.0 });
    if let Some((png, w, h)) = image.and_then(thumbnail) {
        let scale = THUMB_PT / w.max(h) as f32;
        let caption = format!("Image: {} × {} pixels, shown at its default window.", image.map_or(0, |i| i.columns), image.map_or(0, |i| i.rows));
        l.blocks.push(Block::Picture { png, width: w as f32 * scale, height: h as f32 * scale, caption });
    }
    let notes = case_notes(s);
    if !notes.is_empty() {
        l.heading("Case notes");
        for (k, v) in notes {
            l.body(&format!("{k}: {v}"));
        }
    }
    l.heading("Report");
    l.body(main.map_or("", |r| r.text.trim()));
    for a in &addenda {
        l.heading(&addendum_heading(a));
        l.body(a.text.trim());
    }
    l.blocks.push(Block::Rule { space_before: 12.0 });
    if main.is_none_or(|r| r.status == "draft") {
        l.text("AI-generated draft — not reviewed by a clinician.", 12.0, 0.0, 6.0);
    }
    l.body(&record_words(s, main));
    for r in signed_versions(main, &addenda) {
        let Some(origins) = r.origins.as_ref().filter(|o| !o.is_empty()) else { continue };
        let what = if r.addendum_of.is_some() { "addendum" } else { "report" };
        l.heading(&format!("Origin of each sentence of the {what}, version {} (fixed at sign-off)", r.version));
        for sentence in origins {
            l.item(&format!("{} — {}", sentence.text, origin_words(sentence.origin)));
        }
    }
    l.blocks
}

/// The report of session `s` as the bytes of a PDF file.
pub fn pdf(s: &SessionDetail, image: Option<&Image>) -> Result<Vec<u8>, ExportError> {
    let measured = skrifa::FontRef::new(FONT).map_err(|e| ExportError::Pdf(format!("the built-in font cannot be read ({e})")))?;
    let blocks = layout(s, image, measured);
    let font = Font::new(FONT.into(), 0).ok_or_else(|| ExportError::Pdf("the built-in font cannot be read".into()))?;
    let settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or_else(|| ExportError::Pdf("bad page size".into()))?;
    let footer = format!("{} — MedGemma Desk {}", s.summary.title, crate::version::APP_VERSION);

    // Blocks onto pages: a block that does not fit starts the next page.
    let mut pages: Vec<Vec<(f32, &Block)>> = vec![Vec::new()];
    let mut y = MARGIN;
    for b in &blocks {
        let (before, height) = match b {
            Block::Line { size, space_before, .. } => (*space_before, size * 1.35),
            Block::Rule { space_before } => (*space_before, 6.0),
            Block::Picture { height, .. } => (8.0, height + 6.0 + BODY * 1.35),
        };
        if y + before + height > PAGE_H - MARGIN && !pages.last().is_some_and(|p| p.is_empty()) {
            pages.push(Vec::new());
            y = MARGIN;
        } else {
            y += before;
        }
        if let Some(page) = pages.last_mut() {
            page.push((y, b));
        }
        y += height;
    }

    let mut document = Document::new();
    let date = crate::store::now();
    let mut metadata = Metadata::new()
        .title(format!("Radiology report: {}", s.summary.title))
        .creator(format!("MedGemma Desk {}", crate::version::APP_VERSION))
        .language("en".into());
    if let Some(d) = pdf_date(&date) {
        metadata = metadata.creation_date(d);
    }
    document.set_metadata(metadata);
    let count = pages.len();
    for (number, page_blocks) in pages.into_iter().enumerate() {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        for (top, b) in page_blocks {
            match b {
                Block::Line { text, size, indent, .. } => {
                    surface.draw_text(Point::from_xy(MARGIN + indent, top + size), font.clone(), *size, text, false, TextDirection::Auto);
                }
                Block::Rule { .. } => {
                    let mut path = PathBuilder::new();
                    path.move_to(MARGIN, top + 3.0);
                    path.line_to(PAGE_W - MARGIN, top + 3.0);
                    if let Some(path) = path.finish() {
                        surface.set_stroke(Some(Stroke { width: 0.5, ..Default::default() }));
                        surface.draw_path(&path);
                        surface.set_stroke(None);
                    }
                }
                Block::Picture { png, width, height, caption } => {
                    let picture = PdfImage::from_png(Arc::new(png.clone()).into(), true).map_err(ExportError::Pdf)?;
                    let size = Size::from_wh(*width, *height).ok_or_else(|| ExportError::Pdf("bad thumbnail size".into()))?;
                    surface.push_transform(&Transform::from_translate(MARGIN, top));
                    surface.draw_image(picture, size);
                    surface.pop();
                    surface.draw_text(Point::from_xy(MARGIN, top + height + 6.0 + 9.0), font.clone(), 9.0, caption, false, TextDirection::Auto);
                }
            }
        }
        let page_words = format!("{footer} — page {} of {count}", number + 1);
        surface.draw_text(Point::from_xy(MARGIN, PAGE_H - MARGIN / 2.0), font.clone(), 8.0, &page_words, false, TextDirection::Auto);
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|e| ExportError::Pdf(format!("{e:?}")))
}

/// The store's RFC 3339 UTC time as the PDF's creation date.
fn pdf_date(rfc3339: &str) -> Option<krilla::metadata::DateTime> {
    let num = |a: usize, b: usize| rfc3339.get(a..b)?.parse::<u16>().ok();
    Some(
        krilla::metadata::DateTime::new(num(0, 4)?)
            .month(num(5, 7)? as u8)
            .day(num(8, 10)? as u8)
            .hour(num(11, 13)? as u8)
            .minute(num(14, 16)? as u8)
            .second(num(17, 19)? as u8)
            .utc_offset_hour(0)
            .utc_offset_minute(0),
    )
}
