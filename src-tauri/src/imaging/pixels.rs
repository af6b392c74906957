//! Decoded pixel values at the depth they were stored, never squeezed to 8 bits:
//! the window/level the radiologist chooses needs every bit.

/// One frame's samples, interleaved when there are several per pixel.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    U8(Vec<u8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
}

impl Samples {
    pub fn len(&self) -> usize {
        match self {
            Samples::U8(v) => v.len(),
            Samples::U16(v) => v.len(),
            Samples::I16(v) => v.len(),
            Samples::U32(v) => v.len(),
            Samples::I32(v) => v.len(),
            Samples::F32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The i-th sample as f64 (for rendering and statistics).
    #[inline]
    pub fn get(&self, i: usize) -> f64 {
        match self {
            Samples::U8(v) => v[i] as f64,
            Samples::U16(v) => v[i] as f64,
            Samples::I16(v) => v[i] as f64,
            Samples::U32(v) => v[i] as f64,
            Samples::I32(v) => v[i] as f64,
            Samples::F32(v) => v[i] as f64,
        }
    }

    /// Smallest and largest sample.
    pub fn min_max(&self) -> Option<(f64, f64)> {
        if self.is_empty() {
            return None;
        }
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for i in 0..self.len() {
            let v = self.get(i);
            lo = lo.min(v);
            hi = hi.max(v);
        }
        Some((lo, hi))
    }

    /// The name of the storage type, as numpy spells it (for reports and tests).
    pub fn dtype(&self) -> &'static str {
        match self {
            Samples::U8(_) => "uint8",
            Samples::U16(_) => "uint16",
            Samples::I16(_) => "int16",
            Samples::U32(_) => "uint32",
            Samples::I32(_) => "int32",
            Samples::F32(_) => "float32",
        }
    }

    /// Little-endian bytes in order (what the reference hashes).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Samples::U8(v) => v.clone(),
            Samples::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Samples::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Samples::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Samples::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Samples::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}
