//! Where a run goes after each step: sequence, branches, switches, sinks.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{BuildError, EdgeKind};
use crate::model::step::Step;

/// What a flow-aware task returns (see [`Task::flow_fn`](crate::Task::flow_fn)):
/// its value, plus where the run should go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow<T> {
    /// Just a value; the step's edges decide what runs next.
    Continue(T),
    /// A value, and the switch target (2 to 9) the run should take next:
    /// the original's `goto(n)`. A target the step does not define ends the
    /// run with [`RunError::UnknownSwitch`](crate::RunError::UnknownSwitch).
    Switch(u8, T),
    /// A value, and a request to stop the whole run after this step (the
    /// original's `stop_on_success`): the run ends `Cancelled`.
    Stop(T),
}

impl<T> From<T> for Flow<T> {
    fn from(value: T) -> Self {
        Self::Continue(value)
    }
}

/// A task's request about the run's path, carried with its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Directive {
    Switch(u8),
    Stop,
}

/// The lowest and highest switch targets, as in the original's descriptors.
pub(crate) const SWITCHES: std::ops::RangeInclusive<u8> = 2..=9;

/// A step's outgoing edges by name, as declared.
#[derive(Debug, Clone, Default)]
pub(crate) struct Edges {
    pub(crate) then: Option<Arc<str>>,
    pub(crate) on_success: Option<Arc<str>>,
    pub(crate) on_failure: Option<Arc<str>>,
    pub(crate) switch: [Option<Arc<str>>; 8],
    pub(crate) sink: Option<Arc<str>>,
    /// A bad switch number given to the step's builder, reported at build.
    pub(crate) invalid_switch: Option<u8>,
}

/// A step's edges resolved to step indices when the pipeline is built.
#[derive(Debug, Clone, Default)]
pub(crate) struct Route {
    then: Option<usize>,
    /// The next declared step that is not inside a branch.
    seq: Option<usize>,
    /// Whether some edge (other than a sink) leads here, which makes this
    /// step part of a branch: it does not fall through to the next
    /// declared step.
    member: bool,
    on_success: Option<usize>,
    on_failure: Option<usize>,
    switch: [Option<usize>; 8],
    sink: Option<usize>,
}

impl Route {
    fn continuation(&self) -> Option<usize> {
        self.then.or(if self.member { None } else { self.seq })
    }

    /// Steps this one may lead to. The continuation only counts when no
    /// success branch overrides it: a failure never falls through.
    fn edges(&self) -> impl Iterator<Item = usize> + '_ {
        let continuation = match self.on_success {
            Some(_) => None,
            None => self.continuation(),
        };
        [continuation, self.on_success, self.on_failure, self.sink]
            .into_iter()
            .chain(self.switch.iter().copied())
            .flatten()
    }
}

/// How a step ended, as far as the flow is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepVerdict {
    Succeeded(Option<u8>),
    Failed,
}

/// Where to go after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    Step(usize),
    End,
    /// The step failed and no failure branch catches it.
    Abort,
}

/// The pipeline's steps as a graph, checked once when it is built.
#[derive(Debug, Clone, Default)]
pub(crate) struct FlowGraph {
    routes: Vec<Route>,
}

impl FlowGraph {
    /// Resolves every edge and rejects graphs that cannot run as declared.
    pub(crate) fn build<T>(pipeline: &Arc<str>, steps: &[Step<T>]) -> Result<Self, BuildError> {
        let index: HashMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (&*s.name, i)).collect();
        let mut routes = vec![Route::default(); steps.len()];
        for (i, step) in steps.iter().enumerate() {
            let edges = &step.edges;
            if let Some(target) = edges.invalid_switch {
                return Err(BuildError::InvalidSwitch {
                    step: Arc::clone(&step.name),
                    target,
                });
            }
            let find = |edge: EdgeKind, to: &Option<Arc<str>>| -> Result<Option<usize>, BuildError> {
                to.as_ref()
                    .map(|to| {
                        index.get(&**to).copied().ok_or_else(|| BuildError::MissingStep {
                            pipeline: Arc::clone(pipeline),
                            from: Arc::clone(&step.name),
                            edge,
                            to: Arc::clone(to),
                        })
                    })
                    .transpose()
            };
            let route = &mut routes[i];
            route.then = find(EdgeKind::Then, &edges.then)?;
            route.on_success = find(EdgeKind::OnSuccess, &edges.on_success)?;
            route.on_failure = find(EdgeKind::OnFailure, &edges.on_failure)?;
            route.sink = find(EdgeKind::Sink, &edges.sink)?;
            for ((slot, target), n) in route.switch.iter_mut().zip(&edges.switch).zip(SWITCHES) {
                *slot = find(EdgeKind::Switch(n), target)?;
            }
        }
        let targets: Vec<usize> = routes
            .iter()
            .flat_map(|r| {
                [r.then, r.on_success, r.on_failure]
                    .into_iter()
                    .chain(r.switch)
                    .flatten()
            })
            .collect();
        for t in targets {
            routes[t].member = true;
        }
        // The sink of a step inside a branch is inside that branch too: it
        // runs when its own branch ends, and is no place for a step outside
        // to fall through to, wherever it was declared.
        let mut grew = true;
        while grew {
            grew = false;
            for i in 0..routes.len() {
                if let Some(sink) = routes[i].sink.filter(|&s| routes[i].member && !routes[s].member) {
                    routes[sink].member = true;
                    grew = true;
                }
            }
        }
        let mut next_free = None;
        for i in (0..routes.len()).rev() {
            routes[i].seq = next_free;
            if !routes[i].member {
                next_free = Some(i);
            }
        }
        let graph = Self { routes };
        graph.check_cycles(pipeline, steps)?;
        graph.check_reachable(pipeline, steps)?;
        Ok(graph)
    }

    fn check_reachable<T>(&self, pipeline: &Arc<str>, steps: &[Step<T>]) -> Result<(), BuildError> {
        let mut seen = vec![false; self.routes.len()];
        let mut stack = vec![0];
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(self.routes[i].edges());
            }
        }
        match seen.iter().position(|s| !s) {
            Some(i) => Err(BuildError::UnreachableStep {
                pipeline: Arc::clone(pipeline),
                step: Arc::clone(&steps[i].name),
            }),
            None => Ok(()),
        }
    }

    fn check_cycles<T>(&self, pipeline: &Arc<str>, steps: &[Step<T>]) -> Result<(), BuildError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut mark = vec![Mark::New; self.routes.len()];
        for root in 0..self.routes.len() {
            if mark[root] != Mark::New {
                continue;
            }
            // Iterative DFS; `path` holds the open steps, so a back edge
            // names the whole cycle.
            let mut path: Vec<(usize, Vec<usize>)> = vec![(root, self.routes[root].edges().collect())];
            mark[root] = Mark::Open;
            while let Some((node, pending)) = path.last_mut() {
                match pending.pop() {
                    Some(next) if mark[next] == Mark::Open => {
                        let start = path.iter().position(|(n, _)| *n == next).unwrap_or(0);
                        let mut cycle: Vec<Arc<str>> = path[start..]
                            .iter()
                            .map(|(n, _)| Arc::clone(&steps[*n].name))
                            .collect();
                        cycle.push(Arc::clone(&steps[next].name));
                        return Err(BuildError::Cycle {
                            pipeline: Arc::clone(pipeline),
                            steps: cycle,
                        });
                    }
                    Some(next) if mark[next] == Mark::New => {
                        mark[next] = Mark::Open;
                        path.push((next, self.routes[next].edges().collect()));
                    }
                    Some(_) => {}
                    None => {
                        mark[*node] = Mark::Done;
                        path.pop();
                    }
                }
            }
        }
        Ok(())
    }

    /// The sink declared on `step`, if any.
    pub(crate) fn sink(&self, step: usize) -> Option<usize> {
        self.routes[step].sink
    }

    /// The step after `step`, given how it ended. Taking a branch pushes the
    /// step's sink, which runs when the branch reaches its end; that is
    /// what makes a sink after a branch at the root run (the original lost
    /// it).
    pub(crate) fn next(&self, step: usize, verdict: StepVerdict, sinks: &mut Vec<usize>) -> Result<Next, u8> {
        let route = &self.routes[step];
        let branch = match verdict {
            StepVerdict::Succeeded(Some(n)) => {
                let slot = usize::from(n)
                    .checked_sub(2)
                    .and_then(|s| route.switch.get(s))
                    .copied()
                    .flatten();
                Some(slot.ok_or(n)?)
            }
            StepVerdict::Succeeded(None) => route.on_success,
            StepVerdict::Failed => match route.on_failure {
                Some(target) => Some(target),
                None => return Ok(Next::Abort),
            },
        };
        if let Some(target) = branch {
            // A sink already waiting for an outer branch runs once, when
            // the first of the branches that share it ends; a sink that is
            // the branch itself runs once, as the branch.
            if let Some(sink) = route.sink
                && sink != target
                && !sinks.contains(&sink)
            {
                sinks.push(sink);
            }
            return Ok(Next::Step(target));
        }
        // While a sink waits, the walk is inside a branch, where no step
        // falls through to the next declared one: an inner branch's sink,
        // which no edge but a sink's leads to, goes on to the outer sink,
        // not to whatever step was declared after it.
        let onward = if sinks.is_empty() {
            route.continuation()
        } else {
            route.then
        };
        Ok(onward.or_else(|| sinks.pop()).map_or(Next::End, Next::Step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pipeline::Pipeline;
    use crate::model::task::Task;

    fn t(name: &str) -> Task<u8> {
        Task::from_fn(name, |c| Ok(*c.input()))
    }

    fn step(name: &str) -> Step<u8> {
        Step::new(name, [t(&format!("{name}-task"))])
    }

    fn walk(p: &Pipeline<u8>, verdicts: &[StepVerdict]) -> Vec<usize> {
        let graph = &p.inner.graph;
        let mut sinks = Vec::new();
        let mut at = 0;
        let mut path = vec![0];
        for v in verdicts {
            match graph.next(at, *v, &mut sinks).unwrap() {
                Next::Step(n) => {
                    path.push(n);
                    at = n;
                }
                Next::End | Next::Abort => break,
            }
        }
        path
    }

    use StepVerdict::*;

    #[test]
    fn branches_then_sink_at_the_root() {
        let p = Pipeline::builder("p")
            .step(step("a").on_success("ok").on_failure("bad").sink("sink"))
            .step(step("bad"))
            .step(step("ok"))
            .step(step("sink"))
            .build()
            .unwrap();
        assert_eq!(walk(&p, &[Succeeded(None); 4]), vec![0, 2, 3]);
        assert_eq!(
            walk(&p, &[Failed, Succeeded(None), Succeeded(None)]),
            vec![0, 1, 3]
        );
    }

    #[test]
    fn switches_pick_numbered_targets() {
        let p = Pipeline::builder("p")
            .step(step("a").on_switch(2, "two").on_switch(9, "nine").sink("end"))
            .step(step("two").then("two-more"))
            .step(step("two-more"))
            .step(step("nine"))
            .step(step("end"))
            .build()
            .unwrap();
        assert_eq!(
            walk(
                &p,
                &[
                    Succeeded(Some(2)),
                    Succeeded(None),
                    Succeeded(None),
                    Succeeded(None)
                ]
            ),
            vec![0, 1, 2, 4]
        );
        assert_eq!(
            walk(&p, &[Succeeded(Some(9)), Succeeded(None), Succeeded(None)]),
            vec![0, 3, 4]
        );
        // No switch chosen and no success branch: the next free step.
        assert_eq!(walk(&p, &[Succeeded(None), Succeeded(None)]), vec![0, 4]);
        let mut sinks = Vec::new();
        assert_eq!(p.inner.graph.next(0, Succeeded(Some(5)), &mut sinks), Err(5));
    }

    #[test]
    fn failure_without_a_branch_aborts() {
        let p = Pipeline::builder("p")
            .step(step("a"))
            .step(step("b"))
            .build()
            .unwrap();
        let mut sinks = Vec::new();
        assert_eq!(p.inner.graph.next(0, Failed, &mut sinks), Ok(Next::Abort));
        assert_eq!(
            p.inner.graph.next(0, Succeeded(None), &mut sinks),
            Ok(Next::Step(1))
        );
        assert_eq!(p.inner.graph.next(1, Succeeded(None), &mut sinks), Ok(Next::End));
    }

    #[test]
    fn bad_graphs_are_refused_naming_the_steps() {
        let err = Pipeline::builder("p")
            .step(step("a").on_failure("nope"))
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "step `a` of pipeline `p` has an on_failure edge to `nope`, which does not exist"
        );

        let err = Pipeline::builder("p")
            .step(step("a").on_switch(1, "a"))
            .build()
            .unwrap_err();
        assert!(
            matches!(err, BuildError::InvalidSwitch { target: 1, .. }),
            "{err}"
        );
        let err = Pipeline::builder("p")
            .step(step("a").on_switch(10, "a"))
            .build()
            .unwrap_err();
        assert!(
            matches!(err, BuildError::InvalidSwitch { target: 10, .. }),
            "{err}"
        );

        let err = Pipeline::builder("p")
            .step(step("a"))
            .step(step("b").then("c"))
            .step(step("c").then("b"))
            .build()
            .unwrap_err();
        match err {
            BuildError::Cycle { steps, .. } => {
                let names: Vec<&str> = steps.iter().map(|s| &**s).collect();
                assert!(names == ["b", "c", "b"] || names == ["c", "b", "c"], "{names:?}");
            }
            other => panic!("{other}"),
        }

        let err = Pipeline::builder("p")
            .step(step("a").on_success("c"))
            .step(step("b").then("c"))
            .step(step("c"))
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::UnreachableStep { step, .. } if &**step == "b"),
            "{err}"
        );
    }
}
