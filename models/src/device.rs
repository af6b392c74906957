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
    #[error("unknown precision \"{0}\": choose auto, f32 or bf16")]
    UnknownPrecision(String),
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
            Self::Auto => Ok(open_cuda(0).or_else(|cuda| {
                open_metal().or_else(|metal| {
                    // Said where a build has a GPU back end that did not start.
                    for e in [cuda, metal].iter().filter(|e| matches!(e, DeviceError::Unavailable(..))) {
                        tracing::warn!("drafting on the CPU: {e}");
                    }
                    Ok::<_, DeviceError>(candle_core::Device::Cpu)
                })
            })?),
        }
    }
}

/// What a model computes in. `Auto` is f32 on the CPU (exact, and candle's
/// CPU kernels are fastest in f32) and bf16 on a GPU (Gemma 3 was trained in
/// bf16; f16 overflows its activations). `F32` on a GPU is for checking the
/// GPU against the reference at the CPU's tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Auto,
    F32,
    Bf16,
}

impl FromStr for Precision {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "f32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            _ => Err(DeviceError::UnknownPrecision(s.to_owned())),
        }
    }
}

impl Precision {
    /// The dtype this precision means on `device`.
    pub fn dtype_on(self, device: &candle_core::Device) -> candle_core::DType {
        match self {
            Self::F32 => candle_core::DType::F32,
            Self::Bf16 => candle_core::DType::BF16,
            Self::Auto if device.is_cpu() => candle_core::DType::F32,
            Self::Auto => candle_core::DType::BF16,
        }
    }
}

fn open_cuda(ordinal: usize) -> Result<candle_core::Device, DeviceError> {
    if !cfg!(feature = "cuda") {
        return Err(DeviceError::NotCompiled("CUDA", "cuda"));
    }
    candle_core::Device::new_cuda(ordinal)
        .map_err(|e| DeviceError::Unavailable("CUDA", format!("{} (an NVIDIA driver 580 or newer is needed)", first_line(&e))))
}

/// The reason in a device error, without the backtrace candle may append.
fn first_line(e: &candle_core::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().trim().to_owned()
}

fn open_metal() -> Result<candle_core::Device, DeviceError> {
    if !cfg!(feature = "metal") {
        return Err(DeviceError::NotCompiled("Metal", "metal"));
    }
    candle_core::Device::new_metal(0).map_err(|e| DeviceError::Unavailable("Metal", first_line(&e)))
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

    #[test]
    fn auto_precision_is_f32_on_the_cpu() {
        let cpu = candle_core::Device::Cpu;
        assert_eq!(Precision::Auto.dtype_on(&cpu), candle_core::DType::F32);
        assert_eq!(Precision::Bf16.dtype_on(&cpu), candle_core::DType::BF16);
        assert_eq!("BF16".parse(), Ok(Precision::Bf16));
        assert!("fp8".parse::<Precision>().unwrap_err().to_string().contains("f32 or bf16"));
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let err = DeviceChoice::Cuda(0).open().unwrap_err();
        assert_eq!(err, DeviceError::NotCompiled("CUDA", "cuda"));
        assert!(err.to_string().contains("`cuda` feature"));
    }
}
