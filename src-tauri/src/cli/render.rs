//! `medgemma-desk render FILE -o OUT.png`: the default display the viewer
//! shows (8-bit grey, or RGB for colour), or a chosen window.

use std::path::PathBuf;

use clap::Args;

use crate::imaging::{self, lut::{VoiFunction, Window}};

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// A DICOM, PNG or JPEG file.
    file: PathBuf,
    /// Where to write the PNG.
    #[arg(short, long, value_name = "OUT.png")]
    output: PathBuf,
    /// The frame of a multi-frame image (0 is the first).
    #[arg(long, default_value_t = 0)]
    frame: usize,
    /// Centre and width of the window, in the image's units (e.g. -600,1500 for lung on CT).
    #[arg(long, value_name = "CENTER,WIDTH", allow_hyphen_values = true)]
    window: Option<String>,
}

pub fn run(args: RenderArgs) -> Result<(), String> {
    let window = args
        .window
        .as_deref()
        .map(|w| {
            let parts: Vec<f64> = w.split(',').map(|p| p.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| format!("--window must be CENTER,WIDTH, not \"{w}\""))?;
            match parts[..] {
                [center, width] if width >= 1.0 => Ok(Window { center, width, function: VoiFunction::Linear, explanation: None }),
                [_, _] => Err("the window width must be at least 1".to_owned()),
                _ => Err(format!("--window must be CENTER,WIDTH, not \"{w}\"")),
            }
        })
        .transpose()?;
    let study = imaging::open(&args.file).map_err(|e| e.to_string())?;
    let image = study.images.first().ok_or("the folder holds no image")?;
    if args.frame >= image.frames.len() {
        return Err(format!("{} has {} frame(s); there is no frame {}", args.file.display(), image.frames.len(), args.frame));
    }
    let (r, _) = image.render(args.frame, window.as_ref());
    let color = if r.channels == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
    image::save_buffer(&args.output, &r.pixels, r.width, r.height, color).map_err(|e| format!("cannot write {}: {e}", args.output.display()))
}
