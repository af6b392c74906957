//! The look-up steps of DICOM PS3.3 C.11 that turn stored values into what a
//! viewer shows: the Modality LUT (to real-world values such as Hounsfield
//! units) and the VOI transform (the window a radiologist reads with).

use serde::Serialize;

/// Stored value → modality value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModalityLut {
    /// No rescale in the file (slope 1, intercept 0).
    Identity,
    Rescale { slope: f64, intercept: f64 },
    /// Modality LUT Sequence: `data[clamp(x - first_mapped)]`.
    Table { first_mapped: i64, data: Vec<f64>, explanation: Option<String> },
}

impl ModalityLut {
    #[inline]
    pub fn apply(&self, x: f64) -> f64 {
        match self {
            ModalityLut::Identity => x,
            ModalityLut::Rescale { slope, intercept } => x * slope + intercept,
            ModalityLut::Table { first_mapped, data, .. } => {
                let i = (x - *first_mapped as f64).clamp(0.0, (data.len().max(1) - 1) as f64) as usize;
                data.get(i).copied().unwrap_or(0.0)
            }
        }
    }
}

/// VOI LUT Function (0028,1056).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VoiFunction {
    Linear,
    LinearExact,
    Sigmoid,
}

impl VoiFunction {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "" | "LINEAR" => Some(Self::Linear),
            "LINEAR_EXACT" => Some(Self::LinearExact),
            "SIGMOID" => Some(Self::Sigmoid),
            _ => None,
        }
    }
}

/// A window: centre and width in modality units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    pub center: f64,
    pub width: f64,
    pub function: VoiFunction,
    /// Window Center & Width Explanation, e.g. "LUNG".
    pub explanation: Option<String>,
}

impl Window {
    /// Whether the standard allows this width (C.11.2.1.2: ≥ 1 for LINEAR, > 0 otherwise).
    pub fn is_valid(&self) -> bool {
        self.width.is_finite()
            && self.center.is_finite()
            && match self.function {
                VoiFunction::Linear => self.width >= 1.0,
                _ => self.width > 0.0,
            }
    }

    /// Modality value → display value in 0..=255 (unrounded).
    #[inline]
    pub fn apply(&self, m: f64) -> f64 {
        match self.function {
            VoiFunction::Linear | VoiFunction::LinearExact => {
                let (c, w) = if self.function == VoiFunction::Linear {
                    (self.center - 0.5, self.width - 1.0)
                } else {
                    (self.center, self.width)
                };
                if m <= c - w / 2.0 {
                    0.0
                } else if m > c + w / 2.0 {
                    255.0
                } else {
                    ((m - c) / w + 0.5) * 255.0
                }
            }
            VoiFunction::Sigmoid => 255.0 / (1.0 + (-4.0 * (m - self.center) / self.width).exp()),
        }
    }
}

/// VOI LUT Sequence item: modality value → display value through a table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VoiTable {
    pub first_mapped: i64,
    pub bits: u32,
    pub data: Vec<f64>,
    pub explanation: Option<String>,
}

impl VoiTable {
    #[inline]
    pub fn apply(&self, m: f64) -> f64 {
        let i = (m - self.first_mapped as f64).clamp(0.0, (self.data.len().max(1) - 1) as f64) as usize;
        let max = ((1u64 << self.bits.clamp(1, 32)) - 1) as f64;
        self.data.get(i).copied().unwrap_or(0.0) / max * 255.0
    }
}

/// The VOI step chosen for a frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Voi {
    Table(VoiTable),
    Window(Window),
    /// Full range of this frame's modality values.
    MinMax { min: f64, max: f64 },
}

impl Voi {
    #[inline]
    pub fn apply(&self, m: f64) -> f64 {
        match self {
            Voi::Table(t) => t.apply(m),
            Voi::Window(w) => w.apply(m),
            Voi::MinMax { min, max } => {
                if max > min {
                    (m - min) / (max - min) * 255.0
                } else {
                    0.0
                }
            }
        }
    }
}

/// Rounds once, half up, to a display byte.
#[inline]
pub fn to_display_byte(y: f64) -> u8 {
    (y + 0.5).floor().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(c: f64, w: f64) -> Window {
        Window { center: c, width: w, function: VoiFunction::Linear, explanation: None }
    }

    #[test]
    fn linear_window_follows_c_11_2_1_2_1() {
        // Centre 2048, width 4096 on 12-bit data: the standard's own example range.
        let w = linear(2048.0, 4096.0);
        assert_eq!(to_display_byte(w.apply(0.0)), 0);
        assert_eq!(to_display_byte(w.apply(4095.0)), 255);
        assert_eq!(to_display_byte(w.apply(2047.5)), 128);
        // Width 1: a threshold at the centre.
        let t = linear(100.0, 1.0);
        assert_eq!(t.apply(99.0), 0.0);
        assert_eq!(t.apply(100.0), 255.0);
    }

    #[test]
    fn widths_below_the_minimum_are_invalid() {
        assert!(!linear(40.0, 0.0).is_valid());
        assert!(!linear(40.0, 0.5).is_valid());
        assert!(Window { function: VoiFunction::LinearExact, ..linear(40.0, 0.5) }.is_valid());
    }

    #[test]
    fn sigmoid_is_half_at_the_centre() {
        let s = Window { function: VoiFunction::Sigmoid, ..linear(40.0, 400.0) };
        assert!((s.apply(40.0) - 127.5).abs() < 1e-9);
    }

    #[test]
    fn modality_table_clamps_out_of_range_values() {
        let t = ModalityLut::Table { first_mapped: 10, data: vec![5.0, 6.0, 7.0], explanation: None };
        assert_eq!(t.apply(0.0), 5.0);
        assert_eq!(t.apply(11.0), 6.0);
        assert_eq!(t.apply(99.0), 7.0);
    }

    #[test]
    fn rescale_gives_hounsfield_units() {
        let r = ModalityLut::Rescale { slope: 1.0, intercept: -1024.0 };
        assert_eq!(r.apply(1024.0), 0.0);
    }

    #[test]
    fn rounding_is_half_up_once() {
        assert_eq!(to_display_byte(127.5), 128);
        assert_eq!(to_display_byte(127.49), 127);
        assert_eq!(to_display_byte(-3.0), 0);
        assert_eq!(to_display_byte(300.0), 255);
    }
}
