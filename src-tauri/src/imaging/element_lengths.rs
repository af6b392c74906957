//! A first pass over a DICOM file's element headers, before dicom-rs reads
//! it: every stated value length must fit in the bytes that follow.
//!
//! dicom-rs allocates what a length says before it reads the value, so a
//! 49 KB file stating a 1 GB value took 1 GB of memory (found by fuzzing),
//! and a 4 GB one could end the app. Written by hand because dicom-rs has no
//! limit to set; it refuses only definite lies and leaves what it does not
//! follow (the inside of an undefined-length UN) to dicom-rs.

use dicom_core::dictionary::DataDictionary;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

const UNDEFINED: u32 = u32::MAX;
const PIXEL_DATA: (u16, u16) = (0x7FE0, 0x0010);

/// How the elements after the File Meta are encoded.
#[derive(Clone, Copy)]
struct Encoding {
    explicit: bool,
    little_endian: bool,
}

/// Checks the lengths of a whole file: its File Meta (after "DICM"), then its
/// data set in the transfer syntax the meta names; a file without a marker as
/// a bare Implicit VR Little Endian data set. Returns where the data set's
/// own Pixel Data ends, when it was followed there: what comes after it is
/// not for dicom-rs to read (it would read one more element, whatever length
/// that states).
pub fn check(bytes: &[u8]) -> Result<Option<usize>, String> {
    let start = match (bytes.get(128..132), bytes.get(..4)) {
        (Some(b"DICM"), _) => 132,
        (_, Some(b"DICM")) => 4,
        _ => return walk(bytes, 0, Encoding { explicit: false, little_endian: true }, false).map(|w| w.pixel_data_end),
    };
    let meta = Encoding { explicit: true, little_endian: true };
    let head = walk(bytes, start, meta, true)?;
    let encoding = match head.transfer_syntax.as_deref() {
        Some("1.2.840.10008.1.2") => Encoding { explicit: false, little_endian: true },
        Some("1.2.840.10008.1.2.2") => Encoding { explicit: true, little_endian: false },
        // Deflated: the data set is compressed; dicom-rs inflates it and then
        // reads every element of it, so all of them are checked.
        Some("1.2.840.10008.1.2.1.99") => return deflated(&bytes[head.stopped_at..]).map(|()| None),
        _ => Encoding { explicit: true, little_endian: true },
    };
    walk(bytes, head.stopped_at, encoding, false).map(|w| w.pixel_data_end)
}

/// A Deflated Explicit VR Little Endian data set: inflated (raw deflate, as
/// dicom-rs reads it) and walked to its end, past any Pixel Data. The
/// inflated copy is as large as what dicom-rs would hold anyway.
fn deflated(compressed: &[u8]) -> Result<(), String> {
    use std::io::Read;
    let mut inflated = Vec::new();
    // A stream that stops early or is damaged: dicom-rs reads what inflates.
    let _ = flate2::read::DeflateDecoder::new(compressed).read_to_end(&mut inflated);
    let enc = Encoding { explicit: true, little_endian: true };
    let mut at = 0;
    while let Some(end) = walk(&inflated, at, enc, false)?.pixel_data_end {
        if end <= at {
            break;
        }
        at = end;
    }
    Ok(())
}

/// Where a walk stopped, and what it saw on the way.
struct Walked {
    stopped_at: usize,
    transfer_syntax: Option<String>,
    pixel_data_end: Option<usize>,
}

fn u16_at(b: &[u8], at: usize, le: bool) -> Option<u16> {
    let v: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if le { u16::from_le_bytes(v) } else { u16::from_be_bytes(v) })
}

fn u32_at(b: &[u8], at: usize, le: bool) -> Option<u32> {
    let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if le { u32::from_le_bytes(v) } else { u32::from_be_bytes(v) })
}

/// VRs whose explicit header has a 4-byte length (after 2 reserved bytes).
fn long_form(vr: &[u8]) -> bool {
    matches!(vr, b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN" | b"UR" | b"UT" | b"UV")
}

/// The value representations of PS3.5 6.2.
fn is_vr(vr: &[u8]) -> bool {
    const ALL: [&[u8; 2]; 34] = [
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB", b"OD", b"OF", b"OL", b"OV",
        b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
    ];
    ALL.iter().any(|v| v.as_slice() == vr)
}

fn is_sequence(group: u16, element: u16) -> bool {
    StandardDataDictionary.by_tag(Tag(group, element)).is_some_and(|e| e.vr.relaxed() == VR::SQ)
}

/// The VR an implicit VR data set's element is read as: the dictionary's, OW
/// for Pixel Data and Overlay Data, UN when unknown (as dicom-rs decides it).
fn implicit_vr(group: u16, element: u16) -> [u8; 2] {
    if (group, element) == PIXEL_DATA || (group >> 8 == 0x60 && element == 0x3000) {
        return *b"OW";
    }
    StandardDataDictionary.by_tag(Tag(group, element)).map_or(*b"UN", |e| e.vr.relaxed().to_bytes())
}

/// How many of a value's `len` bytes dicom-rs consumes: a binary VR reads
/// whole numbers only (an FD of 2 bytes reads none), and the next header is
/// read right after them, wherever the stated length ends.
fn consumed(vr: &[u8], len: usize) -> usize {
    match vr {
        b"US" | b"SS" | b"OW" => len & !1,
        b"AT" | b"UL" | b"SL" | b"OL" | b"FL" | b"OF" => len & !3,
        b"FD" | b"OD" | b"SV" | b"UV" | b"OV" => len & !7,
        _ => len,
    }
}

/// Walks elements from `pos` as dicom-rs reads them: sequences and items are
/// entered, other values skipped after their length is checked, the
/// fragments of an encapsulated Pixel Data skipped by their lengths; a VR
/// that is not one is read as UN (a 4-byte length). Stops after the data
/// set's own Pixel Data, where dicom-rs stops reading (trailing bytes are not
/// elements). With `meta_only`, stops at the first element after group 0002
/// and returns where it is and the Transfer Syntax UID read there.
fn walk(b: &[u8], pos: usize, enc: Encoding, meta_only: bool) -> Result<Walked, String> {
    walk_in(b, pos, enc, meta_only, false)
}

/// `walk`; with `nested`, the items of an undefined-length UN element: stops
/// just after the sequence delimitation item that ends it.
fn walk_in(b: &[u8], mut pos: usize, enc: Encoding, meta_only: bool, nested: bool) -> Result<Walked, String> {
    let le = enc.little_endian;
    // Where each sequence and item we are inside ends (`None`: at its delimiter).
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut in_fragments = false;
    let mut ts = None;
    let lie = |g: u16, e: u16, len: u32, left: usize| {
        format!("its element ({g:04X},{e:04X}) says it holds {len} bytes, but only {left} bytes follow (the file is damaged or is not what it claims)")
    };
    while pos + 8 <= b.len() {
        while let Some(Some(end)) = open.last() {
            if pos < *end {
                break;
            }
            open.pop();
        }
        let (Some(group), Some(element)) = (u16_at(b, pos, le), u16_at(b, pos + 2, le)) else { break };
        if meta_only && group != 0x0002 {
            return Ok(Walked { stopped_at: pos, transfer_syntax: ts, pixel_data_end: None });
        }
        if group == 0xFFFE {
            // Items and delimiters: a 4-byte length, never a VR.
            let Some(len) = u32_at(b, pos + 4, le) else { break };
            pos += 8;
            let left = b.len() - pos;
            match element {
                0xE000 if len != UNDEFINED && len as usize > left => return Err(lie(group, element, len, left)),
                0xE000 if in_fragments => pos += len as usize,
                0xE000 => open.push((len != UNDEFINED).then(|| pos + len as usize)),
                0xE00D => {
                    if open.last() == Some(&None) {
                        open.pop();
                    }
                }
                0xE0DD if in_fragments => {
                    in_fragments = false;
                    if open.is_empty() {
                        // The end of the data set's own Pixel Data.
                        return Ok(Walked { stopped_at: pos, transfer_syntax: ts, pixel_data_end: Some(pos) });
                    }
                }
                0xE0DD if nested && open.is_empty() => {
                    return Ok(Walked { stopped_at: pos, transfer_syntax: ts, pixel_data_end: None });
                }
                0xE0DD => {
                    open.pop();
                }
                // Not an item or a delimiter: dicom-rs reads it as an element
                // and allocates the value its length states (found by
                // fuzzing: 14 bytes stating 4 GB).
                _ if len != UNDEFINED && len as usize > left => return Err(lie(group, element, len, left)),
                _ if len != UNDEFINED => pos += len as usize,
                _ => {}
            }
            continue;
        }
        let (len, header, vr) = if enc.explicit {
            let raw = &b[pos + 4..pos + 6];
            // dicom-rs reads a VR it does not know as UN.
            let vr: &[u8] = if is_vr(raw) { raw } else { b"UN" };
            if long_form(vr) {
                let Some(len) = u32_at(b, pos + 8, le) else { break };
                (len, 12, Some(vr))
            } else {
                let Some(len) = u16_at(b, pos + 6, le) else { break };
                (len as u32, 8, Some(vr))
            }
        } else {
            let Some(len) = u32_at(b, pos + 4, le) else { break };
            (len, 8, None)
        };
        pos += header;
        let pixel_data = (group, element) == PIXEL_DATA;
        if len == UNDEFINED {
            match vr {
                _ if pixel_data => in_fragments = true,
                // An undefined-length UN holds items that dicom-rs reads as
                // Implicit VR Little Endian (PS3.5 6.2.2): they are checked so,
                // up to the delimiter that ends them. (This once stopped the
                // check instead, and dicom-rs met a 3.7 GB length inside:
                // found by fuzzing.)
                Some(b"UN") => {
                    pos = walk_in(b, pos, Encoding { explicit: false, little_endian: true }, false, true)?.stopped_at;
                }
                _ => open.push(None), // A sequence: its items follow.
            }
            continue;
        }
        let left = b.len() - pos.min(b.len());
        if len as usize > left {
            return Err(lie(group, element, len, left));
        }
        if (group, element) == (0x0002, 0x0010) {
            ts = Some(String::from_utf8_lossy(&b[pos..pos + len as usize]).trim_end_matches(['\0', ' ']).to_owned());
        }
        let sequence = match vr {
            Some(vr) => vr == b"SQ",
            None => is_sequence(group, element),
        };
        if sequence {
            open.push(Some(pos + len as usize));
        } else {
            pos += match vr {
                Some(vr) => consumed(vr, len as usize),
                None => consumed(&implicit_vr(group, element), len as usize),
            };
            if pixel_data && open.is_empty() {
                return Ok(Walked { stopped_at: pos, transfer_syntax: ts, pixel_data_end: Some(pos) });
            }
        }
    }
    Ok(Walked { stopped_at: pos.min(b.len()), transfer_syntax: ts, pixel_data_end: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An explicit VR little-endian element.
    fn element(group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&elem.to_le_bytes());
        out.extend_from_slice(vr);
        if long_form(vr) {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(value);
        out
    }

    fn file(data_set: &[u8], ts: &str) -> Vec<u8> {
        let mut out = vec![0u8; 128];
        out.extend_from_slice(b"DICM");
        let mut uid = ts.as_bytes().to_vec();
        if uid.len() % 2 == 1 {
            uid.push(0);
        }
        out.extend(element(0x0002, 0x0010, b"UI", &uid));
        out.extend_from_slice(data_set);
        out
    }

    #[test]
    fn honest_lengths_pass() {
        let mut ds = element(0x0010, 0x0010, b"PN", b"Doe^Jane");
        ds.extend(element(0x7FE0, 0x0010, b"OW", &[0u8; 64]));
        assert_eq!(check(&file(&ds, "1.2.840.10008.1.2.1")).map(|end| end.is_some()), Ok(true));
    }

    #[test]
    fn a_value_longer_than_the_file_is_refused_before_anything_is_allocated() {
        let mut ds = element(0x0010, 0x0010, b"PN", b"Doe^Jane");
        let mut lying = element(0x0008, 0x0054, b"UT", b"xx");
        lying[8..12].copy_from_slice(&1_112_477_738u32.to_le_bytes());
        ds.extend(lying);
        let err = check(&file(&ds, "1.2.840.10008.1.2.1")).unwrap_err();
        assert!(err.contains("(0008,0054) says it holds 1112477738 bytes"), "{err}");
    }

    #[test]
    fn lengths_inside_sequences_and_fragments_are_checked() {
        // A sequence of undefined length whose item holds a lying element.
        let mut ds = Vec::new();
        ds.extend_from_slice(&[0x08, 0x00, 0x15, 0x11]);
        ds.extend_from_slice(b"SQ\0\0");
        ds.extend_from_slice(&UNDEFINED.to_le_bytes());
        ds.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
        ds.extend_from_slice(&UNDEFINED.to_le_bytes());
        let mut lying = element(0x0008, 0x1150, b"UI", b"1.2");
        lying[6..8].copy_from_slice(&60_000u16.to_le_bytes());
        ds.extend(lying);
        assert!(check(&file(&ds, "1.2.840.10008.1.2.1")).unwrap_err().contains("(0008,1150)"));

        // Encapsulated pixel data: a fragment longer than the file.
        let mut px = Vec::new();
        px.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00]);
        px.extend_from_slice(b"OB\0\0");
        px.extend_from_slice(&UNDEFINED.to_le_bytes());
        px.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
        px.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
        px.extend_from_slice(&4_000_000_000u32.to_le_bytes());
        px.extend_from_slice(&[1, 2, 3, 4]);
        let err = check(&file(&px, "1.2.840.10008.1.2.4.50")).unwrap_err();
        assert!(err.contains("(FFFE,E000) says it holds 4000000000 bytes"), "{err}");
    }

    /// Found by fuzzing: an explicit-VR element whose VR bytes are not a VR
    /// (read as UN) with an undefined length holds items dicom-rs reads as
    /// Implicit VR Little Endian; a lie inside one made it allocate 3.7 GB,
    /// because the check stopped at the UN. The items are checked now, and
    /// the walk goes on after their delimiter.
    #[test]
    fn the_items_of_an_undefined_length_un_are_checked_in_implicit_vr() {
        let un = |inner: &[u8]| {
            let mut ds = Vec::new();
            ds.extend_from_slice(&[0x09, 0x00, 0x10, 0x10]); // (0009,1010), a private tag
            ds.extend_from_slice(b"3.\0\0"); // not a VR: read as UN
            ds.extend_from_slice(&UNDEFINED.to_le_bytes());
            ds.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
            ds.extend_from_slice(&UNDEFINED.to_le_bytes());
            ds.extend_from_slice(inner);
            ds.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
            ds.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
            ds
        };
        // Implicit VR inside: tag, 4-byte length, value.
        let implicit = |len: u32, value: &[u8]| {
            let mut e = vec![0x08, 0x00, 0x00, 0x01];
            e.extend_from_slice(&len.to_le_bytes());
            e.extend_from_slice(value);
            e
        };
        let mut honest = un(&implicit(4, b"ABCD"));
        honest.extend(element(0x0010, 0x0010, b"PN", b"Doe^Jane"));
        assert_eq!(check(&file(&honest, "1.2.840.10008.1.2.1")), Ok(None));
        let err = check(&file(&un(&implicit(411_731, b"AB")), "1.2.840.10008.1.2.1")).unwrap_err();
        assert!(err.contains("(0008,0100) says it holds 411731 bytes"), "{err}");
        // After the UN, the data set is walked on in its own encoding.
        let mut after = un(&implicit(4, b"ABCD"));
        let mut lying = element(0x0008, 0x0054, b"UT", b"xx");
        lying[8..12].copy_from_slice(&1_112_477_738u32.to_le_bytes());
        after.extend(lying);
        assert!(check(&file(&after, "1.2.840.10008.1.2.1")).unwrap_err().contains("(0008,0054)"));
    }

    /// Found by fuzzing: 14 bytes read as a bare data set, whose one element
    /// (FFFE,FAFF) is in the items' group but is not an item or a delimiter,
    /// stating 4,294,967,040 bytes: dicom-rs allocated them.
    #[test]
    fn an_element_in_the_item_group_that_is_not_an_item_is_checked() {
        let bytes = [0xFE, 0xFF, 0xFF, 0xFA, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x55, 0x53, 0x6C, 0x00, 0x00];
        let err = check(&bytes).unwrap_err();
        assert!(err.contains("(FFFE,FAFF) says it holds 4294967040 bytes, but only 6 bytes follow"), "{err}");
    }

    /// Found by fuzzing: a 4 KB Deflated file whose inflated data set states
    /// 1.4 GB for an element made dicom-rs allocate 1.4 GB.
    #[test]
    fn a_deflated_data_set_is_checked_after_inflating_it() {
        use std::io::Write;
        let deflate = |data: &[u8]| {
            let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(data).unwrap();
            z.finish().unwrap()
        };
        let mut ds = element(0x0010, 0x0010, b"PN", b"Doe^Jane");
        ds.extend(element(0x7FE0, 0x0010, b"OW", &[0u8; 64]));
        assert_eq!(check(&file(&deflate(&ds), "1.2.840.10008.1.2.1.99")), Ok(None));
        // A lie after the Pixel Data is read by dicom-rs too.
        let mut lying = element(0x0000, 0x0000, b"OB", b"xx");
        lying[8..12].copy_from_slice(&1_392_508_928u32.to_le_bytes());
        ds.extend(lying);
        let err = check(&file(&deflate(&ds), "1.2.840.10008.1.2.1.99")).unwrap_err();
        assert!(err.contains("(0000,0000) says it holds 1392508928 bytes"), "{err}");
    }

    /// Found by fuzzing: Samples per Pixel written as FD with 2 bytes.
    /// dicom-rs reads no whole double from it and the next header from those
    /// 2 bytes on: (0003,0028), an unknown VR read as UN, and a 4-byte length
    /// taken from "CS" and the next length (1.2 GB, allocated). The check
    /// steps over it the same way and meets the same lie.
    #[test]
    fn a_binary_value_of_a_broken_size_is_stepped_over_as_dicom_rs_does() {
        let mut whole = element(0x0028, 0x0002, b"FD", &3f64.to_le_bytes());
        whole.extend(element(0x0028, 0x0004, b"CS", b"RGB "));
        assert!(check(&file(&whole, "1.2.840.10008.1.2.1")).is_ok());
        let mut broken = element(0x0028, 0x0002, b"FD", &[3, 0]);
        broken.extend(element(0x0028, 0x0004, b"CS", b"RGB "));
        let err = check(&file(&broken, "1.2.840.10008.1.2.1")).unwrap_err();
        assert!(err.contains("(0003,0028) says it holds"), "{err}");
    }

    #[test]
    fn big_endian_and_implicit_data_sets_are_read_in_their_own_encoding() {
        // Explicit VR big endian: 0x0000_0040 bytes of OW, present.
        let mut be = vec![0x7F, 0xE0, 0x00, 0x10];
        be.extend_from_slice(b"OW\0\0");
        be.extend_from_slice(&64u32.to_be_bytes());
        be.extend_from_slice(&[0u8; 64]);
        assert!(check(&file(&be, "1.2.840.10008.1.2.2")).is_ok());
        be[8..12].copy_from_slice(&65u32.to_be_bytes());
        assert!(check(&file(&be, "1.2.840.10008.1.2.2")).is_err());
        // A bare implicit VR data set (no marker).
        let mut bare = vec![0x28, 0x00, 0x10, 0x00];
        bare.extend_from_slice(&2u32.to_le_bytes());
        bare.extend_from_slice(&[0, 2]);
        assert_eq!(check(&bare), Ok(None));
        bare[4..8].copy_from_slice(&9u32.to_le_bytes());
        assert!(check(&bare).is_err());
    }
}
