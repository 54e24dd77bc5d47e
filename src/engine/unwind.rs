//! Catching panics from user code.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`, turning a panic into its message.
///
/// `AssertUnwindSafe` is sound here: after a panic the engine only reads the
/// message and never touches what `f` may have left half-updated.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| message(&*payload))
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
}
