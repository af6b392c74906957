//! medgemma-models: the model runtime behind MedGemma Desk. It knows nothing of
//! windows, SQLite or DICOM: find a model, load it on a device, generate.

pub mod device;

pub use device::{DeviceChoice, DeviceError};
