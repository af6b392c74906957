//! The model thread: one, dedicated, owning the loaded model. Drafts arrive
//! over a channel and run one at a time; text leaves through the job's
//! callbacks as it is made. Nothing here blocks the window.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use medgemma_models::DeviceChoice;

use super::engine::{self, DraftError, DraftOutcome, DraftRequest, LoadedModel};
use super::DraftEvent;

/// One draft to make.
pub struct Job {
    pub model_dir: PathBuf,
    /// Where to run the model (a change reloads it).
    pub device: DeviceChoice,
    pub request: DraftRequest,
    /// Streaming events (loading, started, text).
    pub events: Box<dyn FnMut(DraftEvent) + Send>,
    /// The outcome, once (on the model thread).
    pub done: Box<dyn FnOnce(Result<DraftOutcome, DraftError>) + Send>,
}

/// What the model thread is asked to do.
enum Work {
    Draft(Job),
    /// Free the loaded model's memory.
    Unload,
}

/// The handle the app keeps: sends jobs, stops the running one.
pub struct Worker {
    jobs: Mutex<Option<Sender<Work>>>,
    /// The folder of the model in memory now (None: none loaded).
    loaded: Arc<Mutex<Option<PathBuf>>>,
    cancel: Arc<AtomicBool>,
    busy: Arc<AtomicBool>,
    hashes: Option<PathBuf>,
    pace: Option<Duration>,
}

/// A pause after each streamed piece, in ms, from this environment variable:
/// for demonstrations and the window tests, where the tiny fixture model
/// writes faster than a person (or WebDriver) can press Stop. Unset in use.
pub const PACE_ENV: &str = "MEDGEMMA_DESK_TOKEN_PACE_MS";

impl Worker {
    /// `hashes`: where weights hashes are cached (in the data folder).
    pub fn new(hashes: Option<PathBuf>) -> Worker {
        let pace = std::env::var(PACE_ENV).ok().and_then(|v| v.parse::<u64>().ok()).filter(|&ms| ms > 0).map(Duration::from_millis);
        Worker { jobs: Mutex::new(None), loaded: Arc::default(), cancel: Arc::default(), busy: Arc::default(), hashes, pace }
    }

    /// Whether a draft is being made.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst)
    }

    /// Stops the running draft after its current token.
    pub fn stop(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// The folder of the model in memory now.
    pub fn loaded(&self) -> Option<PathBuf> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Queues a draft; `Err` gives the job back when one is already running.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        if self.busy.swap(true, Ordering::SeqCst) {
            return Err(job);
        }
        self.cancel.store(false, Ordering::SeqCst);
        self.send(Work::Draft(job));
        Ok(())
    }

    /// Frees the loaded model's memory (after the draft being written, if any).
    pub fn unload(&self) {
        self.send(Work::Unload);
    }

    fn send(&self, work: Work) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let sender = jobs.get_or_insert_with(|| self.spawn());
        if let Err(back) = sender.send(work) {
            // The thread is gone (it panicked): start a new one for this work.
            let fresh = self.spawn();
            let _ = fresh.send(back.0);
            *jobs = Some(fresh);
        }
    }

    fn spawn(&self) -> Sender<Work> {
        let (tx, rx) = channel::<Work>();
        let loaded_dir = self.loaded.clone();
        let cancel = self.cancel.clone();
        let busy = self.busy.clone();
        let hashes = self.hashes.clone();
        let pace = self.pace;
        let spawned = std::thread::Builder::new().name("model".into()).spawn(move || {
            let mut loaded: Option<(LoadedModel, DeviceChoice)> = None;
            let mut reuse = medgemma_models::Reuse::new();
            let set_loaded = |dir: Option<PathBuf>| *loaded_dir.lock().unwrap_or_else(|p| p.into_inner()) = dir;
            for work in rx {
                let mut job = match work {
                    Work::Draft(job) => job,
                    Work::Unload => {
                        loaded = None;
                        reuse.clear();
                        set_loaded(None);
                        continue;
                    }
                };
                let result = (|| {
                    if loaded.as_ref().is_none_or(|(m, device)| m.dir != job.model_dir || *device != job.device) {
                        loaded = None; // free the old model before loading the next
                        reuse.clear();
                        set_loaded(None);
                        (job.events)(DraftEvent::Loading { model: job.model_dir.display().to_string() });
                        loaded = Some((LoadedModel::load(&job.model_dir, None, job.device, hashes.as_deref())?, job.device));
                        set_loaded(Some(job.model_dir.clone()));
                    }
                    let loaded = loaded.as_ref().map(|(m, _)| m);
                    let model = loaded.ok_or_else(|| DraftError::Load("no model".into()))?;
                    // Both callbacks send on the same event sink, one at a time.
                    let events = std::cell::RefCell::new(&mut job.events);
                    let mut started = |prompt_tokens: usize, max_tokens: usize| {
                        (events.borrow_mut())(DraftEvent::Started {
                            prompt_tokens,
                            max_tokens,
                            model: model.id.clone(),
                            device: model.device.clone(),
                        })
                    };
                    let mut on_text = |piece: &str| {
                        (events.borrow_mut())(DraftEvent::Token { text: piece.to_string() });
                        if let Some(pace) = pace {
                            std::thread::sleep(pace);
                        }
                    };
                    engine::run(model, Some(&mut reuse), &job.request, &mut started, &mut on_text, &cancel)
                })();
                busy.store(false, Ordering::SeqCst);
                (job.done)(result);
            }
        });
        if let Err(e) = spawned {
            tracing::error!("the model thread could not start: {e}");
        }
        tx
    }
}
