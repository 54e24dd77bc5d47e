//! The links between contexts, in the order they ran.

use std::fmt;

use crate::error::RunError;
use crate::ids::{ContextId, IdMap};
use crate::records::context::ExecutionContext;

struct Node<T> {
    context: ExecutionContext<T>,
    /// Positions in the chain's node list, not ids: following a link
    /// costs an index, not a lookup.
    prev: Option<usize>,
    next: Option<usize>,
}

/// A doubly linked list of contexts.
///
/// It replaces the original's `previous_context`/`next_context` pointers:
/// forward iteration from any context, backward iteration, head and tail in
/// O(1), lookup by id, and [`filter_by_event`](Self::filter_by_event), which
/// in the original compared a class with a string and always came back empty.
///
/// The contexts sit in one list in the order they were linked, each with
/// the positions of its neighbours, and a map finds a context's position
/// by id. A run links its contexts one after another, so linking one moves
/// it once, into the end of the list, the latest one is found without the
/// map, and dropping a run's chain walks one list.
pub struct ExecutionChain<T> {
    nodes: Vec<Node<T>>,
    index: IdMap<usize>,
    head: Option<usize>,
    tail: Option<usize>,
}

impl<T> ExecutionChain<T> {
    /// An empty chain.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty chain with room for `contexts` contexts.
    #[must_use]
    pub fn with_capacity(contexts: usize) -> Self {
        Self {
            nodes: Vec::with_capacity(contexts),
            index: IdMap::with_capacity_and_hasher(contexts, Default::default()),
            head: None,
            tail: None,
        }
    }

    /// Appends `context` at the tail.
    ///
    /// # Errors
    /// [`RunError::DuplicateContext`] when a context with the same id is
    /// already linked.
    pub fn push(&mut self, context: ExecutionContext<T>) -> Result<(), RunError> {
        let tail = self.tail.map(|t| self.nodes[t].context.id);
        self.insert_after(tail, context)
    }

    /// Links `context` right after `previous` (at the head when `None`),
    /// between `previous` and whatever followed it.
    ///
    /// # Errors
    /// [`RunError::UnknownContext`] when `previous` is not in the chain,
    /// and [`RunError::DuplicateContext`] when a context with the same
    /// id is already linked: a context is never linked twice.
    pub fn insert_after(
        &mut self,
        previous: Option<ContextId>,
        context: ExecutionContext<T>,
    ) -> Result<(), RunError> {
        let id = context.id;
        let prev = match previous {
            Some(p) => match self.slot(p) {
                Some(slot) => Some(slot),
                // A context already linked is the first thing wrong.
                None if self.index.contains_key(&id) => {
                    return Err(RunError::DuplicateContext { context: id });
                }
                None => return Err(RunError::UnknownContext { context: p }),
            },
            None => None,
        };
        let std::collections::hash_map::Entry::Vacant(entry) = self.index.entry(id) else {
            return Err(RunError::DuplicateContext { context: id });
        };
        let slot = self.nodes.len();
        entry.insert(slot);
        let next = match prev {
            Some(p) => self.nodes[p].next.replace(slot),
            None => self.head.replace(slot),
        };
        match next {
            Some(n) => self.nodes[n].prev = Some(slot),
            None => self.tail = Some(slot),
        }
        self.nodes.push(Node { context, prev, next });
        Ok(())
    }

    /// Where the context with this id sits in the node list. The latest
    /// one linked, which a running step reads and updates, is found
    /// without the map.
    fn slot(&self, id: ContextId) -> Option<usize> {
        match self.nodes.last() {
            Some(last) if last.context.id == id => Some(self.nodes.len() - 1),
            _ => self.index.get(&id).copied(),
        }
    }

    /// The context with this id.
    #[must_use]
    pub fn get(&self, id: ContextId) -> Option<&ExecutionContext<T>> {
        self.slot(id).map(|s| &self.nodes[s].context)
    }

    /// Makes room for `contexts` more contexts, so that a run of many
    /// steps does not move every node it linked each time the list grows.
    pub(crate) fn reserve(&mut self, contexts: usize) {
        self.nodes.reserve(contexts);
        self.index.reserve(contexts);
    }

    /// The ids of every context, in no particular order: cheaper than
    /// walking the links when the order does not matter.
    pub(crate) fn ids(&self) -> impl Iterator<Item = ContextId> + '_ {
        self.nodes.iter().map(|n| n.context.id)
    }

    pub(crate) fn get_mut(&mut self, id: ContextId) -> Option<&mut ExecutionContext<T>> {
        self.slot(id).map(|s| &mut self.nodes[s].context)
    }

    /// The first context.
    #[must_use]
    pub fn head(&self) -> Option<&ExecutionContext<T>> {
        self.head.map(|h| &self.nodes[h].context)
    }

    /// The latest context.
    #[must_use]
    pub fn tail(&self) -> Option<&ExecutionContext<T>> {
        self.tail.map(|t| &self.nodes[t].context)
    }

    /// The context after `id`.
    #[must_use]
    pub fn next(&self, id: ContextId) -> Option<&ExecutionContext<T>> {
        let next = self.nodes[self.slot(id)?].next?;
        Some(&self.nodes[next].context)
    }

    /// The context before `id`.
    #[must_use]
    pub fn previous(&self, id: ContextId) -> Option<&ExecutionContext<T>> {
        let prev = self.nodes[self.slot(id)?].prev?;
        Some(&self.nodes[prev].context)
    }

    /// All contexts from head to tail.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            chain: self,
            at: self.head,
            forward: true,
        }
    }

    /// Contexts from `id` forward to the tail; empty when `id` is unknown.
    pub fn iter_from(&self, id: ContextId) -> Iter<'_, T> {
        Iter {
            chain: self,
            at: self.slot(id),
            forward: true,
        }
    }

    /// Contexts from the tail back to the head.
    pub fn iter_back(&self) -> Iter<'_, T> {
        Iter {
            chain: self,
            at: self.tail,
            forward: false,
        }
    }

    /// The contexts, head to tail, that ran a task named `event`.
    pub fn filter_by_event<'a>(
        &'a self,
        event: &'a str,
    ) -> impl Iterator<Item = &'a ExecutionContext<T>> + 'a {
        self.iter().filter(move |c| c.has_task(event))
    }

    /// Number of contexts.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the chain is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

impl<T> Default for ExecutionChain<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for ExecutionChain<T> {
    fn clone(&self) -> Self {
        Self {
            nodes: self
                .nodes
                .iter()
                .map(|n| Node {
                    context: n.context.clone(),
                    prev: n.prev,
                    next: n.next,
                })
                .collect(),
            index: self.index.clone(),
            head: self.head,
            tail: self.tail,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for ExecutionChain<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over an [`ExecutionChain`], following its links.
pub struct Iter<'a, T> {
    chain: &'a ExecutionChain<T>,
    at: Option<usize>,
    forward: bool,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a ExecutionContext<T>;

    fn next(&mut self) -> Option<Self::Item> {
        let node = &self.chain.nodes[self.at?];
        self.at = if self.forward { node.next } else { node.prev };
        Some(&node.context)
    }
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("at", &self.at.map(|s| self.chain.nodes[s].context.id))
            .field("forward", &self.forward)
            .finish()
    }
}

impl<'a, T> IntoIterator for &'a ExecutionChain<T> {
    type Item = &'a ExecutionContext<T>;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task::Task;
    use crate::records::metrics::ExecutionMetrics;
    use crate::records::state::ExecutionState;
    use std::sync::Arc;

    fn ctx(id: u64, tasks: &[&str]) -> ExecutionContext<u8> {
        ExecutionContext {
            id: ContextId::from(id),
            pipeline: "p".into(),
            step: format!("s{id}").into(),
            tasks: tasks
                .iter()
                .map(|t| Task::from_fn(*t, |c| Ok(*c.input())))
                .collect(),
            state: Arc::new(ExecutionState::new()),
            metrics: ExecutionMetrics::default().into(),
            evaluation: None,
        }
    }

    fn ids<'a>(it: impl Iterator<Item = &'a ExecutionContext<u8>>) -> Vec<u64> {
        it.map(|c| c.id().get()).collect()
    }

    #[test]
    fn forward_backward_head_tail() {
        let mut chain = ExecutionChain::new();
        for i in 1..=3 {
            chain.push(ctx(i, &["x"])).unwrap();
        }
        assert_eq!(ids(chain.iter()), vec![1, 2, 3]);
        assert_eq!(ids(chain.iter_back()), vec![3, 2, 1]);
        assert_eq!(ids(chain.iter_from(ContextId::from(2))), vec![2, 3]);
        assert_eq!(chain.head().unwrap().id().get(), 1);
        assert_eq!(chain.tail().unwrap().id().get(), 3);
        assert_eq!(chain.next(ContextId::from(1)).unwrap().id().get(), 2);
        assert_eq!(chain.previous(ContextId::from(1)).map(|c| c.id()), None);
    }

    #[test]
    fn insert_after_splices_in_the_middle() {
        let mut chain = ExecutionChain::new();
        chain.push(ctx(1, &[])).unwrap();
        chain.push(ctx(3, &[])).unwrap();
        chain.insert_after(Some(ContextId::from(1)), ctx(2, &[])).unwrap();
        chain.insert_after(None, ctx(0, &[])).unwrap();
        assert_eq!(ids(chain.iter()), vec![0, 1, 2, 3]);
        assert_eq!(ids(chain.iter_back()), vec![3, 2, 1, 0]);
        let err = chain
            .insert_after(Some(ContextId::from(9)), ctx(4, &[]))
            .unwrap_err();
        assert!(matches!(err, RunError::UnknownContext { .. }));
        assert!(matches!(
            chain.push(ctx(2, &[])),
            Err(RunError::DuplicateContext { .. })
        ));
        assert!(matches!(
            chain.insert_after(Some(ContextId::from(9)), ctx(2, &[])),
            Err(RunError::DuplicateContext { .. })
        ));
        assert_eq!(chain.len(), 4);
    }

    #[test]
    fn lookups_and_copies_follow_the_links_not_the_order_of_linking() {
        let mut chain = ExecutionChain::new();
        for i in [1, 4] {
            chain.push(ctx(i, &[])).unwrap();
        }
        chain.insert_after(Some(ContextId::from(1)), ctx(2, &[])).unwrap();
        chain.insert_after(Some(ContextId::from(2)), ctx(3, &[])).unwrap();
        for i in 1..=4 {
            assert_eq!(chain.get(ContextId::from(i)).unwrap().id().get(), i);
        }
        chain.get_mut(ContextId::from(4)).unwrap().evaluation = None;
        assert!(chain.get(ContextId::from(5)).is_none());
        assert_eq!(chain.tail().unwrap().id().get(), 4);
        assert_eq!(chain.next(ContextId::from(3)).unwrap().id().get(), 4);
        assert_eq!(chain.previous(ContextId::from(4)).unwrap().id().get(), 3);
        assert!(chain.iter_from(ContextId::from(9)).next().is_none());
        let copy = chain.clone();
        assert_eq!(ids(copy.iter()), vec![1, 2, 3, 4]);
        assert_eq!(ids(copy.iter_back()), vec![4, 3, 2, 1]);
        let mut ids_any: Vec<u64> = chain.ids().map(ContextId::get).collect();
        ids_any.sort_unstable();
        assert_eq!(ids_any, vec![1, 2, 3, 4]);
    }

    #[test]
    fn filter_by_event_finds_contexts_by_task_name() {
        let mut chain = ExecutionChain::new();
        chain.push(ctx(1, &["parse"])).unwrap();
        chain.push(ctx(2, &["hash", "stats"])).unwrap();
        chain.push(ctx(3, &["stats"])).unwrap();
        assert_eq!(ids(chain.filter_by_event("stats")), vec![2, 3]);
        assert_eq!(ids(chain.filter_by_event("parse")), vec![1]);
        assert!(chain.filter_by_event("nope").next().is_none());
    }
}
