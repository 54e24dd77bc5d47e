//! A checkpoint as data, and how a log of records turns into one and back.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{CheckpointError, ErrorRecord, FingerprintOf, TaskFailure};
use crate::ids::{ContextId, RunId};
use crate::model::flow::Directive;
use crate::model::pipeline::Pipeline;
use crate::records::chain::ExecutionChain;
use crate::records::results::ResultSet;
use crate::records::state::ExecutionState;

use super::CHECKPOINT_FORMAT;
use super::codec;
use super::fingerprint::Fingerprint;
use super::frame::{self, Kind, LogReader, Read1};
use super::record::{HeaderRecord, StepRecord, TaskRecord, WireError};
use super::snapshot::{self, ContextSnapshot};
use super::store::CheckpointStore;

/// A run's progress: what it ran, what came out, and what it belongs to.
///
/// This is what a checkpoint log reads back as. The log itself is a
/// sequence of records, appended as the run goes (see the
/// [module docs](super)): one per finished task, with its value, and one
/// per finished step. Read one with [`Checkpoint::load`] (or
/// [`decode`](Checkpoint::decode)); reading checks the format version and
/// every record's checksum, drops a record a kill cut short, and never
/// panics on bad bytes.
#[derive(Debug)]
#[non_exhaustive]
pub struct Checkpoint<T> {
    /// The format version, [`CHECKPOINT_FORMAT`] when written by this build.
    pub format: u32,
    /// The pipeline's name.
    pub pipeline: Arc<str>,
    /// [`Fingerprint::of_pipeline`] of the pipeline that ran.
    pub fingerprint: Fingerprint,
    /// [`Fingerprint::of_value`] of the input the run started with.
    pub input: Option<Fingerprint>,
    /// The run's id, which a resumed run keeps.
    pub run: RunId,
    /// The contexts so far, head to tail, with their states and results.
    pub chain: Vec<ContextSnapshot<T>>,
    /// Whether the run ended: there is nothing left to resume.
    pub finished: bool,
    /// The steps that finished, in the order they ran.
    pub completed: Vec<Arc<str>>,
    /// The step the run would run next; `None` once it ended.
    pub next: Option<Arc<str>>,
    /// Sinks waiting for the branches they follow to end, innermost last.
    pub sinks: Vec<Arc<str>>,
    /// Tasks that succeeded in a step that had not finished when the log
    /// ends: a resume of step [`next`](Self::next) does not run them again.
    pub pending: Vec<TaskSnapshot<T>>,
}

/// A task that succeeded in a step that had not finished: its value and
/// how it ran.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskSnapshot<T> {
    /// The step's name.
    pub step: Arc<str>,
    /// The task's position in its step.
    pub index: usize,
    /// What it returned.
    pub value: T,
    /// Attempts it took.
    pub attempts: u32,
    /// When it started, as an offset from the start of the run that ran it.
    pub started: Duration,
    /// When it finished, on the same clock.
    pub finished: Duration,
    /// The thread that ran it, in that process.
    pub thread: u64,
    pub(crate) directive: Option<Directive>,
}

impl<T> Clone for Checkpoint<T>
where
    T: Clone,
{
    fn clone(&self) -> Self {
        Self {
            format: self.format,
            pipeline: Arc::clone(&self.pipeline),
            fingerprint: self.fingerprint,
            input: self.input,
            run: self.run,
            chain: self.chain.clone(),
            finished: self.finished,
            completed: self.completed.clone(),
            next: self.next.clone(),
            sinks: self.sinks.clone(),
            pending: self.pending.clone(),
        }
    }
}

/// How much of a log a read got through.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogEnd {
    /// Bytes of complete records, preamble included: where the next
    /// record goes.
    pub(crate) good: u64,
    /// Whether a torn record was dropped after them.
    pub(crate) torn: bool,
}

impl<T> Checkpoint<T> {
    /// The progress of a run of `pipeline` on an input with fingerprint
    /// `input`, whose contexts so far are `chain`: every step in it counts as
    /// completed, and nothing is named to run next.
    #[must_use]
    pub fn new(pipeline: &Pipeline<T>, input: Option<Fingerprint>, chain: &ExecutionChain<T>) -> Self {
        Self {
            format: CHECKPOINT_FORMAT,
            pipeline: Arc::clone(&pipeline.inner.name),
            fingerprint: Fingerprint::of_pipeline(pipeline),
            input,
            run: RunId::next(),
            finished: false,
            completed: chain.iter().map(|c| Arc::clone(&c.step)).collect(),
            next: None,
            sinks: Vec::new(),
            chain: snapshot::snapshot(chain),
            pending: Vec::new(),
        }
    }

    /// Checks that this checkpoint can resume a run of `pipeline` on an
    /// input with fingerprint `input`. `path` names the file in errors.
    ///
    /// # Errors
    /// [`CheckpointError::Mismatch`] for another pipeline or input,
    /// [`CheckpointError::Finished`] when the run already ended, and
    /// [`CheckpointError::Corrupt`] when the steps it names are not
    /// the pipeline's.
    pub fn check(
        &self,
        pipeline: &Pipeline<T>,
        input: Option<Fingerprint>,
        path: Option<&Path>,
    ) -> Result<(), CheckpointError> {
        self.check_shape(pipeline, input, path)?;
        if self.finished {
            return Err(CheckpointError::Finished {
                path: path.map(Path::to_owned),
                pipeline: Arc::clone(&self.pipeline),
            });
        }
        Ok(())
    }

    /// [`check`](Self::check) without refusing a finished run: what a
    /// resume checks, since a finished run comes back as it was.
    pub(crate) fn check_shape(
        &self,
        pipeline: &Pipeline<T>,
        input: Option<Fingerprint>,
        path: Option<&Path>,
    ) -> Result<(), CheckpointError> {
        let expected = Fingerprint::of_pipeline(pipeline);
        if self.fingerprint != expected {
            return Err(CheckpointError::Mismatch {
                path: path.map(Path::to_owned),
                what: FingerprintOf::Pipeline,
                expected: expected.get(),
                found: self.fingerprint.get(),
            });
        }
        if let (Some(expected), Some(found)) = (input, self.input)
            && expected != found
        {
            return Err(CheckpointError::Mismatch {
                path: path.map(Path::to_owned),
                what: FingerprintOf::Input,
                expected: expected.get(),
                found: found.get(),
            });
        }
        let corrupt = |message: String| CheckpointError::Corrupt {
            path: path.map(Path::to_owned),
            message,
        };
        for step in self.completed.iter().chain(&self.next).chain(&self.sinks) {
            if pipeline.step(step).is_none() {
                return Err(corrupt(format!(
                    "it names step `{step}`, which the pipeline lacks"
                )));
            }
        }
        if self.next.is_none() && !self.finished {
            return Err(corrupt("it neither finished nor names a next step".into()));
        }
        for task in &self.pending {
            let fits = pipeline
                .step(&task.step)
                .is_some_and(|s| task.index < s.tasks.len());
            if !fits {
                return Err(corrupt(format!(
                    "it records task {} of step `{}`, which the pipeline lacks",
                    task.index, task.step
                )));
            }
        }
        Ok(())
    }

    /// Rebuilds the chain so far against `pipeline`'s tasks.
    ///
    /// # Errors
    /// [`CheckpointError::Corrupt`] when the chain does not fit the
    /// pipeline.
    pub fn restore_chain(
        &self,
        pipeline: &Pipeline<T>,
        path: Option<&Path>,
    ) -> Result<ExecutionChain<T>, CheckpointError> {
        snapshot::restore(self.chain.iter().cloned(), pipeline).map_err(|e| CheckpointError::Corrupt {
            path: path.map(Path::to_owned),
            message: e.to_string(),
        })
    }
}

impl<T: Serialize> Checkpoint<T> {
    /// The whole log this checkpoint reads back from: the preamble, a header
    /// record, then per context a record for each of its results and one
    /// for the step, then the pending tasks. A run appends the same records
    /// as it goes; this writes them at once.
    ///
    /// # Errors
    /// [`CheckpointError::Serialize`] when a result cannot be serialised.
    pub fn encode(&self) -> Result<Vec<u8>, CheckpointError> {
        let mut out = frame::preamble().to_vec();
        let first = self
            .completed
            .first()
            .or(self.next.as_ref())
            .map_or_else(String::new, |s| s.to_string());
        out.extend(header_record(
            &self.pipeline,
            self.fingerprint,
            self.input,
            self.run,
            &first,
        )?);
        for (i, context) in self.chain.iter().enumerate() {
            let last = i + 1 == self.chain.len();
            let mut results = Vec::with_capacity(context.state.results().len());
            for (name, value) in context.state.results().iter() {
                let index = context.tasks.iter().position(|t| **t == *name).ok_or_else(|| {
                    CheckpointError::SnapshotMismatch {
                        pipeline: Arc::clone(&self.pipeline),
                        step: Arc::clone(&context.step),
                        message: format!("it has a result for `{name}`, which is not one of its tasks"),
                    }
                })?;
                let metrics = context.metrics.task(name);
                out.extend(task_record(
                    &context.step,
                    index,
                    value,
                    TaskMeta {
                        attempts: metrics.map_or(1, |m| m.attempts),
                        started: metrics.map_or(Duration::ZERO, |m| m.started),
                        finished: metrics.map_or(Duration::ZERO, |m| m.finished),
                        thread: metrics.map_or(0, |m| m.thread),
                        directive: None,
                    },
                )?);
                results.push(index);
            }
            // A log says a run ended by a last step record with nowhere to
            // go next.
            let next = if last {
                self.next.as_deref().filter(|_| !self.finished)
            } else {
                Some(&*self.chain[i + 1].step)
            };
            let sinks: &[Arc<str>] = if last { &self.sinks } else { &[] };
            out.extend(step_record(StepParts {
                context: context.id,
                step: &context.step,
                tasks: &context.tasks,
                state: &context.state,
                metrics: &context.metrics,
                evaluation: context.evaluation.as_ref(),
                results: &results,
                next,
                sinks,
            })?);
        }
        for task in &self.pending {
            out.extend(task_record(
                &task.step,
                task.index,
                &task.value,
                TaskMeta {
                    attempts: task.attempts,
                    started: task.started,
                    finished: task.finished,
                    thread: task.thread,
                    directive: task.directive,
                },
            )?);
        }
        Ok(out)
    }
}

impl<T: DeserializeOwned> Checkpoint<T> {
    /// Reads a checkpoint from the bytes of a log. `path` names the file in
    /// errors. Any bytes at all give a checkpoint or an error, never a
    /// panic; a last record cut short is dropped, as a resume drops it.
    ///
    /// ```
    /// use conveyor::CheckpointError;
    /// use conveyor::checkpoint::Checkpoint;
    /// let err = Checkpoint::<u64>::decode(b"CNVYCKPT\x09\x00\x00\x00", None).unwrap_err();
    /// assert!(matches!(err, CheckpointError::Version { expected: 2, found: 9, .. }));
    /// let err = Checkpoint::<u64>::decode(b"\x00garbage", None).unwrap_err();
    /// assert!(matches!(err, CheckpointError::Corrupt { .. }));
    /// ```
    ///
    /// # Errors
    /// [`CheckpointError::Version`] for a format this build does not
    /// read, and [`CheckpointError::Corrupt`] for bytes that are not a
    /// checkpoint, a log without its header record, a damaged record that
    /// is not the last, or a record that does not decode (with the
    /// codec's message).
    pub fn decode(bytes: &[u8], path: Option<&Path>) -> Result<Self, CheckpointError> {
        Self::read(bytes, path, Keep::All).map(|(c, _)| c)
    }

    /// Reads the checkpoint in `store`, if there is one, streaming its
    /// records. It is not checked against any pipeline; see
    /// [`check`](Self::check).
    ///
    /// # Errors
    /// The store's read error, and those of [`decode`](Self::decode).
    pub fn load(store: &dyn CheckpointStore) -> Result<Option<Self>, CheckpointError> {
        match store.open()? {
            None => Ok(None),
            Some(reader) => Self::read(reader, store.path(), Keep::All).map(|(c, _)| Some(c)),
        }
    }

    /// Replays a log record by record, holding one record's bytes at a
    /// time. With [`Keep::Last`], the results of every context but the
    /// last are dropped as soon as a later step is read.
    pub(crate) fn read(
        reader: impl BufRead,
        path: Option<&Path>,
        keep: Keep,
    ) -> Result<(Self, LogEnd), CheckpointError> {
        let mut log = LogReader::new(reader, path)?;
        let header: HeaderRecord = match log.next()? {
            Read1::Record(Kind::Header, bytes) => {
                let bytes = bytes.to_vec();
                codec::decode(&bytes).map_err(|e| log.corrupt(format!("bad header record: {e}")))?
            }
            Read1::Record(kind, _) => {
                return Err(log.corrupt(format!("it starts with a {kind:?} record, not its header")));
            }
            Read1::End | Read1::Torn => return Err(log.corrupt("it has no header record".into())),
        };
        let pipeline: Arc<str> = header.pipeline.into();
        let mut checkpoint = Self {
            format: CHECKPOINT_FORMAT,
            pipeline: Arc::clone(&pipeline),
            fingerprint: Fingerprint::from(header.fingerprint),
            input: header.input.map(Fingerprint::from),
            run: RunId::from(header.run),
            chain: Vec::new(),
            finished: false,
            completed: Vec::new(),
            next: Some(header.first.into()),
            sinks: Vec::new(),
            pending: Vec::new(),
        };
        let mut pending: HashMap<(Arc<str>, usize), TaskSnapshot<T>> = HashMap::new();
        let mut names: HashMap<String, Arc<str>> = HashMap::new();
        let mut intern = |s: String| Arc::clone(names.entry(s).or_insert_with_key(|k| k.as_str().into()));
        let torn = loop {
            let at = log.offset();
            match log.next()? {
                Read1::End => break false,
                Read1::Torn => break true,
                Read1::Record(Kind::Header, _) => {
                    return Err(log.corrupt(format!("a second header record at byte {at}")));
                }
                Read1::Record(Kind::Task, bytes) => {
                    let r: TaskRecord<T> = codec::decode(bytes)
                        .map_err(|e| log.corrupt(format!("bad task record at byte {at}: {e}")))?;
                    let step = intern(r.step);
                    let index = r.task as usize;
                    pending.insert(
                        (Arc::clone(&step), index),
                        TaskSnapshot {
                            step,
                            index,
                            value: r.value,
                            attempts: r.attempts,
                            started: r.started,
                            finished: r.finished,
                            thread: r.thread,
                            directive: r.directive.into(),
                        },
                    );
                }
                Read1::Record(Kind::Step, bytes) => {
                    let r: StepRecord = codec::decode(bytes)
                        .map_err(|e| log.corrupt(format!("bad step record at byte {at}: {e}")))?;
                    let step = intern(r.step);
                    let tasks: Vec<Arc<str>> = r.tasks.into_iter().map(&mut intern).collect();
                    let mut entries = Vec::with_capacity(r.results.len());
                    for index in r.results {
                        let index = index as usize;
                        let (Some(name), Some(task)) =
                            (tasks.get(index), pending.remove(&(Arc::clone(&step), index)))
                        else {
                            return Err(log.corrupt(format!(
                                "the step record at byte {at} names a result of task {index} of `{step}` that no record holds"
                            )));
                        };
                        entries.push((Arc::clone(name), task.value));
                    }
                    // Whatever else is pending belonged to a run of some
                    // step that did not finish; this step's record ends it.
                    pending.clear();
                    let errors = r
                        .errors
                        .into_iter()
                        .map(|w: WireError| {
                            ErrorRecord::from(w).into_failure().ok_or_else(|| {
                                log.corrupt(format!(
                                    "the step record at byte {at} has an error naming no task"
                                ))
                            })
                        })
                        .collect::<Result<Vec<TaskFailure>, _>>()?;
                    if keep == Keep::Last
                        && let Some(before) = checkpoint.chain.last_mut()
                    {
                        before.state = before.state.with_results(ResultSet::empty());
                    }
                    checkpoint.completed.push(Arc::clone(&step));
                    checkpoint.chain.push(ContextSnapshot {
                        id: ContextId::from(r.context),
                        pipeline: Arc::clone(&pipeline),
                        step,
                        tasks,
                        state: ExecutionState::new()
                            .with_status(r.status)
                            .with_errors(errors)
                            .with_results(ResultSet::from_entries(entries)),
                        metrics: r.metrics,
                        evaluation: r.evaluation,
                    });
                    checkpoint.finished = r.next.is_none();
                    checkpoint.next = r.next.map(&mut intern);
                    checkpoint.sinks = r.sinks.into_iter().map(&mut intern).collect();
                }
            }
        };
        let mut pending: Vec<_> = pending.into_values().collect();
        pending.sort_by(|a, b| (&a.step, a.index).cmp(&(&b.step, b.index)));
        checkpoint.pending = pending;
        Ok((
            checkpoint,
            LogEnd {
                good: log.offset(),
                torn,
            },
        ))
    }
}

/// Which results a read keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Every context's.
    All,
    /// Only the last context's: what a resume needs to go on.
    Last,
}

/// How one task ran, for its record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskMeta {
    pub(crate) attempts: u32,
    pub(crate) started: Duration,
    pub(crate) finished: Duration,
    pub(crate) thread: u64,
    pub(crate) directive: Option<Directive>,
}

/// A framed header record.
pub(crate) fn header_record(
    pipeline: &str,
    fingerprint: Fingerprint,
    input: Option<Fingerprint>,
    run: RunId,
    first: &str,
) -> Result<Vec<u8>, CheckpointError> {
    let mut buf = frame::open(Kind::Header);
    codec::encode_record(
        &HeaderRecord {
            pipeline: pipeline.to_owned(),
            fingerprint: fingerprint.get(),
            input: input.map(Fingerprint::get),
            run: run.get(),
            first: first.to_owned(),
        },
        &mut buf,
    )?;
    frame::seal(&mut buf);
    Ok(buf)
}

/// A framed record of task `index` of `step`, which returned `value`.
pub(crate) fn task_record<T: Serialize>(
    step: &str,
    index: usize,
    value: &T,
    meta: TaskMeta,
) -> Result<Vec<u8>, CheckpointError> {
    let mut buf = frame::open(Kind::Task);
    codec::encode_record(
        &TaskRecord {
            step: step.to_owned(),
            task: index_u32(index)?,
            attempts: meta.attempts,
            started: meta.started,
            finished: meta.finished,
            thread: meta.thread,
            directive: meta.directive.into(),
            value,
        },
        &mut buf,
    )?;
    frame::seal(&mut buf);
    Ok(buf)
}

/// Checks that a task record written now reads back as a `T`: the codec is
/// not self-describing, and a type that cannot be read back must fail at
/// its first save, not at a resume.
pub(crate) fn check_readable<T: DeserializeOwned>(record: &[u8]) -> Result<(), CheckpointError> {
    let mut log = frame::preamble().to_vec();
    log.extend(header_record("", Fingerprint::from(0), None, RunId::from(0), "")?);
    log.extend_from_slice(record);
    Checkpoint::<T>::read(&log[..], None, Keep::All)
        .map(drop)
        .map_err(|e| CheckpointError::Serialize {
            what: crate::error::Serialized::Checkpoint,
            message: format!(
                "a result written to the checkpoint does not read back ({e}); the checkpoint codec is not \
                 self-describing, so result types must not need `deserialize_any` (serde_json::Value, \
                 untagged or internally tagged enums, flatten) or skip fields when serialising"
            ),
        })
}

fn index_u32(index: usize) -> Result<u32, CheckpointError> {
    u32::try_from(index).map_err(|_| CheckpointError::Serialize {
        what: crate::error::Serialized::Checkpoint,
        message: format!("task index {index} does not fit the checkpoint format"),
    })
}

/// The parts of a step record.
pub(crate) struct StepParts<'a, T> {
    pub(crate) context: ContextId,
    pub(crate) step: &'a str,
    pub(crate) tasks: &'a [Arc<str>],
    pub(crate) state: &'a ExecutionState<T>,
    pub(crate) metrics: &'a crate::records::metrics::ExecutionMetrics,
    pub(crate) evaluation: Option<&'a crate::model::strategy::EvaluationResult>,
    pub(crate) results: &'a [usize],
    pub(crate) next: Option<&'a str>,
    pub(crate) sinks: &'a [Arc<str>],
}

/// A framed step record.
pub(crate) fn step_record<T>(parts: StepParts<'_, T>) -> Result<Vec<u8>, CheckpointError> {
    let mut buf = frame::open(Kind::Step);
    codec::encode_record(
        &StepRecord {
            context: parts.context.get(),
            step: parts.step.to_owned(),
            tasks: parts.tasks.iter().map(|t| t.to_string()).collect(),
            status: parts.state.status(),
            errors: parts
                .state
                .errors()
                .iter()
                .map(|e| WireError::from(e.record()))
                .collect(),
            metrics: parts.metrics.clone(),
            evaluation: parts.evaluation.cloned(),
            results: parts
                .results
                .iter()
                .map(|&i| index_u32(i))
                .collect::<Result<_, _>>()?,
            next: parts.next.map(str::to_owned),
            sinks: parts.sinks.iter().map(|s| s.to_string()).collect(),
        },
        &mut buf,
    )?;
    frame::seal(&mut buf);
    Ok(buf)
}
