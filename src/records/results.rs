//! The values a step produced, by task name, in declaration order.

use std::fmt;
use std::sync::Arc;

type Entry<T> = (Arc<str>, T);

/// The successful results of one step, in the order its tasks were declared.
///
/// Cloning is cheap: the entries sit behind one `Arc`. Tasks that failed
/// have no entry here; their errors are in the step's
/// [`ExecutionState`](crate::ExecutionState).
pub struct ResultSet<T> {
    // `None` for an empty set, so that the many empty sets (every pending
    // state, every first step's `previous`) cost no allocation.
    entries: Option<Arc<Vec<Entry<T>>>>,
}

impl<T> ResultSet<T> {
    /// A set with no results.
    #[must_use]
    pub const fn empty() -> Self {
        Self { entries: None }
    }

    pub(crate) fn from_entries(entries: Vec<(Arc<str>, T)>) -> Self {
        Self {
            entries: (!entries.is_empty()).then(|| Arc::new(entries)),
        }
    }

    fn entries(&self) -> &[(Arc<str>, T)] {
        self.entries.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Number of results.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether there are no results.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_none()
    }

    /// The result of the task named `task`. A linear search: steps are
    /// usually small, and large ones are read with [`iter`](Self::iter).
    #[must_use]
    pub fn get(&self, task: &str) -> Option<&T> {
        self.entries()
            .iter()
            .find(|(name, _)| &**name == task)
            .map(|(_, v)| v)
    }

    /// `(task name, value)` pairs in declaration order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &T)> + '_ {
        self.entries().iter().map(|(name, v)| (&**name, v))
    }

    /// The values in declaration order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &T> + '_ {
        self.entries().iter().map(|(_, v)| v)
    }

    /// The first value, handy for single-task steps.
    #[must_use]
    pub fn first(&self) -> Option<&T> {
        self.entries().first().map(|(_, v)| v)
    }
}

impl<T> Clone for ResultSet<T> {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
        }
    }
}

impl<T> Default for ResultSet<T> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<T: fmt::Debug> fmt::Debug for ResultSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for ResultSet<T> {
    fn eq(&self, other: &Self) -> bool {
        self.entries() == other.entries()
    }
}

#[cfg(test)]
mod tests {
    use super::ResultSet;

    #[test]
    fn lookup_and_order() {
        let set = ResultSet::from_entries(vec![("b".into(), 2), ("a".into(), 1)]);
        assert_eq!(set.get("a"), Some(&1));
        assert_eq!(set.get("zz"), None);
        assert_eq!(set.values().copied().collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(set.first(), Some(&2));
        assert_eq!(set.clone(), set);
        assert!(ResultSet::<u8>::empty().is_empty());
    }
}
