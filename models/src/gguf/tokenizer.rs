//! The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.model =
//! llama`: SentencePiece pieces with scores and types, byte fallback, no
//! merges), built into a `tokenizers::Tokenizer` that gives llama.cpp's ids.
//!
//! llama.cpp's SentencePiece tokenizer starts from single characters and
//! repeatedly joins the adjacent pair whose joined text is a piece with the
//! highest score. That is byte-pair encoding whose merges are every split of
//! every piece into two pieces, ranked by the joined piece's score: so the
//! merges are derived here and the `tokenizers` crate's BPE does the work.
//! Control and user-defined pieces are matched in the text first, as
//! llama.cpp does when it parses special tokens.

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper, Tokenizer};

use crate::error::{ModelError, Result};
use crate::gguf::{as_i64, value_f32, GgufFile};
use crate::tokenizer::TextTokenizer;

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const NORMAL: i64 = 1;
const UNKNOWN: i64 = 2;
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;

pub fn from_gguf(file: &GgufFile) -> Result<TextTokenizer> {
    let bad = |reason: String| ModelError::Tokenizer { path: file.path.clone(), reason };
    match file.string("tokenizer.ggml.model") {
        Some("llama") => {}
        Some(other) => {
            return Err(bad(format!(
                "tokenizer type \"{other}\" is not supported (Gemma 3 files use the SentencePiece type \"llama\")"
            )))
        }
        None => return Err(bad("the file has no tokenizer (tokenizer.ggml.model is missing)".into())),
    }
    let tokens: Vec<String> = file
        .array("tokenizer.ggml.tokens")?
        .ok_or_else(|| bad("the file has no token list (tokenizer.ggml.tokens)".into()))?
        .iter()
        .map(|v| match v {
            candle_core::quantized::gguf_file::Value::String(s) => Ok(s.clone()),
            _ => Err(bad("tokenizer.ggml.tokens holds something other than text".into())),
        })
        .collect::<Result<_>>()?;
    let n = tokens.len();
    let scores: Vec<f32> = match file.array("tokenizer.ggml.scores")? {
        Some(list) if list.len() == n => list.iter().map(|v| value_f32(v).unwrap_or(0.0)).collect(),
        Some(list) => return Err(bad(format!("{} scores for {n} tokens", list.len()))),
        None => vec![0.0; n],
    };
    let types: Vec<i64> = match file.array("tokenizer.ggml.token_type")? {
        Some(list) if list.len() == n => list.iter().map(|v| as_i64(v).unwrap_or(NORMAL)).collect(),
        Some(list) => return Err(bad(format!("{} token types for {n} tokens", list.len()))),
        None => vec![NORMAL; n],
    };
    let id_of = |key: &str| -> Result<Option<u32>> {
        Ok(file.uint(key)?.map(|i| i as u32).filter(|&i| (i as usize) < n))
    };
    let bos = id_of("tokenizer.ggml.bos_token_id")?;
    let unk = id_of("tokenizer.ggml.unknown_token_id")?;
    let add_bos = file.bool("tokenizer.ggml.add_bos_token")?.unwrap_or(true);
    let add_space_prefix = file.bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(true);

    // The vocabulary: where a text occurs twice the later id wins, as in llama.cpp.
    let vocab: tokenizers::models::bpe::Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let merges = merges_from_scores(&tokens, &scores, &vocab);
    let mut builder = BPE::builder().vocab_and_merges(vocab, merges).byte_fallback(true).fuse_unk(true);
    if let Some(u) = unk {
        builder = builder.unk_token(tokens[u as usize].clone());
    }
    let bpe = builder.build().map_err(|e| bad(format!("cannot build its vocabulary: {e}")))?;

    let mut inner = Tokenizer::new(bpe);
    let escape = Replace::new(" ", "\u{2581}").map_err(|e| bad(e.to_string()))?;
    let normalizer: NormalizerWrapper = if add_space_prefix {
        NormalizerSequence::new(vec![Prepend::new(" ".into()).into(), escape.into()]).into()
    } else {
        escape.into()
    };
    inner.with_normalizer(Some(normalizer)).map_err(|e| bad(e.to_string()))?;
    let unescape = tokenizers::decoders::DecoderWrapper::Replace(
        Replace::new("\u{2581}", " ").map_err(|e| bad(e.to_string()))?,
    );
    let mut decoders: Vec<DecoderWrapper> = vec![unescape, ByteFallback::new().into(), Fuse::new().into()];
    if add_space_prefix {
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    inner.with_decoder(Some(DecoderSequence::new(decoders)));

    // Pieces matched in the text before the model: control and unknown pieces
    // as special tokens, user-defined pieces (runs of spaces, markup) as plain added tokens.
    let special: Vec<AddedToken> = (0..n)
        .filter(|&i| matches!(types[i], CONTROL | UNKNOWN))
        .map(|i| AddedToken::from(tokens[i].clone(), true).normalized(false))
        .collect();
    let user: Vec<AddedToken> = (0..n)
        .filter(|&i| types[i] == USER_DEFINED)
        .map(|i| AddedToken::from(tokens[i].clone(), false).normalized(false))
        .collect();
    inner.add_special_tokens(special).map_err(|e| bad(e.to_string()))?;
    inner.add_tokens(user).map_err(|e| bad(e.to_string()))?;

    let bos_text = bos.map(|b| tokens[b as usize].clone()).unwrap_or_else(|| "<bos>".into());
    Ok(TextTokenizer::from_tokenizer_at(inner, &bos_text, add_bos, &file.path))
}

/// Every split of a piece into two pieces, ranked by the joined piece's score
/// (highest first; equal scores by id, as the earlier piece).
fn merges_from_scores(
    tokens: &[String],
    scores: &[f32],
    vocab: &tokenizers::models::bpe::Vocab,
) -> Vec<(String, String)> {
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut merges = Vec::new();
    for i in order {
        let t = &tokens[i];
        if vocab.get(t) != Some(&(i as u32)) {
            continue; // a duplicate text: the other id is the piece
        }
        for (k, _) in t.char_indices().skip(1) {
            let (left, right) = t.split_at(k);
            if vocab.contains_key(left) && vocab.contains_key(right) {
                merges.push((left.to_owned(), right.to_owned()));
            }
        }
    }
    merges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_follow_the_joined_piece_score() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "abc"].iter().map(|s| s.to_string()).collect();
        let scores = [0.0, 0.0, 0.0, -2.0, -1.0, -3.0];
        let vocab: tokenizers::models::bpe::Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let merges = merges_from_scores(&tokens, &scores, &vocab);
        let pairs: Vec<(&str, &str)> = merges.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(pairs, vec![("b", "c"), ("a", "b"), ("a", "bc"), ("ab", "c")]);
    }
}
