//! Catching panics from user code.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`, turning a panic into its message.
///
/// `AssertUnwindSafe` is sound here: after a panic the engine only reads the
/// message and never touches what `f` may have left half-updated.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(settle)
}

/// The message of a caught panic, with its payload let go of: see
/// [`release`].
pub(crate) fn settle(payload: Box<dyn Any + Send>) -> String {
    let text = message(&*payload);
    release(payload);
    text
}

/// Drops a caught panic's payload where a panic in its own `Drop` cannot
/// unwind into the engine. A payload whose drop panics again is leaked:
/// its second payload could do the same, and a few bytes lost to such a
/// value are better than a caller that unwinds.
pub(crate) fn release(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(|| drop(payload))) {
        std::mem::forget(again);
    }
}

/// The text of a panic payload: `panic!` with a literal gives `&str`, with
/// format arguments `String`; anything else gets a placeholder.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic payload>".to_owned())
}

#[cfg(test)]
mod tests {
    use super::catch;

    #[test]
    fn messages_of_every_payload_kind() {
        assert_eq!(catch(|| panic!("plain")), Err::<(), _>("plain".to_owned()));
        assert_eq!(catch(|| panic!("n = {}", 3)), Err::<(), _>("n = 3".to_owned()));
        assert_eq!(
            catch(|| std::panic::panic_any(7_u8)),
            Err::<(), _>("<non-string panic payload>".to_owned())
        );
        assert_eq!(catch(|| 5), Ok(5));
    }

    /// Panics from `Drop` while the payload is released: the first is
    /// caught, and the second one's payload leaked, not dropped.
    struct Bomb(u8);

    impl Drop for Bomb {
        fn drop(&mut self) {
            if self.0 > 0 && !std::thread::panicking() {
                std::panic::panic_any(Bomb(self.0 - 1));
            }
        }
    }

    #[test]
    fn a_payload_that_panics_when_dropped_stays_caught() {
        for depth in 0..3 {
            let caught = std::panic::catch_unwind(|| catch(|| std::panic::panic_any(Bomb(depth))));
            assert_eq!(
                caught.ok(),
                Some(Err::<(), _>("<non-string panic payload>".to_owned()))
            );
        }
    }
}
