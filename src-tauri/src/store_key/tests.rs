//! The store's key: made once, found again, refused in words when wrong, and
//! an encrypted data folder that holds no patient text in any byte.

use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::store::{Notes, SignOff, Store};

fn pass(p: &str) -> KeySource {
    KeySource::Passphrase(Zeroizing::new(p.into()))
}

#[path = "../../../tests/data_folder.rs"]
mod data_folder;
use data_folder::{files, files_holding as found_in};

const NAME: &str = "DOE^JANE";
const PATIENT_ID: &str = "PID-4471-0913";
const NOTE: &str = "fell from a ladder on Tuesday";

/// A session whose every field carries patient text: the title, the notes,
/// the image bytes, a draft and a signed report; then today's backup and a
/// kept model input.
fn patient_session(store: &mut Store) {
    let id = store.create_session(&format!("CR chest {NAME}")).unwrap();
    let dicom_like = format!("DICM....{NAME}....{PATIENT_ID}....pixels");
    store.add_image(id, dicom_like.as_bytes(), &json!({ "patient_name": NAME, "patient_id": PATIENT_ID })).unwrap();
    let notes = Notes { indication: NOTE.into(), history: PATIENT_ID.into(), comparison: String::new(), free_text: NAME.into() };
    store.save_notes(id, &notes).unwrap();
    let image = image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]));
    let seen = store.keep_model_input(&image).unwrap();
    let draft = crate::store::NewDraft {
        text: format!("FINDINGS: {NOTE}."),
        prompt: format!("Indication: {NOTE}"),
        model_input_sha256: Some(seen),
        ..Default::default()
    };
    store.add_draft(id, &draft).unwrap();
    store.save_report(id, &format!("IMPRESSION: {NOTE}, {NAME}.")).unwrap();
    store.sign_report(id, SignOff::Final).unwrap();
    store.backup_if_due().unwrap();
}

#[test]
fn a_passphrase_store_holds_no_patient_text_in_any_byte_and_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let unlocked = unlock(tmp.path(), &pass("correct horse battery")).unwrap();
    assert_eq!(unlocked.protection, Protection::Passphrase);
    let mut store = Store::open_or_recover_with(tmp.path(), unlocked.key.as_ref()).unwrap().0;
    assert!(store.is_encrypted());
    patient_session(&mut store);
    let sha = store.session(crate::store::SessionId(1)).unwrap().unwrap().images[0].sha256.clone();
    drop(store);

    for needle in [NAME, PATIENT_ID, NOTE, "IMPRESSION", "FINDINGS", &sha] {
        assert_eq!(found_in(tmp.path(), needle), Vec::<PathBuf>::new(), "{needle:?} is readable in the data folder");
    }
    // The control: the same session in a plain store is readable (the search above can fail).
    let plain = tempfile::tempdir().unwrap();
    patient_session(&mut Store::open(plain.path()).unwrap());
    assert!(!found_in(plain.path(), NAME).is_empty() && !found_in(plain.path(), NOTE).is_empty());

    // With the passphrase again: everything is there, the image bytes checked.
    let again = unlock(tmp.path(), &pass("correct horse battery")).unwrap();
    let store = Store::open_or_recover_with(tmp.path(), again.key.as_ref()).unwrap().0;
    assert_eq!(store.integrity_check(), Ok(()));
    let detail = store.session(crate::store::SessionId(1)).unwrap().unwrap();
    assert_eq!(detail.notes.indication, NOTE);
    let bytes = store.image_bytes(&detail.images[0].sha256).unwrap().unwrap();
    assert!(String::from_utf8(bytes).unwrap().contains(PATIENT_ID));
    let seen = detail.drafts[0].draft.model_input_sha256.clone().unwrap();
    assert_eq!(store.model_input(&seen).unwrap().unwrap().dimensions(), (8, 8));
    // The backup is encrypted with the same key and opens with it.
    let backup = crate::store::backups(tmp.path()).remove(0);
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&backup, restored.path().join(crate::store::FILE_NAME)).unwrap();
    let copy = Store::open_with(restored.path(), again.key.as_ref()).unwrap();
    assert_eq!(copy.integrity_check(), Ok(()));
    assert_eq!(copy.session(crate::store::SessionId(1)).unwrap().unwrap().notes.indication, NOTE);
    assert!(matches!(Store::open(restored.path()), Err(crate::store::StoreError::Damaged { .. })), "no key, no read");
}

#[test]
fn a_wrong_or_missing_passphrase_is_said_in_words_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let key = unlock(tmp.path(), &pass("correct horse battery")).unwrap().key;
    patient_session(&mut Store::open_with(tmp.path(), key.as_ref()).unwrap());
    let before = files(tmp.path());

    let wrong = unlock(tmp.path(), &pass("correct horse battery!")).unwrap_err();
    assert!(matches!(wrong, KeyError::WrongPassphrase), "{wrong}");
    assert_eq!(wrong.to_string(), "the passphrase is not the one this sessions store was encrypted with; nothing was changed");
    assert_eq!(wrong.asks_for_passphrase(), Some(false));
    let missing = unlock(tmp.path(), &KeySource::Auto).unwrap_err();
    assert!(matches!(missing, KeyError::NeedsPassphrase), "{missing}");
    // Asking for an unencrypted store does not unlock (nor replace) an encrypted one.
    assert!(matches!(unlock(tmp.path(), &KeySource::Unencrypted), Err(KeyError::NeedsPassphrase)));
    // Opened without its key the store is never "recovered" over: the caller
    // that skipped the check gets an error, and the app never skips it.
    assert!(Store::open(tmp.path()).is_err());
    assert_eq!(files(tmp.path()), before, "not one byte of the data folder changed");
}

#[test]
fn a_new_store_asks_for_a_good_passphrase_or_an_explicit_choice() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(unlock(tmp.path(), &pass("short")), Err(KeyError::ShortPassphrase)));
    assert!(files(tmp.path()).is_empty(), "a refused passphrase writes nothing");

    let unlocked = unlock(tmp.path(), &KeySource::Unencrypted).unwrap();
    assert_eq!((unlocked.key.is_none(), unlocked.protection), (true, Protection::Unencrypted));
    // The choice is kept: the next start does not ask, and says so.
    let next = unlock(tmp.path(), &KeySource::Auto).unwrap();
    assert_eq!(next.protection, Protection::Unencrypted);
    assert_eq!(next.protection.describe(), "Not encrypted (chosen)");
}

#[test]
fn a_store_from_before_encryption_opens_as_it_is_and_is_named_so() {
    let tmp = tempfile::tempdir().unwrap();
    patient_session(&mut Store::open(tmp.path()).unwrap());
    let before = files(tmp.path());
    let unlocked = unlock(tmp.path(), &pass("correct horse battery")).unwrap();
    assert_eq!((unlocked.key.is_none(), unlocked.protection), (true, Protection::UnencryptedOlder));
    assert_eq!(files(tmp.path()), before, "no record is written for an older store");
}

#[test]
fn a_damaged_record_is_refused_without_touching_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let key = unlock(tmp.path(), &pass("correct horse battery")).unwrap().key;
    drop(Store::open_with(tmp.path(), key.as_ref()).unwrap());
    std::fs::write(tmp.path().join(RECORD_FILE), b"{ not json").unwrap();
    let before = files(tmp.path());
    let err = unlock(tmp.path(), &pass("correct horse battery")).unwrap_err();
    assert!(matches!(err, KeyError::Record { .. }) && err.to_string().contains("nothing was changed"), "{err}");
    assert_eq!(files(tmp.path()), before);
}

/// Under a real Secret Service (gnome-keyring in a D-Bus session:
/// tests/keyring.sh, run by `make test`): a new store's key is made and kept
/// in the keyring, found again, and a store whose key is gone from the
/// keyring is refused in words, unchanged.
#[test]
#[ignore = "needs a Secret Service (gnome-keyring) in a D-Bus session: run by `make test` through tests/keyring.sh"]
fn the_keyring_keeps_a_new_stores_key_and_its_loss_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let unlocked = unlock(tmp.path(), &KeySource::Auto).expect("a Secret Service is running (tests/keyring.sh)");
    assert_eq!(unlocked.protection, Protection::Keyring);
    let mut store = Store::open_or_recover_with(tmp.path(), unlocked.key.as_ref()).unwrap().0;
    patient_session(&mut store);
    drop(store);
    for needle in [NAME, PATIENT_ID, NOTE] {
        assert_eq!(found_in(tmp.path(), needle), Vec::<PathBuf>::new(), "{needle:?} is readable in the data folder");
    }
    let record = std::fs::read_to_string(tmp.path().join(RECORD_FILE)).unwrap();
    let key_hex: String = unlocked.key.as_ref().unwrap().as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert!(record.contains("\"keyring\"") && !record.contains(&key_hex), "{record}");

    let again = unlock(tmp.path(), &KeySource::Auto).unwrap();
    assert_eq!(again.key.unwrap().as_bytes(), unlocked.key.as_ref().unwrap().as_bytes());

    // The keyring loses the entry (another user, a reset keyring).
    keyring_entry(tmp.path()).unwrap().delete_credential().unwrap();
    let before = files(tmp.path());
    let err = unlock(tmp.path(), &KeySource::Auto).unwrap_err();
    assert!(matches!(err, KeyError::KeyringMissing { .. }), "{err}");
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert_eq!(files(tmp.path()), before, "not one byte of the data folder changed");
}

#[test]
fn a_plain_store_is_encrypted_in_place_and_nothing_plain_is_left() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    patient_session(&mut store);
    let before = store.session(crate::store::SessionId(1)).unwrap().unwrap();
    assert!(!found_in(tmp.path(), NAME).is_empty(), "the control: a plain store is readable");
    let plain_backups = crate::store::backups(tmp.path());
    assert_eq!(plain_backups.len(), 1);

    // Older store: unlock says so; encrypting needs a key source.
    assert_eq!(unlock(tmp.path(), &KeySource::Auto).unwrap().protection, Protection::UnencryptedOlder);
    let (store, kept) = match encrypt_store(store, tmp.path(), &KeySource::Unencrypted) {
        Err((Some(store), reason)) => (store, reason),
        other => panic!("expected a refusal with the store kept: {:?}", other.map(|(_, p)| p).map_err(|(_, r)| r)),
    };
    assert!(kept.contains("choose the keyring or a passphrase"), "{kept}");
    let (store, protection) = encrypt_store(store, tmp.path(), &pass("correct horse battery")).map_err(|(_, r)| r).unwrap();
    assert_eq!(protection, Protection::Passphrase);
    assert!(store.is_encrypted());
    assert_eq!(store.integrity_check(), Ok(()));
    let after = store.session(crate::store::SessionId(1)).unwrap().unwrap();
    assert_eq!((after.notes.clone(), after.drafts.len(), after.reports.len()), (before.notes.clone(), before.drafts.len(), before.reports.len()));
    let bytes = store.image_bytes(&after.images[0].sha256).unwrap().unwrap();
    assert!(String::from_utf8(bytes).unwrap().contains(PATIENT_ID));
    let seen = after.drafts[0].draft.model_input_sha256.clone().unwrap();
    assert_eq!(store.model_input(&seen).unwrap().unwrap().dimensions(), (8, 8));
    assert_eq!(store.search(NOTE.split(' ').nth(2).unwrap()).unwrap().len(), 1, "the full-text index came along");
    drop(store);

    for needle in [NAME, PATIENT_ID, NOTE, "IMPRESSION"] {
        assert_eq!(found_in(tmp.path(), needle), Vec::<PathBuf>::new(), "{needle:?} is still readable after encrypting");
    }
    assert_eq!(crate::store::backups(tmp.path()).len(), 1, "one backup, made again encrypted (the needles above cover its bytes)");
    let next = unlock(tmp.path(), &pass("correct horse battery")).unwrap();
    assert_eq!(next.protection, Protection::Passphrase);
    let reopened = Store::open_or_recover_with(tmp.path(), next.key.as_ref()).unwrap();
    assert!(reopened.1.is_none(), "no recovery was needed");
}

#[test]
fn an_encryption_cut_short_leaves_the_plain_store_in_charge() {
    let tmp = tempfile::tempdir().unwrap();
    patient_session(&mut Store::open(tmp.path()).unwrap());
    // The record was written, the encrypted copy never took the store's name.
    assert!(unlock(tmp.path(), &KeySource::Auto).is_ok());
    create(tmp.path(), &tmp.path().join(RECORD_FILE), &pass("correct horse battery")).unwrap();
    let unlocked = unlock(tmp.path(), &pass("correct horse battery")).unwrap();
    assert_eq!((unlocked.key.is_none(), unlocked.protection), (true, Protection::UnencryptedOlder));
    assert!(!tmp.path().join(RECORD_FILE).exists(), "the stale record is gone");
    let (store, recovery) = Store::open_or_recover_with(tmp.path(), None).unwrap();
    assert!(recovery.is_none());
    assert_eq!(store.session(crate::store::SessionId(1)).unwrap().unwrap().notes.indication, NOTE);
}
