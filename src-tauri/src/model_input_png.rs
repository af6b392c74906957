//! The image a model was given, as the store keeps it: lossless PNG bytes
//! named by the sha256 of the pixels themselves (size + RGB), not of the PNG.

use image::RgbImage;

use crate::digest::sha256_hex;

/// sha256 of a model-input image: its size and RGB bytes. The same pixels
/// have the same hash whichever way they were encoded.
pub fn pixels_sha256(image: &RgbImage) -> String {
    let mut bytes = format!("{}x{} rgb8\n", image.width(), image.height()).into_bytes();
    bytes.extend_from_slice(image.as_raw());
    sha256_hex(&bytes)
}

/// The image as PNG bytes (lossless: decoding gives back the same pixels).
pub fn encode(image: &RgbImage) -> Result<Vec<u8>, String> {
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("the model's input image could not be encoded: {e}"))?;
    Ok(png)
}

/// The pixels of PNG bytes kept as `expected` (a pixel hash); an error says
/// why they are not those pixels.
pub fn decode(png: &[u8], expected: &str) -> Result<RgbImage, String> {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .map_err(|e| format!("it is not a readable PNG ({e})"))?;
    let image::DynamicImage::ImageRgb8(rgb) = image else {
        return Err("it is not an 8-bit RGB image".into());
    };
    let found = pixels_sha256(&rgb);
    if found != expected {
        return Err(format!("its pixels have sha256 {found}, not {expected}"));
    }
    Ok(rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_come_back_from_their_png_under_their_own_hash() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 50, y as u8 * 80, 7]));
        let hash = pixels_sha256(&img);
        let back = decode(&encode(&img).unwrap(), &hash).unwrap();
        assert_eq!(back, img);
    }

    #[test]
    fn other_pixels_or_other_bytes_are_refused() {
        let img = RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]));
        let png = encode(&img).unwrap();
        let other = pixels_sha256(&RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 4])));
        assert!(decode(&png, &other).unwrap_err().contains("not"));
        assert!(decode(b"not a png", &pixels_sha256(&img)).unwrap_err().contains("not a readable PNG"));
        let grey = image::GrayImage::from_pixel(2, 2, image::Luma([9]));
        let mut grey_png = Vec::new();
        grey.write_to(&mut std::io::Cursor::new(&mut grey_png), image::ImageFormat::Png).unwrap();
        assert!(decode(&grey_png, &pixels_sha256(&img)).unwrap_err().contains("RGB"));
    }

    #[test]
    fn the_hash_covers_the_size() {
        let wide = RgbImage::from_pixel(4, 1, image::Rgb([0, 0, 0]));
        let tall = RgbImage::from_pixel(1, 4, image::Rgb([0, 0, 0]));
        assert_ne!(pixels_sha256(&wide), pixels_sha256(&tall));
    }
}
