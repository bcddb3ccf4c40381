//! Auth0's bound on what a user's metadata may grow to: `app_metadata` and `user_metadata`
//! together at most 16 MB per user. Every path that writes them checks the user as it would be
//! stored (Management API create and PATCH, sign-up, bulk import, post-login Actions), since
//! each of them alone is bounded only per request: repeated PATCHes or logins whose actions
//! add a key each time would otherwise grow one user without end. Plain rule, no wire shape:
//! each path answers in its own API's error format.

use serde_json::{Map, Value};
use store::User;

/// Auth0's limit on `app_metadata` and `user_metadata` together, as stored JSON.
pub const MAX_METADATA_BYTES: usize = 16 << 20;

/// The metadata of a user is over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub limit: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let limit = if self.limit.is_multiple_of(1 << 20) {
            format!("{} MB", self.limit >> 20)
        } else {
            format!("{} bytes", self.limit)
        };
        write!(f, "app_metadata and user_metadata together must not exceed {limit}")
    }
}

/// Whether `user`'s metadata fits in `limit` bytes of JSON. Counted as it is written, without
/// building the text, and stops counting once past the limit.
pub fn check(user: &User, limit: usize) -> Result<(), TooLarge> {
    let mut counter = Counter { left: limit };
    let fits = |m: &Map<String, Value>, c: &mut Counter| serde_json::to_writer(c, m).is_ok();
    if fits(&user.app_metadata, &mut counter) && fits(&user.user_metadata, &mut counter) {
        Ok(())
    } else {
        Err(TooLarge { limit })
    }
}

/// A writer that only counts, and fails once more than `left` bytes were written.
struct Counter {
    left: usize,
}

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.left = self.left.checked_sub(buf.len()).ok_or_else(|| std::io::Error::other("over the limit"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use store::Identity;

    #[test]
    fn both_objects_count_towards_one_limit() {
        let identity = Identity {
            connection: "db".into(),
            provider: "auth0".into(),
            user_id: "1".into(),
            is_social: false,
            profile_data: None,
        };
        let mut u = User::new("auth0|1".into(), "db".into(), identity, 0);
        assert_eq!(check(&u, 4), Ok(()), "{{}}{{}} is four bytes");
        u.app_metadata.insert("a".into(), json!("x".repeat(40)));
        let app = json!(u.app_metadata).to_string().len();
        assert_eq!(check(&u, app + 2), Ok(()));
        u.user_metadata.insert("b".into(), json!(1));
        assert_eq!(check(&u, app + 2), Err(TooLarge { limit: app + 2 }));
        assert_eq!(
            TooLarge { limit: MAX_METADATA_BYTES }.to_string(),
            "app_metadata and user_metadata together must not exceed 16 MB"
        );
    }
}
