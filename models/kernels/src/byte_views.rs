//! Byte views of word buffers: a `u64` buffer is 8-byte aligned, so its bytes
//! can hold a copy of GGUF block data that candle needs aligned.

/// The bytes of `words`, writable.
pub fn u64_words_as_bytes_mut(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: u64 has no padding and every byte pattern is a valid u8; the
    // view covers exactly the words' memory and borrows them mutably.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, words.len() * 8) }
}
