//! Reuse across generations on the tiny Gemma 3 fixture: a regeneration and a
//! follow-up question reuse the image's features and the decoder's memory,
//! and give exactly what a fresh generation gives.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use medgemma_models::{Content, DeviceChoice, GenerationParams, Message, Model, ModelSource, Reuse, Role};

fn model() -> Model {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/model");
    Model::load(&ModelSource::at(&dir), DeviceChoice::Cpu).expect("the tiny model loads")
}

fn image(name: &str) -> image::DynamicImage {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/images").join(name);
    medgemma_models::open_image(&p).unwrap()
}

fn first_turn() -> Vec<Message> {
    vec![
        Message::text(Role::System, "You are an expert radiologist."),
        Message { role: Role::User, content: vec![Content::Text("Describe this X-ray.".into()), Content::Image] },
    ]
}

fn fresh(model: &Model, ids: &[u32], img: &image::DynamicImage, params: &GenerationParams) -> Vec<u32> {
    model.generate(ids, std::slice::from_ref(img), params, &mut |_| {}, &AtomicBool::new(false)).unwrap().token_ids
}

#[test]
fn regeneration_and_follow_up_reuse_work_and_change_nothing() {
    let model = model();
    let img = image("rgb.jpg");
    let greedy = GenerationParams { max_new_tokens: 24, ..Default::default() };
    let ids = model.encode_conversation(&first_turn()).unwrap();
    let expected = fresh(&model, &ids, &img, &greedy);

    let mut reuse = Reuse::new();
    let keyed = [("image-a".to_string(), img.clone())];
    let a = model.generate_reusing(&mut reuse, &ids, &keyed, &greedy, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(a.token_ids, expected);
    assert_eq!((a.stats.reused_prompt_tokens, a.stats.images_reused), (0, 0), "nothing to reuse yet");

    // The same prompt again (a regeneration): nothing is recomputed before decoding.
    let b = model.generate_reusing(&mut reuse, &ids, &keyed, &greedy, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(b.token_ids, expected);
    assert_eq!((b.stats.reused_prompt_tokens, b.stats.images_reused), (ids.len(), 1));

    // A seeded regeneration gives what a fresh seeded generation gives.
    let sampled = GenerationParams { temperature: 0.9, top_p: Some(0.95), seed: 11, ..greedy.clone() };
    let s = model.generate_reusing(&mut reuse, &ids, &keyed, &sampled, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(s.token_ids, fresh(&model, &ids, &img, &sampled));

    // A follow-up question: the earlier prompt (image included) is not read again.
    let mut conversation = first_turn();
    conversation.push(Message::text(Role::Assistant, a.text.clone()));
    conversation.push(Message::text(Role::User, "Is there an effusion?"));
    let ids2 = model.encode_conversation(&conversation).unwrap();
    let c = model.generate_reusing(&mut reuse, &ids2, &keyed, &greedy, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(c.token_ids, fresh(&model, &ids2, &img, &greedy));
    assert!(c.stats.reused_prompt_tokens >= ids.len(), "reused {} of {} (first prompt {})", c.stats.reused_prompt_tokens, ids2.len(), ids.len());
    assert_eq!(c.stats.images_reused, 1);

    // Another image under another key: its features and the decoder memory after it are new.
    let other = [("image-b".to_string(), image("rgb2.png"))];
    let d = model.generate_reusing(&mut reuse, &ids, &other, &greedy, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(d.token_ids, fresh(&model, &ids, &other[0].1, &greedy));
    assert_eq!(d.stats.images_reused, 0);
    let first_image = ids.iter().position(|&t| t == model.config().image_token_id).unwrap();
    assert!(d.stats.reused_prompt_tokens <= first_image, "nothing after the image is reused for another image");
}
