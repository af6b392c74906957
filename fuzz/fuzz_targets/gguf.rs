#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| medgemma_desk::hostile_input::gguf(data));
