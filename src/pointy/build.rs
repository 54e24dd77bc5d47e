//! From a parse tree to a [`Pipeline`], through the public builder only
//! (pointy.md, 7).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use super::ast::{Chain, Document, Stage, TaskNode};
use super::error::{ErrorKind, Pos};
use super::source::TaskSource;
use crate::model::pipeline::Pipeline;
use crate::model::retry::RetryPolicy;
use crate::model::step::Step;
use crate::model::task::Task;

/// Why building failed, and where.
pub(crate) type BuildError = (ErrorKind, Pos);

/// Builds the pipeline `name` that `doc` describes, with tasks from
/// `source`.
pub(crate) fn build<T, S>(name: Arc<str>, doc: &Document<'_>, source: &S) -> Result<Pipeline<T>, BuildError>
where
    S: TaskSource<T> + ?Sized,
{
    let mut flat = Flattener {
        source,
        seen: HashMap::with_capacity(doc.tasks),
        executors: HashMap::new(),
        steps: Vec::with_capacity(doc.stages),
        tasks: Vec::with_capacity(doc.tasks),
        name: String::new(),
    };
    flat.chain(&doc.chain)?;
    let names: Vec<Arc<str>> = flat.steps.iter().map(|s| Arc::clone(&s.name)).collect();
    let mut builder = Pipeline::builder(name);
    let mut tasks = flat.tasks.into_iter();
    for node in flat.steps {
        // `Step::of` would name it so too; naming it once keeps the name
        // and the edges that lead to it the same string.
        let own = tasks.by_ref().take(node.stage.tasks.len());
        let mut step = Step::new(Arc::clone(&node.name), own);
        if let Some(strategy) = node.stage.strategy {
            step = step.strategy(strategy.evaluation());
        }
        if let Some(next) = node.then {
            step = step.then(Arc::clone(&names[next]));
            if !node.stage.branches.is_empty() {
                // Both edges: `sink` runs the follower after whichever
                // branch ran, `then` when no branch was taken (7.5).
                step = step.sink(Arc::clone(&names[next]));
            }
        }
        for (branch, head) in node.stage.branches.iter().zip(node.heads) {
            let head = Arc::clone(&names[head]);
            step = match branch.descriptor {
                0 => step.on_failure(head),
                1 => step.on_success(head),
                n => step.on_switch(n, head),
            };
        }
        builder = builder.step(step);
    }
    builder
        .build()
        .map_err(|e| (ErrorKind::Build(Box::new(e)), Pos::START))
}

/// One stage on its way to becoming a step.
struct FlatStep<'d, 'a> {
    stage: &'d Stage<'a>,
    name: Arc<str>,
    /// The next stage of its chain, by index.
    then: Option<usize>,
    /// The first stage of each branch, in the order of `stage.branches`.
    heads: Vec<usize>,
}

/// Numbers the stages in declaration order: a pre-order walk, which is
/// also the order of their names in the text (7.4).
struct Flattener<'d, 'a, 's, T, S: ?Sized> {
    source: &'s S,
    /// Per name: the source's task and how many times it occurred so far.
    seen: HashMap<&'a str, (Task<T>, u32)>,
    /// Executor names, shared by the tasks that use them.
    executors: HashMap<&'d str, Arc<str>>,
    steps: Vec<FlatStep<'d, 'a>>,
    /// Every stage's tasks, one stage after another, in `steps`' order.
    tasks: Vec<Task<T>>,
    /// Where step names are put together.
    name: String,
}

impl<'d, 'a, T, S> Flattener<'d, 'a, '_, T, S>
where
    S: TaskSource<T> + ?Sized,
{
    /// Adds the chain's stages and their branches; returns the index of
    /// its first stage.
    fn chain(&mut self, chain: &'d Chain<'a>) -> Result<usize, BuildError> {
        let first = self.steps.len();
        let mut previous: Option<usize> = None;
        for stage in &chain.stages {
            let own = self.tasks.len();
            for node in &stage.tasks {
                let task = self.task(node)?;
                self.tasks.push(task);
            }
            self.name.clear();
            for (i, task) in self.tasks[own..].iter().enumerate() {
                self.name.push_str(if i == 0 { "" } else { "|" });
                self.name.push_str(task.name());
            }
            let index = self.steps.len();
            self.steps.push(FlatStep {
                stage,
                name: self.name.as_str().into(),
                then: None,
                heads: Vec::with_capacity(stage.branches.len()),
            });
            for branch in &stage.branches {
                let head = self.chain(&branch.chain)?;
                self.steps[index].heads.push(head);
            }
            if let Some(p) = previous {
                self.steps[p].then = Some(index);
            }
            previous = Some(index);
        }
        Ok(first)
    }

    /// The task for one occurrence of a name: the source's task, named
    /// apart from earlier occurrences (7.2), with the text's retry and
    /// executor.
    fn task(&mut self, node: &'d TaskNode<'a>) -> Result<Task<T>, BuildError> {
        let (template, count) = match self.seen.entry(node.name) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let unknown = || {
                    (
                        ErrorKind::UnknownTask {
                            name: node.name.into(),
                        },
                        node.pos,
                    )
                };
                entry.insert((self.source.task(node.name).ok_or_else(unknown)?, 0))
            }
        };
        *count += 1;
        let name: Arc<str> = match *count {
            1 => node.name.into(),
            k => format!("{}#{k}", node.name).into(),
        };
        let mut task = template.clone().with_name(name);
        match node.attempts {
            Some(n) if n >= 2 => {
                // Keep the source's backoff and predicates; only the count
                // is the text's (7.6).
                let policy = task
                    .retry_policy()
                    .map_or_else(RetryPolicy::builder, RetryPolicy::to_builder)
                    .max_attempts(n)
                    .build()
                    .map_err(|e| (ErrorKind::Build(Box::new(e)), node.pos))?;
                task = task.retry(policy);
            }
            Some(_) => task = task.retry(RetryPolicy::none()),
            None => {}
        }
        if let Some(executor) = node.executor.as_deref() {
            let shared = self.executors.entry(executor).or_insert_with(|| executor.into());
            task = task.on(Arc::clone(shared));
        }
        Ok(task)
    }
}
