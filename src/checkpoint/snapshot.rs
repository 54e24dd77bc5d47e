//! The engine's plain data on the wire: results, states, contexts and chains
//! as serde sees them.
//!
//! Tasks are closures and cannot be serialised, so a context is written with
//! its task *names*, and read back as a [`ContextSnapshot`]; a chain is
//! rebuilt from snapshots against the pipeline that owns the tasks
//! ([`restore`]).

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use crate::error::{CheckpointError, ErrorRecord, TaskFailure};
use crate::ids::ContextId;
use crate::model::pipeline::Pipeline;
use crate::model::strategy::EvaluationResult;
use crate::model::task::Task;
use crate::records::chain::ExecutionChain;
use crate::records::context::ExecutionContext;
use crate::records::metrics::ExecutionMetrics;
use crate::records::results::ResultSet;
use crate::records::state::ExecutionState;
use crate::status::ExecutionStatus;

/// A JSON object from task name to value. serde_json writes and reads
/// objects in document order, so declaration order survives.
impl<T: Serialize> Serialize for ResultSet<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ResultSet<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<T>(PhantomData<fn() -> T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Entries<T> {
            type Value = ResultSet<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from task name to result")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                // The size hint comes from untrusted input: cap what it may
                // preallocate.
                let mut entries: Vec<(Arc<str>, T)> =
                    Vec::with_capacity(access.size_hint().unwrap_or(0).min(1024));
                let mut seen = HashSet::new();
                while let Some((name, value)) = access.next_entry::<String, T>()? {
                    let name: Arc<str> = name.into();
                    if !seen.insert(Arc::clone(&name)) {
                        return Err(de::Error::custom(format_args!("task `{name}` appears twice")));
                    }
                    entries.push((name, value));
                }
                Ok(ResultSet::from_entries(entries))
            }
        }

        deserializer.deserialize_map(Entries(PhantomData))
    }
}

#[derive(Serialize)]
struct StateRef<'a, T> {
    status: ExecutionStatus,
    errors: Vec<ErrorRecord>,
    results: &'a ResultSet<T>,
}

#[derive(Deserialize)]
struct StateOwned<T> {
    status: ExecutionStatus,
    #[serde(default)]
    errors: Vec<ErrorRecord>,
    results: ResultSet<T>,
}

/// `{"status": …, "errors": [ErrorRecord…], "results": {task: value…}}`.
/// Errors are written as [`ErrorRecord`]s and read back with
/// [`ErrorRecord::into_failure`].
impl<T: Serialize> Serialize for ExecutionState<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StateRef {
            status: self.status(),
            errors: self.errors().iter().map(TaskFailure::record).collect(),
            results: self.results(),
        }
        .serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ExecutionState<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = StateOwned::<T>::deserialize(deserializer)?;
        let failures = s
            .errors
            .into_iter()
            .map(|r| {
                r.into_failure()
                    .ok_or_else(|| serde::de::Error::custom("a state's error record names no task and step"))
            })
            .collect::<Result<Vec<_>, D::Error>>()?;
        Ok(ExecutionState::new()
            .with_status(s.status)
            .with_errors(failures)
            .with_results(s.results))
    }
}

#[derive(Serialize)]
struct ContextRef<'a, T> {
    id: ContextId,
    pipeline: &'a str,
    step: &'a str,
    tasks: Vec<&'a str>,
    state: &'a ExecutionState<T>,
    metrics: &'a ExecutionMetrics,
    evaluation: Option<&'a EvaluationResult>,
}

impl<'a, T> ContextRef<'a, T> {
    fn of(c: &'a ExecutionContext<T>) -> Self {
        Self {
            id: c.id,
            pipeline: &c.pipeline,
            step: &c.step,
            tasks: c.tasks.iter().map(Task::name).collect(),
            state: &c.state,
            metrics: c.metrics(),
            evaluation: c.evaluation.as_ref(),
        }
    }
}

/// Written with its task names in place of the tasks; read back as a
/// [`ContextSnapshot`].
impl<T: Serialize> Serialize for ExecutionContext<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ContextRef::of(self).serialize(serializer)
    }
}

/// The contexts from head to tail, each as an [`ExecutionContext`] is
/// written.
impl<T: Serialize> Serialize for ExecutionChain<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for context in self {
            seq.serialize_element(&ContextRef::of(context))?;
        }
        seq.end()
    }
}

/// An [`ExecutionContext`] as data: the task names stand in for the tasks.
///
/// It is what a serialised context reads back as; [`restore`]
/// turns snapshots back into contexts by finding the tasks in the pipeline.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
#[non_exhaustive]
pub struct ContextSnapshot<T> {
    /// The context's id.
    pub id: ContextId,
    /// The pipeline's name.
    pub pipeline: Arc<str>,
    /// The step's name.
    pub step: Arc<str>,
    /// The step's task names, in declaration order.
    pub tasks: Vec<Arc<str>>,
    /// Its final state.
    pub state: ExecutionState<T>,
    /// Its timing.
    pub metrics: ExecutionMetrics,
    /// The strategy's verdict, if the step was judged.
    pub evaluation: Option<EvaluationResult>,
}

impl<T> Clone for ContextSnapshot<T> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            pipeline: Arc::clone(&self.pipeline),
            step: Arc::clone(&self.step),
            tasks: self.tasks.clone(),
            state: self.state.clone(),
            metrics: self.metrics.clone(),
            evaluation: self.evaluation.clone(),
        }
    }
}

impl<T> ContextSnapshot<T> {
    /// `context` as data. Cheap: states and names are shared, not copied.
    #[must_use]
    pub fn of(context: &ExecutionContext<T>) -> Self {
        Self {
            id: context.id,
            pipeline: Arc::clone(&context.pipeline),
            step: Arc::clone(&context.step),
            tasks: context.tasks.iter().map(|t| Arc::clone(&t.name)).collect(),
            state: ExecutionState::clone(&context.state),
            metrics: context.metrics().clone(),
            evaluation: context.evaluation.clone(),
        }
    }
}

/// The contexts of `chain` from head to tail, as data.
#[must_use]
pub fn snapshot<T>(chain: &ExecutionChain<T>) -> Vec<ContextSnapshot<T>> {
    chain.iter().map(ContextSnapshot::of).collect()
}

/// Rebuilds a chain, head to tail, from snapshots of contexts of
/// `pipeline`, taking each context's tasks from the pipeline's step of
/// the same name. Each restored context gets a fresh id of this
/// process, so a chain restored from another process never collides
/// with the contexts of runs going on here.
///
/// ```
/// use conveyor::checkpoint::{ContextSnapshot, restore};
/// use conveyor::{Pipeline, PipelineExecutor, Task};
/// let pipeline = Pipeline::builder("p")
///     .step([Task::from_fn("one", |_| Ok(1_u32))])
///     .step([Task::from_fn("two", |c| Ok(c.previous().first().unwrap() + 1))])
///     .build()?;
/// let run = PipelineExecutor::builder().build()?.execute(&pipeline, 0)?;
/// let json = serde_json::to_string(run.chain()).unwrap();
/// let snapshots: Vec<ContextSnapshot<u32>> = serde_json::from_str(&json).unwrap();
/// let chain = restore(snapshots, &pipeline)?;
/// assert_eq!(chain.tail().unwrap().state().results().get("two"), Some(&2));
/// assert_eq!(chain.tail().unwrap().tasks()[0].name(), "two");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`CheckpointError::SnapshotMismatch`] when a snapshot names another
/// pipeline, a step the pipeline does not have, or other tasks than its
/// step has.
pub fn restore<T>(
    snapshots: impl IntoIterator<Item = ContextSnapshot<T>>,
    pipeline: &Pipeline<T>,
) -> Result<ExecutionChain<T>, CheckpointError> {
    let mut chain = ExecutionChain::new();
    for s in snapshots {
        let mismatch = |message: String| CheckpointError::SnapshotMismatch {
            pipeline: Arc::clone(&pipeline.inner.name),
            step: Arc::clone(&s.step),
            message,
        };
        if *s.pipeline != *pipeline.name() {
            return Err(mismatch(format!("it belongs to pipeline `{}`", s.pipeline)));
        }
        let step = pipeline
            .step(&s.step)
            .ok_or_else(|| mismatch("the pipeline has no such step".to_owned()))?;
        if !step.tasks.iter().map(Task::name).eq(s.tasks.iter().map(|t| &**t)) {
            return Err(mismatch(format!(
                "it ran tasks {:?}, the step has {:?}",
                s.tasks,
                step.tasks.iter().map(Task::name).collect::<Vec<_>>()
            )));
        }
        let context = ExecutionContext {
            id: ContextId::next(),
            pipeline: Arc::clone(&pipeline.inner.name),
            step: Arc::clone(&step.name),
            tasks: step.tasks.shared(),
            state: Arc::new(s.state),
            metrics: s.metrics.into(),
            evaluation: s.evaluation,
        };
        // Fresh ids cannot repeat, so linking cannot fail.
        chain.push(context).map_err(|e| mismatch(e.to_string()))?;
    }
    Ok(chain)
}

#[cfg(test)]
mod tests;
