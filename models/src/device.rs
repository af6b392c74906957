//! Which compute device a model runs on: the user's choice (auto, cpu, cuda,
//! metal) resolved against what this build was compiled with and what exists.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a device choice cannot be honoured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    #[error("unknown device \"{0}\": choose auto, cpu, cuda, cuda:N or metal")]
    Unknown(String),
    #[error("this build of MedGemma Desk has no {0} support; rebuild with the `{1}` feature, or choose cpu")]
    NotCompiled(&'static str, &'static str),
    #[error("the {0} device could not be started: {1}")]
    Unavailable(&'static str, String),
}

/// The device a user asks for (`--device`, the device picker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// The fastest device this build and machine offer: CUDA, then Metal, then CPU.
    #[default]
    Auto,
    Cpu,
    /// An NVIDIA GPU by ordinal (0 is the first).
    Cuda(usize),
    Metal,
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            "metal" | "mps" => Ok(Self::Metal),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| DeviceError::Unknown(s.to_owned())),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Metal => f.write_str("metal"),
        }
    }
}

impl DeviceChoice {
    /// Opens the device. `Auto` never fails: it falls back to the CPU.
    pub fn open(self) -> Result<candle_core::Device, DeviceError> {
        match self {
            Self::Cpu => Ok(candle_core::Device::Cpu),
            Self::Cuda(ordinal) => open_cuda(ordinal),
            Self::Metal => open_metal(),
            Self::Auto => Ok(open_cuda(0).or_else(|_| open_metal()).unwrap_or(candle_core::Device::Cpu)),
        }
    }
}

fn open_cuda(ordinal: usize) -> Result<candle_core::Device, DeviceError> {
    if !cfg!(feature = "cuda") {
        return Err(DeviceError::NotCompiled("CUDA", "cuda"));
    }
    candle_core::Device::new_cuda(ordinal).map_err(|e| DeviceError::Unavailable("CUDA", e.to_string()))
}

fn open_metal() -> Result<candle_core::Device, DeviceError> {
    if !cfg!(feature = "metal") {
        return Err(DeviceError::NotCompiled("Metal", "metal"));
    }
    candle_core::Device::new_metal(0).map_err(|e| DeviceError::Unavailable("Metal", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling_users_type() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("CPU".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:1".parse(), Ok(DeviceChoice::Cuda(1)));
        assert_eq!("metal".parse(), Ok(DeviceChoice::Metal));
        assert!(matches!("tpu".parse::<DeviceChoice>(), Err(DeviceError::Unknown(_))));
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for d in [DeviceChoice::Auto, DeviceChoice::Cpu, DeviceChoice::Cuda(2), DeviceChoice::Metal] {
            assert_eq!(d.to_string().parse::<DeviceChoice>(), Ok(d));
        }
    }

    #[test]
    fn cpu_and_auto_always_open() {
        assert!(DeviceChoice::Cpu.open().unwrap().is_cpu());
        assert!(DeviceChoice::Auto.open().is_ok());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let err = DeviceChoice::Cuda(0).open().unwrap_err();
        assert_eq!(err, DeviceError::NotCompiled("CUDA", "cuda"));
        assert!(err.to_string().contains("`cuda` feature"));
    }
}
